"""Sans-IO reader for the fragmented MP4 that ffmpeg writes on its stdout pipe.

The reader is fed bytes exactly as they come off the pipe, in any split, and hands back two kinds
of events: one :class:`InitSegment` (``ftyp`` + ``moov``) per ffmpeg run, then one
:class:`Fragment` per ``moof`` + ``mdat`` pair. It never touches the media payload: it parses the
small ``moov``/``moof`` boxes and only counts bytes for ``mdat``, so a 4 s, 1 MB fragment costs a
few microseconds plus at most one join of the pipe chunks it spans (none when it fits in one).

Why it is strict:

* Box sizes are capped before anything is buffered for them. A corrupt length (the classic
  "4 GB mdat" after a glitch on the pipe) raises :class:`Fmp4Error` at once instead of making us
  wait for, or allocate, gigabytes (docs/field-lessons.md #7).
* Box types must be four printable ASCII characters. Random bytes almost never pass that, so
  garbage is detected at the first header instead of after an arbitrary amount of buffering.
* Every parsing problem, whatever its cause, surfaces as :class:`Fmp4Error`: the supervisor
  answers it by restarting ffmpeg, never by crashing the camera.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MAX_BOX_SIZE",
    "DEFAULT_MAX_HEADER_BOX_SIZE",
    "AudioTrack",
    "Fmp4Error",
    "Fmp4Event",
    "Fmp4Reader",
    "Fragment",
    "InitSegment",
    "TrackFragment",
    "TrackInfo",
    "VideoTrack",
]

#: Largest top-level box we accept (an ``mdat`` of a 4 s fragment at 20 Mbps is 10 MB).
DEFAULT_MAX_BOX_SIZE = 64 * 1024 * 1024
#: Largest metadata box (``moov``, ``moof`` and anything that is not ``mdat``). Real ones are KBs.
DEFAULT_MAX_HEADER_BOX_SIZE = 4 * 1024 * 1024

# Sample flags (ISO/IEC 14496-12 8.8.3.1): bit 16 is sample_is_non_sync_sample.
_NON_SYNC = 0x0001_0000

# Top-level boxes that may appear between fragments and carry nothing we need.
_SKIPPABLE = frozenset({b"free", b"skip", b"sidx", b"ssix", b"styp", b"mfra", b"prft", b"emsg", b"uuid", b"meta"})

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Fmp4Error(Exception):
    """The byte stream is not the fragmented MP4 we expect: restart the producer.

    Raised for corrupt or oversized boxes, truncated streams and any structure the reader cannot
    make sense of. Once raised, the reader is poisoned and every later ``feed`` raises again: the
    only recovery is a new reader fed by a new ffmpeg run.
    """


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What the ``moov`` says about one track."""

    track_id: int
    handler: str  # "vide", "soun", ...
    timescale: int
    codec: str  # sample entry four-cc, e.g. "avc1", "mp4a"
    default_sample_duration: int = 0
    default_sample_flags: int = 0


@dataclass(frozen=True, slots=True)
class VideoTrack(TrackInfo):
    """An H.264 (or other) video track; profile and level come from ``avcC``."""

    width: int = 0
    height: int = 0
    profile_idc: int = 0
    constraint_flags: int = 0
    level_idc: int = 0

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``avc1.64001f`` (useful in logs and the status page)."""
        if self.codec in ("avc1", "avc3") and self.profile_idc:
            return f"{self.codec}.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"
        return self.codec

    @property
    def profile_name(self) -> str:
        """``baseline``/``main``/``high`` (the names HAP uses) or ``profile_idc=N``."""
        if self.profile_idc == 66:
            return "baseline"
        return {77: "main", 100: "high"}.get(self.profile_idc, f"profile_idc={self.profile_idc}")

    @property
    def level(self) -> str:
        """The level as HAP writes it (``3.1``, ``4.0``)."""
        return f"{self.level_idc // 10}.{self.level_idc % 10}" if self.level_idc else "?"


@dataclass(frozen=True, slots=True)
class AudioTrack(TrackInfo):
    """An audio track; for AAC the object type (2 = AAC-LC) comes from ``esds``."""

    sample_rate: int = 0
    channels: int = 0
    audio_object_type: int = 0  # 2 = AAC-LC, 23 = AAC-LD, 39 = AAC-ELD


@dataclass(frozen=True, slots=True)
class InitSegment:
    """``ftyp`` + ``moov``: the HKSV ``mediaInitialization`` packet of one ffmpeg run.

    ``data`` is exactly the bytes ffmpeg wrote (nothing re-muxed), so it can be sent as is.
    """

    data: bytes
    tracks: tuple[TrackInfo, ...]

    @property
    def video(self) -> VideoTrack | None:
        """The first video track, if any."""
        return next((t for t in self.tracks if isinstance(t, VideoTrack)), None)

    @property
    def audio(self) -> AudioTrack | None:
        """The first audio track, if any."""
        return next((t for t in self.tracks if isinstance(t, AudioTrack)), None)

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def track(self, track_id: int) -> TrackInfo | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


@dataclass(frozen=True, slots=True)
class TrackFragment:
    """One track's run inside a fragment (from ``traf``: tfhd, tfdt, trun)."""

    track_id: int
    sample_count: int
    duration: int  # in the track's timescale
    base_decode_time: int  # tfdt, in the track's timescale
    first_sample_sync: bool
    #: Decode-time offsets (timescale units, from ``base_decode_time``) of every sync sample.
    sync_offsets: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Fragment:
    """A ``moof`` and its ``mdat`` (plus anything ffmpeg put between them), ready to relay.

    ``data`` is a read-only ``memoryview``: a slice of the pipe chunk when the fragment fits in
    one (no copy), otherwise a view of the single join of the chunks it spans. Hold it only as
    long as needed (it keeps the underlying chunk alive).
    """

    data: memoryview
    sequence_number: int
    keyframe: bool  # the primary (video, else first) track starts on a sync sample
    duration_s: float  # of the primary track
    tracks: tuple[TrackFragment, ...]
    timescale: int  # of the primary track
    #: Sync-sample times (seconds, primary track decode time) inside this fragment.
    keyframe_times_s: tuple[float, ...] = field(default=())

    @property
    def size(self) -> int:
        return self.data.nbytes

    @property
    def start_s(self) -> float:
        """Decode time of the first sample of the primary track, in seconds from the run start."""
        first = self.tracks[0] if self.tracks else None
        return first.base_decode_time / self.timescale if first and self.timescale else 0.0

    def track(self, track_id: int) -> TrackFragment | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


Fmp4Event = InitSegment | Fragment


# --------------------------------------------------------------------------------------------
# Box walking over a contiguous, already bounded buffer (moov/moof bodies).


def _boxes(buf: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, body_start, box_end)`` for each child box in ``buf[start:end]``."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise Fmp4Error("truncated box header inside a container")
        size = _U32.unpack_from(buf, pos)[0]
        kind = bytes(buf[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if end - pos < 16:
                raise Fmp4Error("truncated large box header")
            size = _U64.unpack_from(buf, pos + 8)[0]
            header = 16
        elif size == 0:
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


def _parse_moov(buf: memoryview) -> tuple[TrackInfo, ...]:
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
                    t.width, t.height, t.profile_idc, t.constraint_flags, t.level_idc,
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
        for k, cb, ce in _boxes(buf, eb + 78, ee):
            if k == b"avcC":
                _need(ce, cb, 4, "avcC")
                profile, constraints, level = buf[cb + 1], buf[cb + 2], buf[cb + 3]
        return VideoTrack(track_id, handler, timescale, codec, 0, 0, width, height, profile, constraints, level)
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


def _parse_moof(
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
            has_dur = bool(tflags & 0x100)
            has_flags = bool(tflags & 0x400)
            flags_index = (1 if has_dur else 0) + (1 if tflags & 0x200 else 0)
            for i, row in enumerate(struct.iter_unpack(fmt, buf[p : p + n * entry])):
                if i == 0 and first_flags is not None:
                    sflags = first_flags
                elif has_flags:
                    sflags = row[flags_index]
                else:
                    sflags = default_flags
                if first_sync is None:
                    first_sync = not sflags & _NON_SYNC
                if want_sync and not sflags & _NON_SYNC and len(sync_offsets) < _MAX_SYNC:
                    sync_offsets.append(duration)
                duration += row[0] if has_dur else default_duration
            count += n
    return TrackFragment(
        track_id, count, duration, base_time, bool(first_sync), tuple(sync_offsets)
    )


# --------------------------------------------------------------------------------------------
# The streaming reader.


class Fmp4Reader:
    """Incremental fragmented-MP4 reader: ``feed(bytes)`` in any split, get events back.

    Chunks are kept as a queue of ``memoryview`` objects; nothing is copied until a complete
    unit (init segment or fragment) is available, and then at most once. Each call to
    :meth:`feed` costs O(1) while a large ``mdat`` is still arriving.

    Args:
        max_box_size: cap for any top-level box (``mdat`` included).
        max_header_box_size: cap for metadata boxes (``moov``, ``moof``, ``free``...).
    """

    def __init__(
        self,
        *,
        max_box_size: int = DEFAULT_MAX_BOX_SIZE,
        max_header_box_size: int = DEFAULT_MAX_HEADER_BOX_SIZE,
    ) -> None:
        self._max_box = max_box_size
        self._max_header_box = max_header_box_size
        self._chunks: deque[memoryview] = deque()
        self._avail = 0  # bytes buffered in _chunks
        self._scan = 0  # offset (from the buffer head) of the next box header to look at
        self._need = 8  # do nothing until _avail reaches this
        self._unit: bytes | None = None  # b"init" or b"frag" while a unit is being collected
        self._skip_remaining = 0  # bytes of a skippable box still to drop
        self._moof: tuple[int, tuple[TrackFragment, ...]] | None = None
        self._ftyp_seen = False
        self._error: Fmp4Error | None = None
        self.init: InitSegment | None = None
        #: Bytes consumed so far (for status and benchmarks).
        self.bytes_in = 0

    # -- buffer helpers ---------------------------------------------------------------------

    def _peek(self, offset: int, n: int) -> bytes:
        """Copy ``n`` bytes at ``offset`` (small reads only: headers and metadata boxes)."""
        out = bytearray()
        for chunk in self._chunks:
            size = len(chunk)
            if offset >= size:
                offset -= size
                continue
            piece = chunk[offset : offset + n - len(out)]
            out += piece
            offset = 0
            if len(out) == n:
                break
        return bytes(out)

    def _take(self, n: int) -> memoryview:
        """Remove and return the first ``n`` bytes: a slice if one chunk holds them, else one join."""
        first = self._chunks[0]
        if len(first) >= n:
            out = first[:n]
            if len(first) == n:
                self._chunks.popleft()
            else:
                self._chunks[0] = first[n:]
        else:
            parts: list[memoryview] = []
            remaining = n
            while remaining:
                chunk = self._chunks[0]
                if len(chunk) <= remaining:
                    parts.append(chunk)
                    remaining -= len(chunk)
                    self._chunks.popleft()
                else:
                    parts.append(chunk[:remaining])
                    self._chunks[0] = chunk[remaining:]
                    remaining = 0
            out = memoryview(b"".join(parts))
        self._avail -= n
        return out

    def _drop(self, n: int) -> None:
        while n:
            chunk = self._chunks[0]
            if len(chunk) <= n:
                n -= len(chunk)
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[n:]
                n = 0

    # -- public API -------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the end of the current unit."""
        return self._avail

    def feed(self, data: bytes | bytearray | memoryview) -> list[Fmp4Event]:
        """Consume ``data`` and return the init segments and fragments it completes.

        ``data`` must not be mutated afterwards (``bytes`` from a pipe read never is); a
        ``bytearray`` is copied once for safety.

        Raises:
            Fmp4Error: the stream is corrupt. The reader stays failed.
        """
        if self._error is not None:
            raise self._error
        if isinstance(data, bytearray):
            data = bytes(data)
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        if not view.readonly:
            view = memoryview(bytes(view))
        if not len(view):
            return []
        self.bytes_in += len(view)
        if self._skip_remaining:
            dropped = min(self._skip_remaining, len(view))
            self._skip_remaining -= dropped
            view = view[dropped:]
            if not len(view):
                return []
        self._chunks.append(view)
        self._avail += len(view)
        if self._avail < self._need:
            return []
        try:
            return self._parse()
        except Fmp4Error as exc:
            self._error = exc
            raise
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # defensive net
            self._error = Fmp4Error(f"malformed box: {exc}")
            raise self._error from exc

    def eof(self) -> None:
        """Declare the end of the stream; raise if it stopped in the middle of a box or unit.

        A stream cut mid-fragment (ffmpeg killed) is normal for a restart, so callers usually
        just log this; it exists for files and tests that expect a clean end.
        """
        if self._avail or self._unit is not None or self._skip_remaining:
            raise Fmp4Error(f"stream ended inside a box ({self._avail} bytes pending)")

    # -- parsing ----------------------------------------------------------------------------

    def _parse(self) -> list[Fmp4Event]:
        events: list[Fmp4Event] = []
        while True:
            header = self._peek(self._scan, 16)
            if len(header) < 8:
                self._need = self._scan + 8
                return events
            size = _U32.unpack_from(header, 0)[0]
            kind = header[4:8]
            hlen = 8
            if size == 1:
                if len(header) < 16:
                    self._need = self._scan + 16
                    return events
                size = _U64.unpack_from(header, 8)[0]
                hlen = 16
            if not all(0x20 <= c < 0x7F for c in kind):
                raise Fmp4Error(f"not a box type: {bytes(kind)!r}")
            if size == 0:
                raise Fmp4Error(f"box {kind!r} with size 0 (to end of file) in a live stream")
            if size < hlen:
                raise Fmp4Error(f"box {kind!r} size {size} smaller than its header")
            cap = self._max_box if kind == b"mdat" else self._max_header_box
            if size > cap:
                raise Fmp4Error(f"box {kind!r} size {size} exceeds the cap of {cap}")
            end = self._scan + size

            if self._unit is None and kind in _SKIPPABLE:
                # Outside any unit: drop it, even before it has fully arrived.
                if self._avail >= size:
                    self._drop(size)
                else:
                    self._skip_remaining = size - self._avail
                    self._drop(self._avail)
                self._avail = max(0, self._avail - size)
                continue

            if kind == b"mdat":
                if self._unit != b"frag":
                    raise Fmp4Error("mdat outside a fragment")
                if self._avail < end:
                    self._need = end
                    return events
                events.append(self._finish_fragment(end))
                continue

            if self._avail < end:
                self._need = end
                return events

            if kind == b"ftyp":
                if self._unit is not None:
                    raise Fmp4Error("ftyp inside a unit")
                self._unit = b"init"
                self._ftyp_seen = True
                self._scan = end
            elif kind == b"moov":
                if self._unit != b"init":
                    raise Fmp4Error("moov without a preceding ftyp")
                moov = memoryview(self._peek(self._scan, size))
                tracks = _parse_moov(moov)
                data = self._take(end)
                self.init = InitSegment(bytes(data), tracks)
                events.append(self.init)
                self._unit = None
                self._scan = 0
            elif kind == b"moof":
                if self.init is None:
                    raise Fmp4Error("moof before the init segment")
                if self._unit is not None:
                    raise Fmp4Error("moof inside an unfinished unit")
                self._moof = _parse_moof(memoryview(self._peek(self._scan, size)), self.init)
                self._unit = b"frag"
                self._scan = end
            elif self._unit is not None:
                self._scan = end  # some other box inside a unit: keep it with the unit
            else:
                raise Fmp4Error(f"unexpected top-level box {bytes(kind)!r}")

    def _finish_fragment(self, end: int) -> Fragment:
        assert self._moof is not None and self.init is not None
        seq, trafs = self._moof
        data = self._take(end)
        self._unit = None
        self._moof = None
        self._scan = 0
        init = self.init
        primary = trafs[0]
        video = init.video
        if video is not None:
            primary = next((t for t in trafs if t.track_id == video.track_id), primary)
        track = init.track(primary.track_id)
        timescale = track.timescale if track else 1
        ordered = (primary, *(t for t in trafs if t is not primary))
        key_times = tuple((primary.base_decode_time + o) / timescale for o in primary.sync_offsets)
        return Fragment(
            data=data,
            sequence_number=seq,
            keyframe=primary.first_sample_sync,
            duration_s=primary.duration / timescale,
            tracks=ordered,
            timescale=timescale,
            keyframe_times_s=key_times,
        )
