"""HDS frames (sans-IO): a 4-byte header, ChaCha20-Poly1305 ciphertext and a 16-byte tag.

Layout (docs/protocol.md §HDS frames): type (1 byte, 0x01 = encrypted OPACK message), payload length
(24-bit big-endian, ciphertext only), ciphertext, tag. The 4 header bytes are the AAD; the nonce
is four zero bytes and a 64-bit little-endian counter, one counter per direction, starting at 0.

The reader is split from the cipher on purpose: an accepted socket does not know its keys yet,
so the first complete frame is handed out raw and trial-decrypted against every pending
prepared session (:func:`try_open`) before a :class:`FrameDecryptor` takes over at counter 1.
Any oversize length or failed tag raises :class:`~sidecar.hds.errors.FrameError`; the caller
closes the connection, because after that the two counters can never agree again.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .errors import FrameError

__all__ = [
    "FRAME_TYPE_ENCRYPTED",
    "HEADER_LENGTH",
    "MAX_PAYLOAD",
    "SEAL_BATCH",
    "TAG_LENGTH",
    "Frame",
    "FrameDecryptor",
    "FrameEncryptor",
    "FrameReader",
    "SpareBuffer",
    "batch_bound",
    "buffer_for",
    "nonce",
    "sealed_bound",
    "try_open",
]

FRAME_TYPE_ENCRYPTED: Final = 0x01
HEADER_LENGTH: Final = 4
TAG_LENGTH: Final = 16
MAX_PAYLOAD: Final = (1 << 20) - 1
"""HN's limit in both directions (1 MiB - 1); larger incoming frames close the connection."""
_MAX_COUNTER: Final = (1 << 64) - 1
_NONCE = struct.Struct("<4xQ")


def nonce(counter: int) -> bytes:
    """The 12-byte nonce for a frame counter."""
    return _NONCE.pack(counter)


REUSE_FROM: Final = 65536
"""Segments at least this large are sealed into a reused buffer (see ``seal_batch``); smaller
ones (an init segment, a close) are cheap to allocate."""


def _with_headroom(size: int) -> int:
    """A new sealing buffer's size: for a large segment a quarter more than asked, in whole
    64 KiB, because the fragments of one camera vary in size and a buffer that fits the next one
    is reused."""
    if size < REUSE_FROM:
        return size
    return -(-(size + size // 4) // REUSE_FROM) * REUSE_FROM


def sealed_bound(segment_bytes: int) -> int:
    """At least the sealed size of a segment of ``segment_bytes``: the media plus, per 256 KiB
    chunk, a frame header, a tag and the event's OPACK (well under 1/256 in all), plus slack."""
    return segment_bytes + segment_bytes // 256 + 4096


SEAL_BATCH: Final = 262_144 + 4096
"""Sealed bytes asked for per socket write (``HDSConnection.data_to_send(limit)``): one full
256 KiB ``data`` chunk with its frame header, OPACK and tag, or several small frames. A
recording is sealed a batch at a time as the socket drains (docs/hds.md, "Sealing"), so this,
not a fragment, is what a connection's sealing buffer has to hold."""


def batch_bound(segment_bytes: int) -> int:
    """The largest batch sealed for segments of about ``segment_bytes``: the whole sealed
    segment, but never more than :data:`SEAL_BATCH`."""
    return min(sealed_bound(segment_bytes), SEAL_BATCH)


def buffer_for(segment_bytes: int) -> bytearray:
    """A sealing buffer for the batches of segments of about ``segment_bytes``
    (:func:`batch_bound`), every page of it written now. Made ahead of time, off any hub's clock,
    the first recording after a start does not pay the page faults while hubs wait."""
    return bytearray(batch_bound(segment_bytes))


class SpareBuffer:
    """One sealing buffer kept for the next segment: a sent segment's, whose bytes nothing
    reads any more, or one made ahead of time. The largest one given is kept."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer: bytearray | None = None

    def keep(self, buffer: bytearray) -> None:
        """``buffer`` is sent and nothing reads it any more: seal a later segment into it."""
        if self.buffer is None or len(buffer) > len(self.buffer):
            self.buffer = buffer

    def take(self) -> bytearray | None:
        """The kept buffer, if any, given up (for another connection once this one is over)."""
        spare, self.buffer = self.buffer, None
        return spare


def _header(frame_type: int, length: int) -> bytes:
    return bytes((frame_type, (length >> 16) & 0xFF, (length >> 8) & 0xFF, length & 0xFF))


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete frame as read off the wire, not yet decrypted."""

    frame_type: int
    header: bytes
    body: bytes
    """Ciphertext followed by the 16-byte tag."""


class FrameReader:
    """Splits a byte stream into frames; holds at most one partial frame.

    ``feed`` then ``next_frame`` until it returns ``None``. The length field is checked as soon
    as the 4 header bytes are in, so an oversize frame is refused before its body is buffered.
    """

    __slots__ = ("_buf", "max_payload")

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buf += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or ``None`` until more bytes arrive."""
        buf = self._buf
        if len(buf) < HEADER_LENGTH:
            return None
        length = (buf[1] << 16) | (buf[2] << 8) | buf[3]
        if length > self.max_payload:
            raise FrameError(f"frame payload of {length} bytes exceeds {self.max_payload}")
        total = HEADER_LENGTH + length + TAG_LENGTH
        if len(buf) < total:
            return None
        with memoryview(buf) as view:
            frame = Frame(buf[0], bytes(view[:HEADER_LENGTH]), bytes(view[HEADER_LENGTH:total]))
        del buf[:total]  # CPython trims the front of a bytearray in O(1)
        return frame


def try_open(key: bytes, frame: Frame, counter: int = 0) -> bytes | None:
    """Decrypt ``frame`` with ``key`` and ``counter``; ``None`` if the tag does not verify."""
    if frame.frame_type != FRAME_TYPE_ENCRYPTED or len(frame.body) < TAG_LENGTH:
        return None
    try:
        return ChaCha20Poly1305(key).decrypt(_NONCE.pack(counter), frame.body, frame.header)
    except InvalidTag:
        return None


class FrameDecryptor:
    """The receiving direction: decrypts frames in order, one counter step per frame."""

    __slots__ = ("_aead", "counter")

    def __init__(self, key: bytes, counter: int = 0) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.counter = counter

    def open(self, frame: Frame) -> bytes:
        """Plaintext of the next frame; :class:`FrameError` if it does not authenticate."""
        if self.counter > _MAX_COUNTER:
            raise FrameError("receive counter exhausted")
        try:
            plaintext = self._aead.decrypt(_NONCE.pack(self.counter), frame.body, frame.header)
        except InvalidTag:
            raise FrameError(f"frame {self.counter} failed authentication") from None
        self.counter += 1
        return plaintext


_local = threading.local()


def _staging_for(length: int) -> bytearray:
    """This thread's staging buffer, at least ``length`` bytes (grown, never shrunk: its size is
    bounded by the largest frame, ``MAX_PAYLOAD``)."""
    buffer: bytearray | None = getattr(_local, "staging", None)
    if buffer is None or len(buffer) < length:
        buffer = _local.staging = bytearray(length)
    return buffer


class FrameEncryptor:
    """The sending direction: whole frames, each sealed from a plaintext into a separate output.

    The cipher never reads and writes the same memory. ``cryptography`` documents
    ``encrypt_into`` only for separate input and output buffers, and from release 51 it refuses
    overlapping ones, so an in-place seal is undefined behaviour we must not depend on
    (docs/hds.md, "Sealing"). A frame whose plaintext comes in pieces (an OPACK prefix and a
    view of the camera's media) is first gathered into a staging buffer and sealed from there.
    Each call uses the buffer only until it returns, so one buffer per thread serves every
    connection of every camera (:func:`_staging_for`): at most one frame (256 KiB of media in a
    recording), it stays in the processor's cache, and a new connection costs no new pages.
    """

    __slots__ = ("_aead", "counter", "max_payload")

    def __init__(self, key: bytes, counter: int = 0, max_payload: int = MAX_PAYLOAD) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.counter = counter
        self.max_payload = max_payload

    def _check(self, lengths: list[int]) -> None:
        if lengths and max(lengths) > self.max_payload:
            raise FrameError(f"payload of {max(lengths)} bytes exceeds the {self.max_payload}-byte frame limit")
        if self.counter + len(lengths) - 1 > _MAX_COUNTER:
            raise FrameError("send counter exhausted")

    def _gather(self, parts: list[bytes | memoryview], length: int) -> memoryview:
        """``parts`` copied back to back into this thread's staging buffer; a view of exactly
        ``length`` bytes, which the caller releases before it returns."""
        view = memoryview(_staging_for(length))
        offset = 0
        for part in parts:
            size = memoryview(part).nbytes
            view[offset : offset + size] = part
            offset += size
        plain = view[:length]
        view.release()
        return plain

    def _seal_one(self, header: bytes, plaintext: bytes | bytearray | memoryview, out: memoryview) -> None:
        """Encrypt ``plaintext`` into ``out`` (ciphertext then tag; never overlapping it)."""
        self._aead.encrypt_into(_NONCE.pack(self.counter), plaintext, header, out)
        self.counter += 1

    def seal(self, plaintext: bytes | bytearray | memoryview) -> bytearray:
        """Header, ciphertext and tag in one buffer, ready for one ``transport.write``.

        ``plaintext`` must not share memory with anything this call writes (it cannot: the
        output buffer is new)."""
        length = memoryview(plaintext).nbytes
        self._check([length])
        header = _header(FRAME_TYPE_ENCRYPTED, length)
        out = bytearray(HEADER_LENGTH + length + TAG_LENGTH)
        out[:HEADER_LENGTH] = header
        with memoryview(out) as view:
            self._seal_one(header, plaintext, view[HEADER_LENGTH:])
        return out

    def seal_batch(
        self, payloads: list[list[bytes | memoryview]], into: bytearray | None = None,
        lengths: list[int] | None = None,
    ) -> memoryview:
        """Several frames, back to back in one buffer, for one socket write.

        Each payload's pieces are gathered into the staging buffer (the one copy of the media on
        our side) and sealed from there into the output buffer. A fragment's 256 KiB chunks so
        become one buffer and one write instead of one per chunk.

        ``into`` is an output buffer to reuse when it is large enough and the segment is not
        small (the caller guarantees nothing else still reads it). Sealing a megabyte into a
        fresh allocation costs more than the cipher: the kernel has to fault in and zero every
        new page (benchmarks/RESULTS.md). Otherwise a new buffer is made, with headroom so that
        the next, slightly larger fragment still fits. The result is a view of the frames'
        bytes; its ``obj`` is the buffer to hand back as ``into`` once it has been sent.
        ``lengths`` are the payloads' plaintext lengths when the caller already knows them.
        """
        if lengths is None:
            lengths = [sum(memoryview(p).nbytes for p in parts) for parts in payloads]
        self._check(lengths)
        total = sum(lengths) + len(payloads) * (HEADER_LENGTH + TAG_LENGTH)
        reuse = into is not None and len(into) >= total >= REUSE_FROM
        out = into if reuse and into is not None else bytearray(_with_headroom(total))
        view = memoryview(out)
        offset = 0
        for parts, length in zip(payloads, lengths, strict=True):
            header = _header(FRAME_TYPE_ENCRYPTED, length)
            view[offset : offset + HEADER_LENGTH] = header
            start = offset + HEADER_LENGTH
            offset = start + length + TAG_LENGTH
            if len(parts) == 1:  # already contiguous: seal straight from it
                self._seal_one(header, parts[0], view[start:offset])
            else:
                with self._gather(parts, length) as plain:
                    self._seal_one(header, plain, view[start:offset])
        return view[:offset]

    def seal_parts(self, parts: list[bytes | memoryview]) -> bytearray:
        """Like :meth:`seal` for a plaintext given in pieces, gathered in the staging buffer."""
        length = sum(memoryview(p).nbytes for p in parts)
        self._check([length])
        with self._gather(parts, length) as plain:
            return self.seal(plain)
