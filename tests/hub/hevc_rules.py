"""What a tvOS 27 hub demands of an H.265 recording, checked on the bytes it received.

Written apart from the sidecar's own box code (a check that reused it would agree with any bug in
it): a small ISO BMFF walker reads the init segment and each fragment the hub reassembled and
returns every broken rule in words (docs/h265.md §What the sidecar does to an H.265 recording):

* the video sample entry is ``hvc1`` (never ``hev1``) with VPS, SPS and PPS in ``hvcC``;
* a ``prft`` comes right before every ``moof``: 32 bytes, version 1, flags 0, the video track as
  reference, a media time equal to the fragment's video ``tfdt``, and NTP times that advance with
  the media and lie near the hub's own clock;
* the first fragment's ``tfdt`` is 0 for every track;
* every fragment's first video sample is a random-access picture (NAL types 16-21).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

NTP_UNIX = 2_208_988_800
IRAP = range(16, 22)


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int, int]]:
    """``(type, box_start, body_start, box_end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        if size < header or pos + size > end:
            raise AssertionError(f"box {kind!r} at {pos} overruns its container")
        out.append((kind, pos, pos + header, pos + size))
        pos += size
    return out


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for k, _, body, box_end in _boxes(data, start, end):
        if k == kind:
            return body, box_end
    raise AssertionError(f"no {kind!r} box")


@dataclass
class HevcInit:
    video_track: int
    sample_entry: bytes
    width: int
    height: int
    timescale: int
    nal_arrays: dict[int, list[bytes]] = field(default_factory=dict)
    length_size: int = 4
    tracks: list[int] = field(default_factory=list)


def read_init(data: bytes) -> HevcInit:
    moov = next((b, e) for k, _, b, e in _boxes(data) if k == b"moov")
    found: HevcInit | None = None
    tracks = []
    for kind, _, body, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _child(data, body, end, b"tkhd")
        track_id = struct.unpack_from(">I", data, tkhd[0] + (20 if data[tkhd[0]] == 1 else 12))[0]
        tracks.append(track_id)
        mdia = _child(data, body, end, b"mdia")
        hdlr = _child(data, *mdia, b"hdlr")
        if data[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        mdhd = _child(data, *mdia, b"mdhd")
        timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        stbl = _child(data, *_child(data, *_child(data, *mdia, b"minf"), b"stbl"), b"stsd")
        entry_kind, _, entry_body, entry_end = _boxes(data, stbl[0] + 8, stbl[1])[0]
        width, height = struct.unpack_from(">HH", data, entry_body + 24)
        found = HevcInit(track_id, entry_kind, width, height, timescale)
        for k, _, cb, _end in _boxes(data, entry_body + 78, entry_end):
            if k != b"hvcC":
                continue
            found.length_size = (data[cb + 21] & 3) + 1
            pos = cb + 23
            for _ in range(data[cb + 22]):
                nal_type, count = data[pos] & 0x3F, struct.unpack_from(">H", data, pos + 1)[0]
                pos += 3
                for _ in range(count):
                    size = struct.unpack_from(">H", data, pos)[0]
                    found.nal_arrays.setdefault(nal_type, []).append(data[pos + 2 : pos + 2 + size])
                    pos += 2 + size
    if found is None:
        raise AssertionError("init segment without a video track")
    found.tracks = tracks
    return found


def check_init(init: HevcInit) -> list[str]:
    problems = []
    if init.sample_entry != b"hvc1":
        problems.append(f"sample entry {init.sample_entry!r}, not b'hvc1'")
    for nal_type, name in ((32, "VPS"), (33, "SPS"), (34, "PPS")):
        if not init.nal_arrays.get(nal_type):
            problems.append(f"hvcC has no {name}")
    return problems


def _traf_times(data: bytes, moof: tuple[int, int]) -> dict[int, int]:
    times = {}
    for kind, _, body, end in _boxes(data, *moof):
        if kind != b"traf":
            continue
        tfhd = _child(data, body, end, b"tfhd")
        tfdt = _child(data, body, end, b"tfdt")
        track = struct.unpack_from(">I", data, tfhd[0] + 4)[0]
        times[track] = struct.unpack_from(">Q" if data[tfdt[0]] == 1 else ">I", data, tfdt[0] + 4)[0]
    return times


def _first_video_nal_type(data: bytes, moof_start: int, moof: tuple[int, int], init: HevcInit) -> int:
    for kind, _, body, end in _boxes(data, *moof):
        if kind != b"traf":
            continue
        tfhd = _child(data, body, end, b"tfhd")
        flags, track = struct.unpack_from(">II", data, tfhd[0])
        if track != init.video_track:
            continue
        trun = _child(data, body, end, b"trun")
        tflags = struct.unpack_from(">I", data, trun[0])[0] & 0xFFFFFF
        assert tflags & 1 and flags & 0x020000, "expected default-base-is-moof and a data offset"
        offset = struct.unpack_from(">i", data, trun[0] + 8)[0]
        sample = moof_start + offset
        # Skip parameter sets and SEI in front of the first picture slice.
        while True:
            size = int.from_bytes(data[sample : sample + init.length_size], "big")
            nal = (data[sample + init.length_size] >> 1) & 0x3F
            if nal < 32:
                return nal
            sample += init.length_size + size
    raise AssertionError("fragment without video")


def check_fragments(init: HevcInit, fragments: list[bytes], *, now: float | None = None) -> list[str]:
    """Every broken rule of the recording's fragments (each as the hub reassembled it)."""
    problems: list[str] = []
    now = time.time() if now is None else now
    first_ntp: float | None = None
    for index, data in enumerate(fragments):
        boxes = _boxes(data)
        kinds = [k for k, *_ in boxes]
        if kinds[:2] != [b"prft", b"moof"]:
            problems.append(f"fragment {index}: starts with {kinds[:2]}, not prft then moof")
            continue
        _, prft_start, prft_body, prft_end = boxes[0]
        _, moof_start, moof_body, moof_end = boxes[1]
        if prft_end - prft_start != 32:
            problems.append(f"fragment {index}: prft of {prft_end - prft_start} bytes, not 32")
            continue
        version_flags, track, ntp, media_time = struct.unpack_from(">IIQQ", data, prft_body)
        if version_flags != 0x01000000:
            problems.append(f"fragment {index}: prft version/flags {version_flags:#010x}, not version 1 flags 0")
        if track != init.video_track:
            problems.append(f"fragment {index}: prft reference track {track}, not the video track {init.video_track}")
        times = _traf_times(data, (moof_body, moof_end))
        video_time = times.get(init.video_track)
        if media_time != video_time:
            problems.append(f"fragment {index}: prft media_time {media_time} != video tfdt {video_time}")
        if index == 0 and any(times.values()):
            problems.append(f"first fragment's tfdt is not 0: {times}")
        wall = ntp / (1 << 32) - NTP_UNIX
        if abs(wall - now) > 600:
            problems.append(f"fragment {index}: prft wall clock {wall:.0f} is far from now ({now:.0f})")
        if first_ntp is None:
            first_ntp = wall
        elif abs((wall - first_ntp) - media_time / init.timescale) > 0.01:
            problems.append(f"fragment {index}: prft NTP does not advance with the media time")
        nal = _first_video_nal_type(data, moof_start, (moof_body, moof_end), init)
        if nal not in IRAP:
            problems.append(f"fragment {index}: starts with NAL type {nal}, not a random-access picture")
    return problems
