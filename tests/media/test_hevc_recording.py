"""The per-recording H.265 rewrite (sans-IO): golden bytes, no copy of ``mdat``, a round trip
through ffprobe on real libx265 fragments, and hypothesis on the box code."""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.media import (
    Fragment,
    HevcRecording,
    InitSegment,
    RewriteError,
    VideoTrack,
    init_problems,
    ntp_timestamp,
    prft_box,
    rewrite_fragment,
)
from sidecar.media.hevc_recording import NTP_UNIX_OFFSET_S, first_sample


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


# A fragment as ffmpeg writes it: video traf (tfdt version 1) and audio traf (tfdt version 0).
MOOF = box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", 7))
           + box(b"traf", full(b"tfhd", 0, 0x020000, struct.pack(">I", 1))
                 + full(b"tfdt", 1, 0, struct.pack(">Q", 900_000))
                 + full(b"trun", 0, 0x000201, struct.pack(">IiI", 1, 140, 4)))
           + box(b"traf", full(b"tfhd", 0, 0x020000, struct.pack(">I", 2))
                 + full(b"tfdt", 0, 0, struct.pack(">I", 320_000))))
MDAT = box(b"mdat", b"abcd")

GOLDEN_HEAD = bytes.fromhex(
    # prft: size 32, version 1, flags 0, reference track 1, NTP 1_800_000_000.5 s, media time 450000
    "00000020" "70726674" "01000000" "00000001" "eef4508080000000" "000000000006ddd0"
    # the moof, byte for byte the same but for the two tfdt values: 900000 -> 450000, 320000 -> 160000
    "00000084" "6d6f6f66" "00000010" "6d666864" "00000000" "00000007"
    "00000044" "74726166" "00000010" "74666864" "00020000" "00000001"
    "00000014" "74666474" "01000000" "000000000006ddd0"
    "00000018" "7472756e" "00000201" "00000001" "0000008c" "00000004"
    "00000028" "74726166" "00000010" "74666864" "00020000" "00000002"
    "00000010" "74666474" "00000000" "00027100"
)


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0) == NTP_UNIX_OFFSET_S << 32
    assert ntp_timestamp(1_800_000_000.5) == 0xEEF45080_80000000
    with pytest.raises(ValueError):
        ntp_timestamp(-1)


def test_prft_layout() -> None:
    raw = prft_box(3, 0x0102030405060708, 0x1112131415161718)
    assert raw == bytes.fromhex("00000020707266740100000000000003" "0102030405060708" "1112131415161718")


def test_rewrite_golden_bytes() -> None:
    data = memoryview(MOOF + MDAT)
    out = rewrite_fragment(data, origins={1: 450_000, 2: 160_000}, reference_track_id=1,
                           ntp=ntp_timestamp(1_800_000_000.5))
    assert out.head == GOLDEN_HEAD
    assert bytes(out.body) == MDAT and out.media_time == 450_000 and out.size == 32 + len(MOOF) + len(MDAT)
    assert bytes(data) == MOOF + MDAT  # the prebuffer's bytes are never written to


def test_mdat_is_a_view_of_the_original_bytes() -> None:
    original = bytearray(MOOF + MDAT)
    out = rewrite_fragment(memoryview(original), origins={1: 0, 2: 0}, reference_track_id=1, ntp=0)
    assert out.body.obj is original
    original[-1] = ord("z")
    assert bytes(out.body).endswith(b"abcz")  # shared, not copied


@pytest.mark.parametrize(
    ("data", "origins", "match"),
    [
        (MDAT, {1: 0, 2: 0}, "not moof"),
        (MOOF[:-4], {1: 0, 2: 0}, "moof of size"),
        (MOOF + MDAT, {1: 0}, "no origin for track 2"),
        (MOOF + MDAT, {1: 900_001, 2: 0}, "before the recording's start"),
        (b"moof", {}, "shorter than a box header"),
    ],
)
def test_rewrite_errors(data: bytes, origins: dict[int, int], match: str) -> None:
    with pytest.raises(RewriteError, match=match):
        rewrite_fragment(data, origins=origins, reference_track_id=1, ntp=0)


def test_rewrite_needs_the_reference_track() -> None:
    with pytest.raises(RewriteError, match="reference track 9"):
        rewrite_fragment(MOOF + MDAT, origins={1: 0, 2: 0}, reference_track_id=9, ntp=0)


def _top_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    return out


def test_recording_round_trip_through_ffprobe(hevc_events: tuple[InitSegment, list[Fragment]],
                                              tmp_path: Path) -> None:
    """A recording that begins at the run's second fragment: tfdt from 0, a prft before every
    moof with advancing NTP times, and ffmpeg decodes it from 0 without an error."""
    init, fragments = hevc_events
    video = init.video
    assert video is not None and init_problems(init) == []
    recording = HevcRecording(init, wall_clock_start_s=1_800_000_000.0)
    out = [recording.rewrite(f) for f in fragments[1:]]
    assert all(recording.starts_at_random_access(f) for f in fragments)
    path = tmp_path / "recording.mp4"
    path.write_bytes(init.data + b"".join(o.head + bytes(o.body) for o in out))

    top = _top_boxes(path.read_bytes())
    kinds = [k for k, _ in top]
    assert kinds[:2] == [b"ftyp", b"moov"] and kinds[2:] == [b"prft", b"moof", b"mdat"] * len(out)
    prfts = [body for k, body in top if k == b"prft"]
    times = [struct.unpack(">IIQQ", p) for p in prfts]
    assert all(vf == 1 << 24 and track == video.track_id for vf, track, _, _ in times)
    assert [media for *_, media in times] == [round(4.0 * i * video.timescale) for i in range(len(out))]
    ntp_s = [ntp / (1 << 32) - NTP_UNIX_OFFSET_S for _, _, ntp, _ in times]
    assert ntp_s == pytest.approx([1_800_000_000.0 + 4.0 * i for i in range(len(out))], abs=1e-6)

    rc = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                        capture_output=True, timeout=60)
    assert rc.returncode == 0 and rc.stderr == b"", rc.stderr
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time,flags",
         "-show_entries", "stream=codec_name,codec_tag_string,width,height", "-of", "json", str(path)],
        check=True, capture_output=True, timeout=60).stdout)
    stream = probe["streams"][0]
    assert (stream["codec_name"], stream["codec_tag_string"]) == ("hevc", "hvc1")
    assert (stream["width"], stream["height"]) == (320, 180)
    packets = probe["packets"]
    assert float(packets[0]["dts_time"]) == 0.0 and packets[0]["flags"].startswith("K")


def test_first_sample_of_the_hand_made_fragment() -> None:
    track = VideoTrack(1, "vide", 90000, "hvc1")
    view = first_sample(memoryview(MOOF + MDAT), track)  # trun data offset 140: just past mdat's header
    assert bytes(view) == b"abcd"
    with pytest.raises(RewriteError, match="outside"):
        first_sample(MOOF + MDAT[:-1], track)
    with pytest.raises(RewriteError, match="no traf for track 5"):
        first_sample(MOOF + MDAT, VideoTrack(5, "vide", 90000, "hvc1"))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_fragments_raise_only_rewrite_error(data: st.DataObject) -> None:
    raw = bytearray(MOOF + MDAT)
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    origins = data.draw(st.dictionaries(st.integers(0, 3), st.integers(0, 2**40), max_size=3))
    try:
        out = rewrite_fragment(bytes(raw), origins=origins, reference_track_id=1, ntp=0)
    except RewriteError:
        pass
    else:
        assert len(out.head) == 32 + struct.unpack_from(">I", raw)[0]
    with contextlib.suppress(RewriteError):
        first_sample(bytes(raw), VideoTrack(1, "vide", 90000, "hvc1"))


@settings(max_examples=100, deadline=None)
@given(video=st.integers(0, 2**64 - 1), audio=st.integers(0, 2**32 - 1), data=st.data())
def test_rebased_times_are_the_originals_minus_the_origins(video: int, audio: int, data: st.DataObject) -> None:
    moof = bytearray(MOOF)
    struct.pack_into(">Q", moof, MOOF.index(b"tfdt") + 8, video)
    struct.pack_into(">I", moof, MOOF.rindex(b"tfdt") + 8, audio)
    ov, oa = data.draw(st.integers(0, video)), data.draw(st.integers(0, audio))
    out = rewrite_fragment(bytes(moof) + MDAT, origins={1: ov, 2: oa}, reference_track_id=1, ntp=5)
    head = out.head[32:]
    assert struct.unpack_from(">Q", head, MOOF.index(b"tfdt") + 8)[0] == video - ov == out.media_time
    assert struct.unpack_from(">I", head, MOOF.rindex(b"tfdt") + 8)[0] == audio - oa
    assert out.head[:32] == prft_box(1, 5, video - ov)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2))
def test_any_starting_fragment_rebases_to_zero(hevc_events: tuple[InitSegment, list[Fragment]],
                                               start: int) -> None:
    init, fragments = hevc_events
    recording = HevcRecording(init, wall_clock_start_s=1_000.0)
    first = recording.rewrite(fragments[start])
    assert first.media_time == 0
    assert struct.unpack_from(">IIQQ", first.head, 8)[3] == 0
