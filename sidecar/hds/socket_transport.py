"""An asyncio transport for HDS sockets that sends from the caller's buffers without copying.

Why not the event loop's own socket transport: on Python 3.11 its ``write`` copies whatever the
kernel does not take at once into a private ``bytearray``, and that buffer grows and shrinks with
every recording segment. Most of a 1 MB segment does not fit a 256 KiB socket buffer, so each
fragment cost a copy of about 800 KB into freshly faulted-in memory, then more copies each time
the buffer shrank while draining; the page faults alone cost more than the cipher (figures in
benchmarks/RESULTS.md). On 3.12 and later it keeps a reference instead, but
then it never says when a buffer is free to be reused.

This transport keeps a queue of ``memoryview`` slices of what it was given and sends straight
from them when the socket is writable; when the last byte of a buffer has gone to the kernel it
calls ``on_sent(buffer)``, so the owner can seal the next segment into the same memory. Reading,
flow control (``pause_writing``/``resume_writing`` around the write-buffer limits), ``close``
(after the queue is flushed), ``abort`` and error handling follow ``asyncio.Transport``, so the
protocol on top is an ordinary ``asyncio.Protocol``. It needs a selector event loop (the default
on Linux and macOS, and uvloop), for ``add_reader``/``add_writer``.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import logging
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any, Final

__all__ = ["MAX_READ", "SocketTransport", "accept_ready", "unacked_in_kernel"]

_log = logging.getLogger(__name__)

MAX_READ: Final = 65536
"""Bytes read per ``recv``: a hub sends small messages (hello, open, ack, close)."""
_DEFAULT_HIGH: Final = 64 * 1024
"""asyncio's default write-buffer high-water mark; the HDS listener sets its own."""
_ACCEPT_BATCH: Final = 16
_ACCEPT_PAUSE_S: Final = 1.0
"""Out of file descriptors: stop accepting for this long rather than spin (as asyncio does)."""


class SocketTransport(asyncio.Transport):
    """One connected, non-blocking TCP socket driven by the loop's reader and writer callbacks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.Protocol,
        *,
        on_sent: Callable[[object], None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        sock.setblocking(False)
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._on_sent = on_sent
        self._queue: collections.deque[tuple[memoryview, object]] = collections.deque()
        self._size = 0  # bytes queued, not yet handed to the kernel
        self._high = _DEFAULT_HIGH
        self._low = _DEFAULT_HIGH // 4
        self._paused = False
        self._closing = False
        self._lost = False
        self._writing = False
        try:
            self._peer: object = sock.getpeername()
        except OSError:
            self._peer = None

    def start(self) -> None:
        """``connection_made``, then reading (unless the protocol closed us at once)."""
        self._protocol.connection_made(self)
        if not self._closing:
            self._loop.add_reader(self._fd, self._read_ready)

    # -- asyncio.BaseTransport ------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "peername":
            return self._peer
        if name == "sockname" and self._sock is not None:
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        return super().get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; close once every queued byte has gone to the kernel."""
        if self._closing:
            return
        self._closing = True
        self._remove_reader()
        if not self._queue:
            self._schedule_lost(None)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -- asyncio.WriteTransport -----------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` without copying it: the caller must not change it until ``on_sent``."""
        if self._closing or self._sock is None:
            return  # as asyncio: writes after close are dropped (the protocol has been told)
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        if not view.nbytes:
            return
        if not self._queue:
            sent = self._send(self._sock, view)
            if sent is None:
                return
            if sent == view.nbytes:
                self._sent(data)
                return
            view = view[sent:]
            self._add_writer()
        self._queue.append((view, data))
        self._size += view.nbytes
        if not self._paused and self._size > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def get_write_buffer_size(self) -> int:
        return self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low

    def can_write_eof(self) -> bool:
        return False

    def abort(self) -> None:
        """Close now; whatever is still queued is dropped (and never reported as sent)."""
        self._force_close(None)

    # -- loop callbacks -------------------------------------------------------------------------

    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None or self._closing:
            return
        try:
            data = sock.recv(MAX_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        if not data:
            self._remove_reader()
            if not self._protocol.eof_received():
                self.close()
            return
        self._protocol.data_received(data)

    def _write_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        queue = self._queue
        while queue:
            view, owner = queue[0]
            sent = self._send(sock, view)
            if not sent:  # the socket is full again (0) or gone (None)
                return
            self._size -= sent
            if sent < view.nbytes:
                queue[0] = (view[sent:], owner)
                self._maybe_resume()
                return
            queue.popleft()
            self._sent(owner)
        self._remove_writer()
        self._maybe_resume()
        if self._closing:
            self._schedule_lost(None)

    # -- internals ------------------------------------------------------------------------------

    def _send(self, sock: socket.socket, view: memoryview) -> int | None:
        """Bytes the kernel took now (0 when its buffer is full); ``None`` once the socket failed
        (the transport is then closing with the error)."""
        try:
            return sock.send(view)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._fatal(exc)
            return None

    def _sent(self, owner: object) -> None:
        if self._on_sent is not None:
            self._on_sent(owner)

    def _maybe_resume(self) -> None:
        if self._paused and self._size <= self._low:
            self._paused = False
            self._protocol.resume_writing()

    def _add_writer(self) -> None:
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._write_ready)

    def _remove_writer(self) -> None:
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _remove_reader(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._fd)

    def _fatal(self, exc: OSError) -> None:
        if not isinstance(exc, ConnectionError):
            _log.debug("HDS socket error from %s: %r", self._peer, exc)
        self._force_close(exc)

    def _force_close(self, exc: Exception | None) -> None:
        self._closing = True
        self._remove_reader()
        self._remove_writer()
        self._queue.clear()
        self._size = 0
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: Exception | None) -> None:
        if self._lost or self._sock is None:
            return
        self._lost = True  # connection_lost is called once, on the next loop iteration
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._remove_reader()
            self._remove_writer()
            sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()


def accept_ready(
    listener: socket.socket,
    start: Callable[[socket.socket], None],
    paused: Callable[[], None],
) -> None:
    """Accept what the listening socket has waiting (a batch at a time) and ``start`` each one.

    Out of descriptors or memory, the listener stops reading for a second (``paused`` is told to
    re-arm it) rather than spin on a backlog it cannot take.
    """
    for _ in range(_ACCEPT_BATCH):
        try:
            conn, _addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            _log.warning("HDS listener cannot accept (%s); pausing for %.0f s", exc.strerror or exc, _ACCEPT_PAUSE_S)
            paused()
            return
        start(conn)


def unacked_in_kernel(sock: socket.socket | None) -> int:
    """Bytes the kernel holds for this socket that the peer has not acknowledged (0 if unknown)."""
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ on Linux
    except (OSError, ValueError):
        return 0
    value: int = struct.unpack("i", raw)[0]
    return max(0, value)
