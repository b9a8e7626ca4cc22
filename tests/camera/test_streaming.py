"""Live streaming's sans-IO core: the TLVs of docs/protocol.md §Live-view TLVs and StreamingManager's rules.

The controller's writes are built from the spec (tests/support/live_view.py), not by our encoder.
"""

from __future__ import annotations

import base64
import contextlib
import struct
from collections.abc import Callable

import pytest
from aiohomekit.model.characteristics.const import (
    AudioCodecValues,
    BitRateValues,
    ProfileIDValues,
    ProfileSupportLevelValues,
    SampleRateValues,
    SRTPCryptoSuiteValues,
)
from aiohomekit.model.characteristics.structs import (
    StreamingStatus,
    SupportedAudioStreamConfiguration,
    SupportedRTPConfiguration,
    SupportedVideoStreamConfiguration,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar import tlv8
from sidecar.camera.live.streaming_manager import Reconfigure, Start, Stop, StreamingManager, source_fits
from sidecar.camera.live.supported_streams import supported_audio_stream, supported_rtp, supported_video_stream
from sidecar.camera.live.tlv import Command, SetupRequest, parse_selected, parse_setup_request
from sidecar.hap import HapError, HapStatus
from sidecar.media import InputSpec, LiveAudio, LiveStreamSpec, LiveVideo, build_live_argv, copy_bsf_for, parse_source
from sidecar.tlv8 import uint_le
from tests.support.live_view import KEY, SALT, SID, decode_setup_response, setup_tlv


# -- builders of what a controller writes (docs/protocol.md §Live-view TLVs) -------------------------------------------
def selected_tlv(session_id: bytes = SID, command: int = 1, *, width: int = 320, height: int = 240, fps: int = 15,
                 bitrate: int = 300, mtu: int | None = None, audio: bool = True, codec_params: bool = True,
                 rtcp_interval: float = 0.5) -> bytes:
    items: list[tuple[int, tlv8.Value]] = [(1, tlv8.encode([(1, session_id), (2, command)]))]
    if command in (1, 4):
        rtp: list[tuple[int, tlv8.Value]] = [(1, 99), (2, uint_le(0x11223344, 4)), (3, uint_le(bitrate, 2)),
               (4, struct.pack("<f", rtcp_interval))]
        if mtu is not None:
            rtp.append((5, uint_le(mtu, 2)))
        video: list[tuple[int, tlv8.Value]] = []
        if codec_params:
            video += [(1, 0), (2, tlv8.encode([(1, 1), (2, 0), (3, 0), (4, 0)]))]
        video += [(3, tlv8.encode([(1, uint_le(width, 2)), (2, uint_le(height, 2)), (3, fps)])),
                  (4, tlv8.encode(rtp))]
        items.append((2, tlv8.encode(video)))
        if audio and command == 1:
            params = tlv8.encode([(1, 1), (2, 0), (3, 2), (4, 20)])
            artp = tlv8.encode([(1, 110), (2, uint_le(0x55667788, 4)), (3, uint_le(24, 2)),
                                (4, struct.pack("<f", 0.5)), (6, 13)])
            items.append((3, tlv8.encode([(1, 3), (2, params), (3, artp), (4, 0)])))
    return tlv8.encode(items)


def fake_bind(request: SetupRequest) -> tuple[str, int, int]:
    return ("::1" if request.ip_version else "127.0.0.1"), 40000, 40002


def counter_random() -> Callable[[int], bytes]:
    state = [0]

    def random_bytes(n: int) -> bytes:
        state[0] += 1
        return bytes((state[0] + i) % 256 for i in range(n))

    return random_bytes


def status_of(exc: pytest.ExceptionInfo[HapError]) -> int:
    return int(exc.value.status)


# -- what we advertise (docs/protocol.md §Live-view TLVs), decoded by aiohomekit ---------------------------------------
def test_supported_video_decodes_with_aiohomekit() -> None:
    # aiohomekit splits every delimited list it meets into struct sequences, so the one codec
    # configuration comes back spread over several entries (HAP-NodeJS's TLV does the same:
    # tests/interop/test_reference_camera.py): collect the values across them.
    configs = SupportedVideoStreamConfiguration.decode(supported_video_stream()).config
    assert configs[0].codec_type == 0
    params = [p for c in configs for p in (c.codec_params or [])]
    assert {p.profile_id for p in params if p.profile_id is not None} == {0, 1, 2}  # baseline, main, high
    assert {p.level for p in params if p.level is not None} == {0, 1, 2}  # 3.1, 3.2, 4.0
    assert {p.packetization_mode for p in params if p.packetization_mode is not None} == {0}
    sizes = [(a.width, a.height, a.fps) for c in configs for a in (c.video_attrs or [])]
    assert {(1920, 1080, 30), (1280, 720, 30), (320, 240, 15)} <= set(sizes)


def test_supported_audio_is_opus_vbr_16_and_24_khz() -> None:
    decoded = SupportedAudioStreamConfiguration.decode(supported_audio_stream())
    (config,) = decoded.config
    assert config.codec == AudioCodecValues.OPUS
    first, second = config.parameters
    assert (first.audio_channels, first.bit_rate) == (1, BitRateValues.VARIABLE)
    assert (first.sample_rate, second.sample_rate) == (SampleRateValues.SIXTEEN_KHZ, SampleRateValues.TWENTY_FOUR_KHZ)
    assert decoded.comfort_noise == 0


def test_supported_rtp_is_aes_cm_128() -> None:
    assert supported_rtp() == bytes.fromhex("020100")
    assert SupportedRTPConfiguration.decode(supported_rtp()).srtp_crypto_suite == \
        SRTPCryptoSuiteValues.AES_CM_128_HMAC_SHA1_80


def test_streaming_status_values_decode() -> None:
    manager = StreamingManager(max_sessions=1)
    assert StreamingStatus.decode(manager.status_value()).status == 0
    manager.setup(setup_tlv(), 1, fake_bind)
    assert StreamingStatus.decode(manager.status_value()).status == 1
    manager.set_enabled(False)
    assert StreamingStatus.decode(manager.status_value()).status == 2


# -- SetupEndpoints -------------------------------------------------------------------------------
def test_setup_response_carries_our_address_keys_and_ssrcs() -> None:
    manager = StreamingManager(random_bytes=counter_random())
    session = manager.setup(setup_tlv(), owner=7, bind=fake_bind)
    assert session is not None
    r = decode_setup_response(manager.read_setup(7))
    assert r["session_id"] == SID and r["status"] == 0
    assert (r["ip_version"], r["address"], r["video_port"], r["audio_port"]) == (0, "127.0.0.1", 40000, 40002)
    assert r["video_suite"] == r["audio_suite"] == 0
    assert len(r["video_key"]) == len(r["audio_key"]) == 30  # type: ignore[arg-type]
    assert r["video_key"] != KEY + SALT and r["video_key"] != r["audio_key"]  # ours, not the controller's
    for ssrc in (r["video_ssrc"], r["audio_ssrc"]):
        assert 0 < ssrc < 1 << 24  # type: ignore[operator]
    assert session.request.address == "127.0.0.1" and session.request.video_port == 50000
    assert session.request.video_srtp.key_salt_b64 == base64.b64encode(KEY + SALT).decode()
    # Another connection reads the idle value, not this controller's keys.
    assert manager.read_setup(8) == bytes.fromhex("020102")


def test_ipv6_setup_answers_ipv6() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(address="::1", ip_version=1), 1, fake_bind)
    r = decode_setup_response(manager.read_setup(1))
    assert (r["ip_version"], r["address"]) == (1, "::1")


@pytest.mark.parametrize("kwargs", [
    {"ip_version": 1},  # v4 address claimed as v6
    {"address": "::1"},  # v6 address claimed as v4
    {"address": "camera.local"},
    {"video_port": 0},
    {"suite": 1},
    {"suite": 2},
    {"key": bytes(15)},
    {"salt": bytes(16)},
    {"session_id": bytes(15)},
])
def test_bad_setup_is_invalid(kwargs: dict[str, object]) -> None:
    manager = StreamingManager()
    with pytest.raises(HapError) as exc:
        manager.setup(setup_tlv(**kwargs), 1, fake_bind)  # type: ignore[arg-type]
    assert status_of(exc) == HapStatus.INVALID_VALUE
    assert not manager.sessions


def test_busy_beyond_the_limit_and_for_a_repeated_session_id() -> None:
    manager = StreamingManager(max_sessions=2)
    assert manager.setup(setup_tlv(SID), 1, fake_bind) is not None
    assert manager.setup(setup_tlv(SID), 2, fake_bind) is None
    assert decode_setup_response(manager.read_setup(2)) == {"session_id": SID, "status": 1}
    assert manager.setup(setup_tlv(b"B" * 16), 2, fake_bind) is not None
    assert manager.setup(setup_tlv(b"C" * 16), 3, fake_bind) is None
    assert decode_setup_response(manager.read_setup(3)) == {"session_id": b"C" * 16, "status": 1}
    assert len(manager.sessions) == 2


def test_bind_failure_is_status_error() -> None:
    def broken(request: SetupRequest) -> tuple[str, int, int]:
        raise OSError("no ports")

    manager = StreamingManager()
    with pytest.raises(HapError) as exc:
        manager.setup(setup_tlv(), 1, broken)
    assert status_of(exc) == HapStatus.SERVICE_COMMUNICATION_FAILURE
    assert manager.read_setup(1) == bytes([1, 16]) + SID + bytes.fromhex("020102")


def test_disabled_refuses_with_70412_and_reads_idle() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    ended = manager.set_enabled(False)
    assert [s.session_id for s in ended] == [SID]
    for write in (lambda: manager.setup(setup_tlv(b"D" * 16), 1, fake_bind), lambda: manager.select(selected_tlv(), 1)):
        with pytest.raises(HapError) as exc:
            write()
        assert status_of(exc) == HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    assert manager.read_setup(1) == bytes.fromhex("020102")
    assert manager.read_selected() == bytes.fromhex("0103020102")
    manager.set_enabled(True)
    assert manager.setup(setup_tlv(), 1, fake_bind) is not None


# -- SelectedRTPStreamConfiguration ----------------------------------------------------------------
def test_start_reconfigure_end() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    action = manager.select(selected_tlv(mtu=1200), 1)
    assert isinstance(action, Start)
    video, audio = action.session.video, action.session.audio
    assert video is not None and audio is not None
    assert (video.width, video.height, video.fps, video.bitrate_kbps, video.profile, video.level) == \
        (320, 240, 15, 300, ProfileIDValues.MAIN_PROFILE, ProfileSupportLevelValues.THREE_ONE)
    assert (video.payload_type, video.ssrc, video.rtcp_interval_s, action.session.mtu) == (99, 0x11223344, 0.5, 1200)
    assert (audio.codec, audio.sample_rate_hz, audio.packet_time_ms, audio.payload_type) == (3, 24000, 20, 110)
    # Reconfigure: attributes and RTP parameters only, RTCP interval 0 (keeps 0.5).
    action = manager.select(selected_tlv(command=4, width=640, height=360, bitrate=800, codec_params=False,
                                         rtcp_interval=0.0), 1)
    assert isinstance(action, Reconfigure)
    assert action.session.video is not None
    assert (action.session.video.width, action.session.video.height, action.session.video.bitrate_kbps,
            action.session.video.profile, action.session.video.rtcp_interval_s) == (640, 360, 800, 1, 0.5)
    assert isinstance(manager.select(selected_tlv(command=0), 1), Stop)
    assert not manager.sessions


def test_default_mtu_by_ip_version() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    manager.setup(setup_tlv(b"6" * 16, address="::1", ip_version=1), 1, fake_bind)
    a = manager.select(selected_tlv(), 1)
    b = manager.select(selected_tlv(b"6" * 16), 1)
    assert (a.session.mtu, b.session.mtu) == (1378, 1228)


@pytest.mark.parametrize("command", [Command.SUSPEND, Command.RESUME, 7])
def test_suspend_resume_and_unknown_commands_are_refused(command: int) -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    manager.select(selected_tlv(), 1)
    with pytest.raises(HapError) as exc:
        manager.select(selected_tlv(command=command), 1)
    assert status_of(exc) == HapStatus.INVALID_VALUE


def test_unknown_session_or_other_connection_is_refused() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    for raw, owner in ((selected_tlv(b"X" * 16), 1), (selected_tlv(), 2)):
        with pytest.raises(HapError) as exc:
            manager.select(raw, owner)
        assert status_of(exc) == HapStatus.INVALID_VALUE


@pytest.mark.parametrize("raw", [
    selected_tlv(command=4),  # reconfigure before start
    selected_tlv(width=8),
    selected_tlv(fps=0),
    selected_tlv(bitrate=0),
    tlv8.encode([(1, tlv8.encode([(1, SID), (2, 1)]))]),  # start without video parameters
])
def test_bad_selections_are_invalid(raw: bytes) -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    with pytest.raises(HapError) as exc:
        manager.select(raw, 1)
    assert status_of(exc) == HapStatus.INVALID_VALUE


def test_a_closed_connection_ends_its_sessions_only() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(SID), 1, fake_bind)
    manager.setup(setup_tlv(b"B" * 16), 2, fake_bind)
    assert [s.session_id for s in manager.owner_closed(1)] == [SID]
    assert list(manager.sessions) == [b"B" * 16]
    assert manager.read_setup(1) == bytes.fromhex("020102")


def test_copy_only_when_the_source_fits() -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    video = manager.select(selected_tlv(width=1280, height=720), 1).session.video
    assert video is not None
    probe = {"codec": "avc1", "width": 1280, "height": 720}
    assert source_fits(probe, video, copy_allowed=True)
    assert not source_fits(probe, video, copy_allowed=False)
    assert not source_fits({**probe, "width": 1920}, video, copy_allowed=True)
    assert source_fits({**probe, "codec": "avc3"}, video, copy_allowed=True)
    assert not source_fits({**probe, "codec": "hvc1"}, video, copy_allowed=True)
    assert not source_fits(None, video, copy_allowed=True)


# -- the ffmpeg argv ------------------------------------------------------------------------------
def _spec(**video: object) -> LiveStreamSpec:
    v = LiveVideo(port=5000, ssrc=1234, width=320, height=240, fps=15, bitrate_kbps=300, mtu=1378,
                  srtp_key_b64="S0VZ", **video)  # type: ignore[arg-type]
    a = LiveAudio(port=5002, ssrc=5678, sample_rate_hz=16000, packet_time_ms=30, srtp_key_b64="QVVE")
    return LiveStreamSpec(inputs=[InputSpec("rtsp://cam/1", {"rtsp_transport": "tcp"})], address="127.0.0.1",
                          video=v, audio=a, audio_map="0:a:0")


def _after(argv: list[str], flag: str, start: int = 0) -> str:
    return argv[argv.index(flag, start) + 1]


def test_argv_transcodes_to_the_selection() -> None:
    argv = build_live_argv(_spec())
    assert argv[:1] == ["ffmpeg"] and _after(argv, "-progress") == "pipe:1"
    assert argv[argv.index("-i") - 2:argv.index("-i") + 2] == ["-rtsp_transport", "tcp", "-i", "rtsp://cam/1"]
    assert (_after(argv, "-c:v"), _after(argv, "-vf"), _after(argv, "-r"), _after(argv, "-b:v")) == \
        ("libx264", "scale=320:240", "15", "300k")
    assert (_after(argv, "-payload_type"), _after(argv, "-ssrc"), _after(argv, "-srtp_out_params")) == \
        ("99", "1234", "S0VZ")
    assert _after(argv, "-srtp_out_suite") == "AES_CM_128_HMAC_SHA1_80"
    assert "srtp://127.0.0.1:5000?rtcpport=5000&pkt_size=1378" in argv
    audio_at = argv.index("-map", argv.index("-map") + 1)
    assert argv[audio_at + 1] == "0:a:0"
    assert (_after(argv, "-c:a"), _after(argv, "-ar"), _after(argv, "-frame_duration")) == ("libopus", "16000", "30")
    # Opus goes through a one-slave tee whose setts relabels the encoder's 1/16000 timestamps as
    # the RTP muxer's 1/48000 (RTP time counts samples; ffmpeg still paces by real time).
    assert _after(argv, "-f", audio_at) == "tee"
    assert argv[-1] == ("[f=rtp:payload_type=110:ssrc=5678:bsfs/a=setts=time_base=1/48000"
                        ":srtp_out_suite=AES_CM_128_HMAC_SHA1_80:srtp_out_params=QVVE]"
                        "srtp://127.0.0.1:5002?rtcpport=5002&pkt_size=188")
    assert "setts" not in " ".join(argv[:audio_at])


def test_argv_of_an_encoding_profile_uses_its_encoder_filter_and_options() -> None:
    """A secure-video tier encoded with a named profile: the profile's codec, filter and options
    instead of the built-in libx264 ones; our payload type, SSRC and SRTP stay."""
    argv = build_live_argv(_spec(encoder="h264_vaapi", encoder_filter="scale_vaapi=w=320:h=240",
                                 encoder_options=(("profile:v", "high"), ("rc_mode", "CBR"), ("flag", None))))
    assert (_after(argv, "-c:v"), _after(argv, "-vf"), _after(argv, "-profile:v"), _after(argv, "-rc_mode")) == \
        ("h264_vaapi", "scale_vaapi=w=320:h=240", "high", "CBR")
    assert argv[argv.index("-flag") + 1] == "-payload_type"
    assert "-preset" not in argv and "-tune" not in argv and "-level:v" not in argv
    assert (_after(argv, "-payload_type"), _after(argv, "-ssrc"), _after(argv, "-srtp_out_params")) == \
        ("99", "1234", "S0VZ")


def test_argv_of_an_h265_tier_encodes_with_libx265_and_parameter_sets_in_band() -> None:
    argv = build_live_argv(_spec(encoder="libx265", keyframe_interval_s=1.0))
    assert (_after(argv, "-c:v"), _after(argv, "-vf"), _after(argv, "-r")) == ("libx265", "scale=320:240", "15")
    params = _after(argv, "-x265-params").split(":")
    assert {"keyint=15", "min-keyint=15", "bframes=0", "open-gop=0", "repeat-headers=1"} <= set(params)
    assert "-profile:v" not in argv and "-level:v" not in argv  # H.264's names mean nothing to x265
    assert copy_bsf_for(parse_source("/clips/a.mp4"), hevc=True) == "hevc_mp4toannexb"


def test_argv_copies_and_can_be_video_only_and_ipv6() -> None:
    spec = _spec(encoder=None)
    spec = LiveStreamSpec(inputs=spec.inputs, address="::1", video=spec.video, audio=None)
    argv = build_live_argv(spec, "/usr/bin/ffmpeg")
    assert argv[0] == "/usr/bin/ffmpeg"
    assert (_after(argv, "-c:v"), _after(argv, "-bsf:v")) == ("copy", "dump_extra=freq=keyframe")
    assert "-vf" not in argv and "-c:a" not in argv
    assert argv[-1] == "srtp://[::1]:5000?rtcpport=5000&pkt_size=1378"


def test_argv_audio_over_ipv6_and_plain_rtp() -> None:
    spec = _spec()
    audio = LiveAudio(port=5002, ssrc=5678, sample_rate_hz=24000)
    spec = LiveStreamSpec(inputs=spec.inputs, address="::1", video=spec.video, audio=audio, audio_map="0:a:0")
    argv = build_live_argv(spec)
    assert _after(argv, "-ar") == "24000"
    assert argv[-2:] == ["tee", "[f=rtp:payload_type=110:ssrc=5678:bsfs/a=setts=time_base=1/48000]"
                                "rtp://[::1]:5002?rtcpport=5002&pkt_size=188"]


def test_copy_filter_per_source() -> None:
    assert copy_bsf_for(parse_source("rtsp://cam/1")) == "dump_extra=freq=keyframe"  # Annex B: repeat SPS/PPS
    assert copy_bsf_for(parse_source("/clips/a.mp4")) == "h264_mp4toannexb"  # avcC: convert, SPS/PPS in band
    assert copy_bsf_for(parse_source("loop:/clips/a.ts")) is None  # ffmpeg 5.1: no output bsf with -stream_loop
    spec = _spec(encoder=None, copy_bsf=None)
    assert "-bsf:v" not in build_live_argv(spec)


# -- fuzz: hostile TLVs only ever give HapError ------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_setup_parser(raw: bytes) -> None:
    with contextlib.suppress(HapError):
        parse_setup_request(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_selected_parser_and_manager(raw: bytes) -> None:
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    with contextlib.suppress(HapError):
        parse_selected(raw)
    with contextlib.suppress(HapError):
        manager.select(raw, 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5), st.lists(st.tuples(st.integers(0, 6), st.binary(max_size=20)), max_size=6),
       st.lists(st.tuples(st.integers(0, 6), st.binary(max_size=20)), max_size=6))
def test_fuzz_structured_selected(command: int, video: list[tuple[int, bytes]],
                                  audio: list[tuple[int, bytes]]) -> None:
    """Well-formed TLV with hostile contents where the parser looks (start with odd video
    and audio parameters, reconfigure after a valid start)."""
    manager = StreamingManager()
    manager.setup(setup_tlv(), 1, fake_bind)
    control = (1, tlv8.encode([(1, SID), (2, command)]))
    for raw in (tlv8.encode([control, (2, tlv8.encode(video)), (3, tlv8.encode(audio))]),
                selected_tlv(), tlv8.encode([control, (2, tlv8.encode(video))])):
        with contextlib.suppress(HapError):
            manager.select(raw, 1)


def test_fuzz_setup_then_selected_over_the_manager() -> None:
    """Parsing hostile SetupEndpoints never leaves a half-made session behind."""
    manager = StreamingManager()
    for raw in (setup_tlv()[:-3], setup_tlv() + b"\x09", b"\x01\x10" + bytes(16)):
        with contextlib.suppress(HapError):
            manager.setup(raw, 1, fake_bind)
    assert not manager.sessions
