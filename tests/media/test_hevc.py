"""H.265 in the media path, on real libx265 output: ``hvcC`` and SPS parsing, random-access
pictures at every fragment start (IDR and CRA), the GOP measurement, the ``hvc1`` tag in the
argv and in the bytes ffmpeg writes, and the stream policy's H.265 rules. Parsers are fuzzed."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.media import (
    MOVFLAGS,
    Fmp4Reader,
    Fragment,
    GopVerdict,
    HevcError,
    InitSegment,
    KeyframeMonitor,
    PipelineConfig,
    RecordingSettings,
    Restart,
    RestartCause,
    StreamPolicy,
    build_command,
    init_problems,
    load_profiles,
    parse_hvcc,
    parse_source,
    sps_picture_size,
)
from sidecar.media.hevc import IRAP_TYPES, NAL_PPS, NAL_SPS, NAL_VPS, length_prefixed_nal_types
from sidecar.media.hevc_recording import first_sample

PROFILES = load_profiles()
RTSP = parse_source("rtsp://127.0.0.1:8554/cam")
IDR_W_RADL, IDR_N_LP, CRA = 19, 20, 21


def test_hvcc_of_real_libx265_output(hevc_events: tuple[InitSegment, list[Fragment]]) -> None:
    init, _ = hevc_events
    video = init.video
    assert video is not None and video.codec == "hvc1" and video.is_hevc
    assert (video.width, video.height) == (320, 180)
    config = video.hevc
    assert config is not None
    assert config.profile_idc == 1 and config.profile_name == "main" and config.tier == 0
    assert config.length_size == 4 and config.chroma_format == 1 and config.bit_depth_luma == 8
    assert config.has_parameter_sets
    assert [len(config.nal_units(k)) for k in (NAL_VPS, NAL_SPS, NAL_PPS)] == [1, 1, 1]
    assert sps_picture_size(config.nal_units(NAL_SPS)[0]) == (320, 180)
    assert video.codec_string.startswith("hvc1.1.6.L") and config.level_idc % 3 == 0
    assert video.profile_idc == 0  # the H.264 fields stay empty for H.265
    assert init_problems(init) == []


def test_every_fragment_starts_at_an_idr(hevc_events: tuple[InitSegment, list[Fragment]]) -> None:
    init, fragments = hevc_events
    video = init.video
    assert video is not None and video.hevc is not None
    assert [f.keyframe for f in fragments] == [True] * len(fragments) and len(fragments) == 3
    for fragment in fragments:
        types = list(length_prefixed_nal_types(first_sample(fragment.data, video), video.hevc.length_size))
        vcl = [t for t in types if t < 32]
        assert vcl and vcl[0] in (IDR_W_RADL, IDR_N_LP), types


def test_open_gop_cra_pictures_are_random_access(hevc_open_gop: bytes) -> None:
    events = Fmp4Reader().feed(hevc_open_gop)
    init = events[0]
    assert isinstance(init, InitSegment)
    video = init.video
    assert video is not None and video.hevc is not None and video.codec == "hev1"
    firsts = []
    for fragment in events[1:]:
        assert isinstance(fragment, Fragment) and fragment.keyframe
        types = list(length_prefixed_nal_types(first_sample(fragment.data, video), video.hevc.length_size))
        firsts.append(next(t for t in types if t < 32))
    assert firsts[0] in (IDR_W_RADL, IDR_N_LP) and CRA in firsts[1:], firsts
    assert all(t in IRAP_TYPES for t in firsts)
    assert any("hev1" in p for p in init_problems(init))


def test_gop_is_measured_for_hevc_as_for_h264(hevc_events: tuple[InitSegment, list[Fragment]]) -> None:
    init, fragments = hevc_events
    monitor = KeyframeMonitor()
    monitor.reset(init)
    for fragment in fragments:
        monitor.observe(fragment)
    m = monitor.measurement
    assert m.keyframe_interval_s == pytest.approx(4.0, abs=1 / 15) and m.fps == pytest.approx(15.0, rel=0.02)
    assert monitor.verdict is GopVerdict.OK


def test_hevc_too_long_gop_gets_the_same_advice() -> None:
    data = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=10", "-t", "17",
         "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
         "keyint=80:min-keyint=80:scenecut=0:bframes=0:log-level=error", "-tag:v", "hvc1",
         "-f", "mp4", "-movflags", MOVFLAGS, "pipe:1"],
        check=True, capture_output=True, timeout=60,
    ).stdout
    events = Fmp4Reader().feed(data)
    monitor = KeyframeMonitor()
    assert isinstance(events[0], InitSegment)
    monitor.reset(events[0])
    for fragment in events[1:]:
        assert isinstance(fragment, Fragment)
        monitor.observe(fragment)
    assert monitor.verdict is GopVerdict.TOO_LONG
    advice = monitor.advice()
    assert advice is not None and "I-frame" in advice and "4 s" in advice


# -- parsers on hand-made and random input ------------------------------------------------------


def _hvcc(arrays: list[tuple[int, list[bytes]]], length_size: int = 4) -> bytes:
    head = bytes([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xF0, 0, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0,
                  0x0C | (length_size - 1), len(arrays)])
    body = b"".join(
        bytes([0x80 | kind]) + len(units).to_bytes(2, "big")
        + b"".join(len(u).to_bytes(2, "big") + u for u in units)
        for kind, units in arrays
    )
    return head + body


def test_hvcc_fields_and_codec_string() -> None:
    config = parse_hvcc(_hvcc([(NAL_VPS, [b"\x40\x01\xaa"]), (NAL_PPS, [b"\x44\x01\xbb"])], length_size=2))
    assert config.level_idc == 93 and config.level == "3.1" and config.length_size == 2
    assert config.nal_units(NAL_VPS) == (b"\x40\x01\xaa",) and not config.has_parameter_sets
    assert config.codec_string() == "hvc1.1.6.L93.90"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x01" * 10, "23-byte"),
        (b"\x02" + bytes(22), "configurationVersion"),
        (_hvcc([(NAL_SPS, [b"\x40\x01"])]), "holds a NAL unit of type 32"),
        (_hvcc([(NAL_SPS, [b"\x42\x01\x00"])])[:-1], "overruns"),
        (_hvcc([], length_size=3), "lengthSizeMinusOne"),
    ],
)
def test_hvcc_errors(data: bytes, match: str) -> None:
    with pytest.raises(HevcError, match=match):
        parse_hvcc(data)


@given(st.binary(max_size=300))
def test_hvcc_random_bytes_raise_only_hevc_error(data: bytes) -> None:
    with contextlib.suppress(HevcError):
        parse_hvcc(data)


@given(st.binary(max_size=300))
def test_sps_random_bytes_raise_only_hevc_error(data: bytes) -> None:
    try:
        width, height = sps_picture_size(b"\x42\x01" + data)
    except HevcError:
        return
    assert width > 0 and height > 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_real_hvcc_raises_only_hevc_error(hevc_events: tuple[InitSegment, list[Fragment]],
                                                  data: st.DataObject) -> None:
    video = hevc_events[0].video
    assert video is not None and video.hevc is not None
    raw = bytearray(_hvcc([(k, list(u)) for k, u in video.hevc.arrays]))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        config = parse_hvcc(bytes(raw))
        for sps in config.nal_units(NAL_SPS):
            sps_picture_size(sps)
    except HevcError:
        pass


# -- profiles, argv and the hvc1 tag ---------------------------------------------------------------


def test_hevc_profiles_are_tagged_hvc1_and_h264_ones_never() -> None:
    s = RecordingSettings(width=1920, height=1080, fps=15, bitrate_kbps=2000, profile="high", level="4.0")
    for name in ("libx265", "hevc_vaapi", "hevc_qsv", "hevc_nvenc"):
        profile = PROFILES[name]
        assert profile.encodes_hevc and not profile.is_copy
        argv = build_command(RTSP, profile, s).argv
        assert argv[argv.index("-tag:v") + 1] == "hvc1" and argv[argv.index("-c:v") + 1] == name
        assert argv[argv.index("-profile:v") + 1] == "main"
    for name, profile in PROFILES.items():
        if not profile.encodes_hevc:
            assert "-tag:v" not in build_command(RTSP, profile, s).argv, name
    copy = build_command(RTSP, PROFILES["copy"], s, source_hevc=True).argv
    assert copy[copy.index("-c:v") + 1] == "copy" and copy[copy.index("-tag:v") + 1] == "hvc1"


def test_libx265_profile_really_writes_hvc1_with_4s_idr_fragments(hevc_events: tuple[InitSegment, list[Fragment]],
                                                                  tmp_path: Path) -> None:
    """The shipped libx265 profile, run by ffmpeg on an H.265 file: the bytes say hvc1 + hvcC."""
    source = tmp_path / "in.mp4"
    init, fragments = hevc_events
    source.write_bytes(init.data + b"".join(bytes(f.data) for f in fragments))
    s = RecordingSettings(width=320, height=180, fps=15, bitrate_kbps=300)
    argv = list(build_command(parse_source(str(source)), PROFILES["libx265"], s).argv)
    argv.remove("-re")
    out = subprocess.run(argv, check=True, capture_output=True, timeout=120).stdout
    assert b"hvc1" in out[:4096] and b"hev1" not in out[:4096]
    events = Fmp4Reader().feed(out)
    assert isinstance(events[0], InitSegment) and init_problems(events[0]) == []
    assert all(isinstance(f, Fragment) and f.keyframe and f.duration_s <= 4.0 + 1 / 15 for f in events[1:])


# -- the stream policy: H.265 cameras per record_codec ---------------------------------------------


def _hevc_init(hevc_events: tuple[InitSegment, list[Fragment]], codec: str) -> InitSegment:
    import dataclasses

    init = hevc_events[0]
    tracks = tuple(dataclasses.replace(t, codec=codec) if t.handler == "vide" else t for t in init.tracks)
    return InitSegment(init.data, tracks)


def test_policy_hevc_copy_tags_hvc1_once(hevc_events: tuple[InitSegment, list[Fragment]]) -> None:
    p = StreamPolicy(PipelineConfig(source=RTSP, record_codec="hevc"), PROFILES)
    first = p.start_run()
    assert "-tag:v" not in first.argv  # the camera's codec is not known yet
    actions = p.on_init(_hevc_init(hevc_events, "hev1"))
    restart = next(a for a in actions if isinstance(a, Restart))
    assert restart.cause is RestartCause.HVC1 and "hvc1" in restart.command.argv
    assert p.profile_name == "copy"
    second = p.start_run()
    assert "hvc1" in second.argv
    assert p.on_init(_hevc_init(hevc_events, "hvc1")) == [] and p.warning is None


def test_policy_h264_choice_keeps_todays_rule_for_hevc_cameras(hevc_events: tuple[InitSegment, list[Fragment]]) -> None:
    p = StreamPolicy(PipelineConfig(source=RTSP, transcode_fallback=True), PROFILES)
    p.start_run()
    actions = p.on_init(_hevc_init(hevc_events, "hev1"))
    restart = next(a for a in actions if isinstance(a, Restart))
    assert restart.cause is RestartCause.TRANSCODE and p.profile_name == "libx264"
    assert "-tag:v" not in restart.command.argv


def test_policy_hevc_choice_falls_back_to_an_hevc_encoder(hevc_events: tuple[InitSegment, list[Fragment]]) -> None:
    p = StreamPolicy(PipelineConfig(source=parse_source("demo"), record_codec="hevc"), PROFILES)
    assert p.profile_name == "libx265" and "hvc1" in p.start_run().argv
