"""Parsing the small ``moov`` and ``moof`` boxes of ffmpeg's fragmented MP4 (ISO/IEC 14496-12).

Each function is handed one whole, already bounded box (the reader in :mod:`.fmp4` has checked
its size and cut it out of the pipe bytes) and walks its children: ``parse_moov`` gives the
tracks (codec, size, H.264 profile and level from ``avcC``, the H.265 ``hvcC``, AAC object type
from ``esds``), ``parse_moof`` the sequence number and each track's run (sample count, duration,
decode time, sync samples). :func:`box_header` reads one box header, for these walks and for the
reader's cut of the pipe bytes alike. Every problem, whatever its cause, surfaces as
:class:`Fmp4Error`.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator

from .hevc import HevcConfig, HevcError, parse_hvcc
from .segments import AudioTrack, InitSegment, TrackFragment, TrackInfo, VideoTrack

__all__ = ["Fmp4Error", "box_header", "parse_moof", "parse_moov"]

# Sample flags (ISO/IEC 14496-12 8.8.3.1): bit 16 is sample_is_non_sync_sample.
_NON_SYNC = 0x0001_0000

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Fmp4Error(Exception):
    """The byte stream is not the fragmented MP4 we expect: restart the producer.

    Raised for corrupt or oversized boxes, truncated streams and any structure the reader cannot
    make sense of. Once raised, the reader is poisoned and every later ``feed`` raises again: the
    only recovery is a new reader fed by a new ffmpeg run.
    """



def box_header(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, bytes, int] | None:
    """``(size, type, header length)`` of the box at ``buf[pos:end]``, or ``None`` while fewer
    bytes than its header are there (8, or 16 with a 64-bit size). ``size`` is as written: 0
    means "to the end of the file"."""
    if end - pos < 8:
        return None
    size = _U32.unpack_from(buf, pos)[0]
    kind = bytes(buf[pos + 4 : pos + 8])
    if size != 1:
        return size, kind, 8
    if end - pos < 16:
        return None
    return _U64.unpack_from(buf, pos + 8)[0], kind, 16


def _boxes(buf: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, body_start, box_end)`` for each child box in ``buf[start:end]``."""
    pos = start
    while pos < end:
        head = box_header(buf, pos, end)
        if head is None:
            raise Fmp4Error("truncated box header inside a container")
        size, kind, header = head
        if size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Fmp4Error(f"box {kind!r} of size {size} overruns its container")
        yield kind, pos + header, pos + size
        pos += size


def _child(buf: memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, body, box_end in _boxes(buf, start, end):
        if k == kind:
            return body, box_end
    return None


def _need(end: int, pos: int, n: int, what: str) -> None:
    if pos + n > end:
        raise Fmp4Error(f"{what} truncated")


def parse_moov(buf: memoryview) -> tuple[TrackInfo, ...]:
    """Parse a whole ``moov`` box (header included) into track descriptions."""
    start, end = 8, len(buf)
    if _U32.unpack_from(buf, 0)[0] == 1:
        start = 16
    trex: dict[int, tuple[int, int]] = {}
    raw: list[TrackInfo] = []
    for kind, body, box_end in _boxes(buf, start, end):
        if kind == b"mvex":
            for k2, b2, e2 in _boxes(buf, body, box_end):
                if k2 == b"trex":
                    _need(e2, b2, 24, "trex")
                    track_id, _sdi, duration, _size, flags = struct.unpack_from(">5I", buf, b2 + 4)
                    trex[track_id] = (duration, flags)
        elif kind == b"trak":
            track = _parse_trak(buf, body, box_end)
            if track is not None:
                raw.append(track)
    tracks: list[TrackInfo] = []
    for t in raw:
        duration, flags = trex.get(t.track_id, (0, 0))
        if isinstance(t, VideoTrack):
            tracks.append(
                VideoTrack(
                    t.track_id, t.handler, t.timescale, t.codec, duration, flags,
                    t.width, t.height, t.profile_idc, t.constraint_flags, t.level_idc, t.hevc,
                )
            )
        elif isinstance(t, AudioTrack):
            tracks.append(
                AudioTrack(
                    t.track_id, t.handler, t.timescale, t.codec, duration, flags,
                    t.sample_rate, t.channels, t.audio_object_type,
                )
            )
        else:
            tracks.append(TrackInfo(t.track_id, t.handler, t.timescale, t.codec, duration, flags))
    if not tracks:
        raise Fmp4Error("moov has no tracks")
    return tuple(tracks)


def _parse_trak(buf: memoryview, start: int, end: int) -> TrackInfo | None:
    tkhd = _child(buf, start, end, b"tkhd")
    mdia = _child(buf, start, end, b"mdia")
    if tkhd is None or mdia is None:
        raise Fmp4Error("trak without tkhd or mdia")
    b, e = tkhd
    _need(e, b, 4, "tkhd")
    version = buf[b]
    id_pos = b + (4 + 16 if version == 1 else 4 + 8)
    _need(e, id_pos, 4, "tkhd")
    track_id = _U32.unpack_from(buf, id_pos)[0]
    mdhd = _child(buf, mdia[0], mdia[1], b"mdhd")
    hdlr = _child(buf, mdia[0], mdia[1], b"hdlr")
    minf = _child(buf, mdia[0], mdia[1], b"minf")
    if mdhd is None or hdlr is None or minf is None:
        raise Fmp4Error("mdia without mdhd, hdlr or minf")
    b, e = mdhd
    _need(e, b, 4, "mdhd")
    ts_pos = b + (4 + 16 if buf[b] == 1 else 4 + 8)
    _need(e, ts_pos, 4, "mdhd")
    timescale = _U32.unpack_from(buf, ts_pos)[0]
    if timescale == 0:
        raise Fmp4Error("track timescale is 0")
    b, e = hdlr
    _need(e, b, 12, "hdlr")
    handler = bytes(buf[b + 8 : b + 12]).decode("latin-1")
    stbl = _child(buf, minf[0], minf[1], b"stbl")
    stsd = _child(buf, stbl[0], stbl[1], b"stsd") if stbl else None
    if stsd is None:
        raise Fmp4Error("track without stsd")
    b, e = stsd
    _need(e, b, 8, "stsd")
    entries = list(_boxes(buf, b + 8, e))
    if not entries:
        raise Fmp4Error("stsd without sample entry")
    kind, eb, ee = entries[0]
    codec = kind.decode("latin-1")
    if handler == "vide":
        # VisualSampleEntry: 8 (SampleEntry) + 16 pre-defined/reserved, then width, height, ...
        _need(ee, eb, 78, "visual sample entry")
        width, height = struct.unpack_from(">HH", buf, eb + 24)
        profile = constraints = level = 0
        hevc: HevcConfig | None = None
        for k, cb, ce in _boxes(buf, eb + 78, ee):
            if k == b"avcC":
                _need(ce, cb, 4, "avcC")
                profile, constraints, level = buf[cb + 1], buf[cb + 2], buf[cb + 3]
            elif k == b"hvcC":
                try:
                    hevc = parse_hvcc(buf[cb:ce])
                except HevcError as exc:
                    raise Fmp4Error(f"hvcC: {exc}") from exc
        return VideoTrack(
            track_id, handler, timescale, codec, 0, 0, width, height, profile, constraints, level, hevc
        )
    if handler == "soun":
        # AudioSampleEntry: 8 (SampleEntry) + 8 reserved, channels, sample size, 4, rate 16.16
        _need(ee, eb, 28, "audio sample entry")
        channels = struct.unpack_from(">H", buf, eb + 16)[0]
        rate = _U32.unpack_from(buf, eb + 24)[0] >> 16
        aot = 0
        for k, cb, ce in _boxes(buf, eb + 28, ee):
            if k == b"esds":
                aot, asc_rate, asc_channels = _parse_esds(buf, cb + 4, ce)
                rate = asc_rate or rate
                channels = asc_channels or channels
        return AudioTrack(track_id, handler, timescale, codec, 0, 0, rate, channels, aot)
    return TrackInfo(track_id, handler, timescale, codec)


_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def _parse_esds(buf: memoryview, pos: int, end: int) -> tuple[int, int, int]:
    """Return (audio object type, sample rate, channels) from an esds body (after version/flags)."""

    def descriptor(p: int) -> tuple[int, int, int]:
        _need(end, p, 2, "esds descriptor")
        tag = buf[p]
        p += 1
        length = 0
        for _ in range(4):
            _need(end, p, 1, "esds length")
            byte = buf[p]
            p += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        return tag, p, min(p + length, end)

    tag, p, e = descriptor(pos)
    if tag != 0x03:
        return 0, 0, 0
    _need(e, p, 3, "ES_Descriptor")
    flags = buf[p + 2]
    p += 3
    if flags & 0x80:
        p += 2
    if flags & 0x40:
        _need(e, p, 1, "ES_Descriptor URL")
        p += 1 + buf[p]
    if flags & 0x20:
        p += 2
    tag, p, e2 = descriptor(p)
    if tag != 0x04:
        return 0, 0, 0
    p += 13  # objectTypeIndication, streamType, bufferSizeDB, maxBitrate, avgBitrate
    if p >= e2:
        return 0, 0, 0
    tag, p, e3 = descriptor(p)
    if tag != 0x05 or e3 - p < 2:
        return 0, 0, 0
    bits = int.from_bytes(buf[p : min(e3, p + 5)], "big")
    nbits = 8 * (min(e3, p + 5) - p)

    def take(n: int) -> int:
        nonlocal nbits
        if nbits < n:
            raise Fmp4Error("AudioSpecificConfig truncated")
        nbits -= n
        return (bits >> nbits) & ((1 << n) - 1)

    aot = take(5)
    if aot == 31:
        aot = 32 + take(6)
    index = take(4)
    rate = take(24) if index == 15 else (_AAC_RATES[index] if index < len(_AAC_RATES) else 0)
    channels = take(4)
    return aot, rate, channels


_MAX_SYNC = 1000  # sync-sample times kept per fragment (all-intra video would list every frame)
_TRUN_FIELDS = ((0x100, "I"), (0x200, "I"), (0x400, "I"), (0x800, "i"))


def parse_moof(
    buf: memoryview, init: InitSegment
) -> tuple[int, tuple[TrackFragment, ...]]:
    """Parse a whole ``moof`` box into its sequence number and per-track runs."""
    seq = 0
    trafs: list[TrackFragment] = []
    for kind, body, box_end in _boxes(buf, 8, len(buf)):
        if kind == b"mfhd":
            _need(box_end, body, 8, "mfhd")
            seq = _U32.unpack_from(buf, body + 4)[0]
        elif kind == b"traf":
            trafs.append(_parse_traf(buf, body, box_end, init))
    if not trafs:
        raise Fmp4Error("moof without traf")
    return seq, tuple(trafs)


def _parse_traf(buf: memoryview, start: int, end: int, init: InitSegment) -> TrackFragment:
    tfhd = _child(buf, start, end, b"tfhd")
    if tfhd is None:
        raise Fmp4Error("traf without tfhd")
    b, e = tfhd
    _need(e, b, 8, "tfhd")
    flags = _U32.unpack_from(buf, b)[0] & 0xFFFFFF
    track_id = _U32.unpack_from(buf, b + 4)[0]
    track = init.track(track_id)
    if track is None:
        raise Fmp4Error(f"fragment for unknown track {track_id}")
    p = b + 8
    default_duration = track.default_sample_duration
    default_flags = track.default_sample_flags
    if flags & 0x1:
        p += 8
    if flags & 0x2:
        p += 4
    if flags & 0x8:
        _need(e, p, 4, "tfhd")
        default_duration = _U32.unpack_from(buf, p)[0]
        p += 4
    if flags & 0x10:
        p += 4
    if flags & 0x20:
        _need(e, p, 4, "tfhd")
        default_flags = _U32.unpack_from(buf, p)[0]
    want_sync = track.handler == "vide"
    base_time = 0
    count = 0
    duration = 0
    first_sync: bool | None = None
    sync_offsets: list[int] = []
    for kind, rb, re_ in _boxes(buf, start, end):
        if kind == b"tfdt":
            _need(re_, rb, 8, "tfdt")
            if buf[rb] == 1:
                _need(re_, rb, 12, "tfdt")
                base_time = _U64.unpack_from(buf, rb + 4)[0]
            else:
                base_time = _U32.unpack_from(buf, rb + 4)[0]
        elif kind == b"trun":
            _need(re_, rb, 8, "trun")
            tflags = _U32.unpack_from(buf, rb)[0] & 0xFFFFFF
            n = _U32.unpack_from(buf, rb + 4)[0]
            p = rb + 8
            if tflags & 0x1:
                p += 4
            first_flags: int | None = None
            if tflags & 0x4:
                _need(re_, p, 4, "trun")
                first_flags = _U32.unpack_from(buf, p)[0]
                p += 4
            if n > 1_000_000:
                raise Fmp4Error("trun sample count is absurd")
            fmt = ">" + "".join(code for bit, code in _TRUN_FIELDS if tflags & bit)
            entry = struct.calcsize(fmt) if len(fmt) > 1 else 0
            if entry and p + n * entry > re_:
                raise Fmp4Error("trun sample table overruns its box")
            if not entry:
                # No per-sample table: every sample uses the defaults (first_flags aside).
                if n:
                    f0 = first_flags if first_flags is not None else default_flags
                    if first_sync is None:
                        first_sync = not f0 & _NON_SYNC
                    if want_sync:
                        if not f0 & _NON_SYNC:
                            sync_offsets.append(duration)
                        if not default_flags & _NON_SYNC:
                            sync_offsets.extend(
                                duration + i * default_duration for i in range(1, min(n, _MAX_SYNC))
                            )
                duration += n * default_duration
                count += n
                continue
            # The sample table in one unpack, every field as unsigned 32 bits (the only signed
            # one, the composition offset, is not used), then the columns we need by slicing.
            width = entry // 4
            table = struct.unpack_from(f">{n * width}I", buf, p)
            durations = table[0::width] if tflags & 0x100 else None
            if tflags & 0x400:
                column = table[(1 if tflags & 0x100 else 0) + (1 if tflags & 0x200 else 0) :: width]
                f0 = column[0] if n else 0
                later_sync = [i for i in range(1, n) if not column[i] & _NON_SYNC] if want_sync else []
            else:
                f0 = default_flags
                later_sync = list(range(1, min(n, _MAX_SYNC + 1))) if want_sync and not f0 & _NON_SYNC else []
            if n:
                f0 = first_flags if first_flags is not None else f0
                if first_sync is None:
                    first_sync = not f0 & _NON_SYNC
                room = _MAX_SYNC - len(sync_offsets)
                if want_sync and room > 0:
                    sync = ([0] if not f0 & _NON_SYNC else []) + later_sync
                    del sync[room:]
                    if durations is None:
                        sync_offsets.extend(duration + i * default_duration for i in sync)
                    else:
                        starts = list(itertools.accumulate(durations, initial=duration))
                        sync_offsets.extend(starts[i] for i in sync)
            duration += sum(durations) if durations is not None else n * default_duration
            count += n
    return TrackFragment(
        track_id, count, duration, base_time, bool(first_sync), tuple(sync_offsets)
    )
