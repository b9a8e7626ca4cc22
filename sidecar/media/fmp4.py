"""Sans-IO reader for the fragmented MP4 that ffmpeg writes on its stdout pipe.

The reader is fed bytes exactly as they come off the pipe, in any split, and hands back two kinds
of events: one :class:`InitSegment` (``ftyp`` + ``moov``) per ffmpeg run, then one
:class:`Fragment` per ``moof`` + ``mdat`` pair. It never touches the media payload: it parses the
small ``moov``/``moof`` boxes and only counts bytes for ``mdat``, so a 4 s, 1 MB fragment costs a
few microseconds plus at most one copy of its bytes (none when it fits in the piece fed). A pipe
reader can do better still: :meth:`Fmp4Reader.get_buffer` says where the next bytes should go
and, once the ``mdat`` header has told the fragment's size, that is the fragment's own buffer, so
its payload is read from the pipe to where it stays (issue 23: the join of a fragment's pipe
pieces was a tenth of an idle camera's CPU).
This module cuts the pipe bytes into boxes; :mod:`.fmp4_boxes` parses the ``moov`` and ``moof``
boxes, and :mod:`.segments` holds what comes out.

Why it is strict:

* Box sizes are capped before anything is buffered for them. A corrupt length (the classic
  "4 GB mdat" after a glitch on the pipe) raises :class:`Fmp4Error` at once instead of making us
  wait for, or allocate, gigabytes (docs/field-lessons.md #7).
* Box types must be four printable ASCII characters. Random bytes almost never pass that, so
  garbage is detected at the first header instead of after an arbitrary amount of buffering.
* Every parsing problem, whatever its cause, surfaces as :class:`Fmp4Error`: the pipeline
  answers it by restarting ffmpeg, never by crashing the camera.
"""

from __future__ import annotations

import struct
from collections import deque

from .fmp4_boxes import Fmp4Error, box_header, parse_moof, parse_moov
from .segments import Fmp4Event, Fragment, InitSegment, TrackFragment

__all__ = ["DEFAULT_MAX_BOX_SIZE", "DEFAULT_MAX_HEADER_BOX_SIZE", "Fmp4Reader"]

#: Largest top-level box we accept (an ``mdat`` of a 4 s fragment at 20 Mbps is 10 MB).
DEFAULT_MAX_BOX_SIZE = 64 * 1024 * 1024
#: Largest metadata box (``moov``, ``moof`` and anything that is not ``mdat``). Real ones are KBs.
DEFAULT_MAX_HEADER_BOX_SIZE = 4 * 1024 * 1024

#: What :meth:`Fmp4Reader.get_buffer` offers while no fragment's size is known: a pipe's default
#: capacity (64 KiB on Linux, pipe(7)), so a read takes what one write of ffmpeg's left there.
_SCRATCH_SIZE = 64 * 1024

# Top-level boxes that may appear between fragments and carry nothing we need.
_SKIPPABLE = frozenset({b"free", b"skip", b"sidx", b"ssix", b"styp", b"mfra", b"prft", b"emsg", b"uuid", b"meta"})


class Fmp4Reader:
    """Incremental fragmented-MP4 reader: ``feed(bytes)`` in any split, get events back.

    Chunks are kept as a queue of ``memoryview`` objects until the size of the fragment they
    belong to is known (its ``mdat`` header); from then on the fragment has a buffer of exactly
    that size, the bytes so far are moved there and the rest is copied (:meth:`feed`) or read
    (:meth:`get_buffer`) into it. So a byte is copied at most once, and a fragment that came
    whole in one piece is a slice of it, with no copy at all.

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
        # The fragment being received, once its mdat header has told its size: one buffer of
        # exactly that size that the rest of the fragment is copied (or read) into, so it is never
        # joined from pieces afterwards. ``_unit_pos`` bytes of it are filled.
        self._unit_buf: bytearray | None = None
        self._unit_pos = 0
        self._scratch = memoryview(bytearray(_SCRATCH_SIZE))
        self._into_unit = False  # the last get_buffer() handed out the unit buffer, not the scratch
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
        return self._avail + self._unit_pos

    def feed(self, data: bytes | bytearray | memoryview) -> list[Fmp4Event]:
        """Consume ``data`` and return the init segments and fragments it completes.

        ``data`` must not be mutated afterwards (``bytes`` from a pipe read never is); a
        ``bytearray`` is copied once for safety.

        Raises:
            Fmp4Error: the stream is corrupt. The reader stays failed.
        """
        if self._error is not None:
            raise self._error
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        if not len(view):
            return []
        self.bytes_in += len(view)
        events: list[Fmp4Event] = []
        if self._unit_buf is not None:  # the rest of a fragment whose size is known: copied in place
            k = min(len(view), len(self._unit_buf) - self._unit_pos)
            self._unit_buf[self._unit_pos : self._unit_pos + k] = view[:k]
            fragment = self._unit_filled(k)
            if fragment is None:
                return events
            events.append(fragment)
            view = view[k:]
            if not len(view):
                return events
        if not view.readonly or isinstance(view.obj, bytearray):
            view = memoryview(bytes(view))  # kept past this call: must not change under us
        if self._skip_remaining:
            dropped = min(self._skip_remaining, len(view))
            self._skip_remaining -= dropped
            view = view[dropped:]
            if not len(view):
                return events
        self._chunks.append(view)
        self._avail += len(view)
        if self._avail < self._need:
            return events
        try:
            events += self._parse()
            return events
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
        if self._avail or self._unit is not None or self._skip_remaining or self._unit_buf is not None:
            raise Fmp4Error(f"stream ended inside a box ({self.buffered} bytes pending)")

    def get_buffer(self) -> memoryview:
        """Where the next bytes off the pipe should be read to (``os.readv``), then
        :meth:`buffer_updated` with how many came: the :class:`asyncio.BufferedProtocol` pattern.

        Once a fragment's ``mdat`` header has arrived, this is the rest of that fragment's own
        buffer (and never more), so its payload is read straight to where it stays: no copy
        in this process at all. Before that, a scratch buffer whose bytes are fed as by :meth:`feed`.
        """
        if self._unit_buf is not None:
            self._into_unit = True
            return memoryview(self._unit_buf)[self._unit_pos :]
        self._into_unit = False
        return self._scratch

    def buffer_updated(self, nbytes: int) -> list[Fmp4Event]:
        """``nbytes`` were written at the start of what :meth:`get_buffer` returned last; the
        init segments and fragments they complete, as :meth:`feed` returns them.

        Raises:
            Fmp4Error: the stream is corrupt. The reader stays failed.
        """
        if self._error is not None:
            raise self._error
        if not self._into_unit:
            return self.feed(bytes(self._scratch[:nbytes]))
        assert self._unit_buf is not None and 0 <= nbytes <= len(self._unit_buf) - self._unit_pos
        self.bytes_in += nbytes
        fragment = self._unit_filled(nbytes)
        return [] if fragment is None else [fragment]

    # -- parsing ----------------------------------------------------------------------------

    def _parse(self) -> list[Fmp4Event]:
        events: list[Fmp4Event] = []
        while True:
            header = self._peek(self._scan, 16)
            head = box_header(header, 0, len(header))
            if head is None:
                self._need = self._scan + (8 if len(header) < 8 else 16)
                return events
            size, kind, hlen = head
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
                    self._start_unit(end)
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
                tracks = parse_moov(moov)
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
                self._moof = parse_moof(memoryview(self._peek(self._scan, size)), self.init)
                self._unit = b"frag"
                self._scan = end
            elif self._unit is not None:
                self._scan = end  # some other box inside a unit: keep it with the unit
            else:
                raise Fmp4Error(f"unexpected top-level box {bytes(kind)!r}")

    def _start_unit(self, end: int) -> None:
        """The fragment's size is known (``end`` bytes from the buffer's head, where it starts)
        and it has not all arrived: move what has into a buffer of that size, where the rest goes.

        The size was capped before (``max_box_size``), so a corrupt one costs at most that."""
        buf = bytearray(end)
        pos = 0
        for chunk in self._chunks:
            buf[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        self._chunks.clear()
        self._avail = 0
        self._unit_buf, self._unit_pos = buf, pos

    def _unit_filled(self, nbytes: int) -> Fragment | None:
        """``nbytes`` more of the unit buffer hold the fragment; the fragment once it is whole."""
        buf = self._unit_buf
        assert buf is not None
        self._unit_pos += nbytes
        if self._unit_pos < len(buf):
            return None
        self._unit_buf, self._unit_pos = None, 0
        self._need = 8
        return self._finish_fragment(len(buf), memoryview(buf).toreadonly())

    def _finish_fragment(self, end: int, data: memoryview | None = None) -> Fragment:
        assert self._moof is not None and self.init is not None
        seq, trafs = self._moof
        if data is None:
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
