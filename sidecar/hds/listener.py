"""The asyncio side of HDS: one lazily bound TCP listener per camera, and the stream handles
the camera layer writes recordings into.

Thin by design (docs/architecture.md): bytes move between sockets and the sans-IO
:class:`~sidecar.hds.connection.HDSConnection`, timers are armed at the deadlines it asks for,
and writes are paced by the transport's flow control. A hub that stops reading cannot make us
buffer without bound, nor hold the recording slot for long:

* each socket's kernel send buffer is small (``send_buffer``; autotuning would let a stalled hub
  park megabytes there and hide the stall for tens of seconds), and a producer awaits drain above
  ``high_water`` bytes in the transport;
* a stall is measured from the last progress the hub made (bytes it acknowledged, seen through
  the kernel's unacked count), not from when the buffers happen to fill. After
  ``stall_timeout`` without progress the stream is closed (CANCELLED): the close event goes out
  behind at most the small buffers, so a hub that reads again sees the reason, and the
  connection is aborted ``abort_grace`` seconds later at the latest, which releases its memory
  (the recording slot is free at once, so another hub's open is not refused BUSY);
* when the listener is full, a newcomer evicts the oldest connection that has not proved its keys
  (the busiest host's first); identified connections are never evicted for a newcomer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import random
import socket
import struct
import termios
from collections.abc import Callable
from typing import Final

from ..connection_limiter import ConnectionLimiter
from .connection import (
    HELLO_TIMEOUT,
    ConnectionClosed,
    HDSConnection,
    HelloReceived,
    Identified,
    StreamEnded,
    StreamOpened,
)
from .datasend import END_OF_STREAM_TIMEOUT, ClosedBy, CloseReason, DataSendStream, OpenGate, StreamRegistry
from .errors import StreamClosedError
from .frames import buffer_for, sealed_bound
from .socket_transport import SocketTransport, accept_ready
from .transport import (
    MIN_PORT,
    PREPARED_SESSION_TIMEOUT,
    HapCloseRegistrar,
    TransportManager,
    parse_setup_write,
)

__all__ = ["DEFAULT_HIGH_WATER", "DEFAULT_STALL_TIMEOUT", "HDSServer", "RecordingStream"]

_log = logging.getLogger(__name__)

DEFAULT_HIGH_WATER: Final = 1 << 20
"""Bytes queued in the asyncio transport (beyond what the kernel took) before a producer waits."""
DEFAULT_STALL_TIMEOUT: Final = 10.0
"""A hub that reads nothing for this long is gone (its own data timeout is about 8 s)."""
DEFAULT_ABORT_GRACE: Final = 5.0
"""After a close with a reason, how long a hub may take to read it before the socket is aborted."""
DEFAULT_SEND_BUFFER: Final = 128 * 1024
"""SO_SNDBUF per HDS socket (Linux doubles it): plenty for a LAN, small enough that a stall shows."""
DEFAULT_MAX_CONNECTIONS: Final = 16
"""Per camera; a home has a handful of hubs, and each unidentified socket may live 10 s."""
PROGRESS_CHECK_S: Final = 0.5
"""How often a connection with unacknowledged data looks for progress."""

_MAX_EPHEMERAL_PORT: Final = 60999
_BIND_ATTEMPTS: Final = 32


def _unacked_in_kernel(sock: socket.socket | None) -> int:
    """Bytes the kernel holds for this socket that the peer has not acknowledged (0 if unknown)."""
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ on Linux
    except (OSError, ValueError):
        return 0
    value: int = struct.unpack("i", raw)[0]
    return max(0, value)


class RecordingStream:
    """What the camera layer holds while a hub records: feed init, then fragments.

    ``send_init`` and ``send_fragment`` return once the data is handed to the socket (waiting for
    the hub to read when the buffer is full) and raise :class:`StreamClosedError` as soon as the
    stream is over, whoever ended it; ``wait_closed`` then tells how (``closed_by``,
    ``close_reason``). Calls are serialised; ``close`` may be called at any time.
    """

    def __init__(self, protocol: _HDSProtocol, stream: DataSendStream) -> None:
        self._protocol = protocol
        self._stream = stream
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()

    @property
    def stream_id(self) -> int:
        return self._stream.stream_id

    @property
    def closed(self) -> bool:
        return self._stream.closed

    @property
    def closed_by(self) -> ClosedBy | None:
        return self._stream.closed_by

    @property
    def close_reason(self) -> CloseReason | int | None:
        return self._stream.close_reason

    @property
    def bytes_sent(self) -> int:
        return self._stream.bytes_sent

    async def send_init(self, data: bytes | bytearray | memoryview) -> None:
        """Send the initialization segment (dataSequenceNumber 1)."""
        async with self._lock:
            self._protocol.conn.send_init(self._stream, data)  # raises once the stream is over
            await self._flush_and_drain()

    async def send_fragment(self, data: bytes | bytearray | memoryview, *, end_of_stream: bool = False) -> None:
        """Send one fMP4 fragment; ``end_of_stream`` only on the very last one."""
        async with self._lock:
            protocol = self._protocol
            protocol.conn.send_fragment(self._stream, data, end_of_stream=end_of_stream, now=protocol.server.clock())
            protocol.arm_timer()
            await self._flush_and_drain()

    async def _flush_and_drain(self) -> None:
        """The segment went into the connection core whole (every chunk sealed, one buffer):
        hand it to the socket, then wait while the hub is behind."""
        self._protocol.flush()
        await self._protocol.drain(self)

    def close(self, reason: CloseReason = CloseReason.NORMAL) -> None:
        """End the stream with a ``close`` event carrying ``reason`` (idempotent)."""
        self._protocol.conn.close_stream(self._stream, reason)
        self._protocol.pump()

    async def wait_closed(self) -> None:
        """Return once the stream has ended."""
        await self._closed.wait()

    def _ended(self) -> None:
        self._closed.set()


class _HDSProtocol(asyncio.Protocol):
    """Moves bytes between one accepted socket and its HDSConnection."""

    def __init__(self, server: HDSServer) -> None:
        self.server = server
        self.conn = HDSConnection(
            server.transports.identify,
            server.registry,
            server.clock(),
            hello_timeout=server.hello_timeout,
            end_of_stream_timeout=server.end_of_stream_timeout,
        )
        self.transport: asyncio.Transport | None = None
        self.handles: dict[int, RecordingStream] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self.opened_at = server.clock()
        self.peer_host: str | None = None
        self.evicted = False
        self._sock: socket.socket | None = None
        self._handed = 0  # bytes written to the transport, ever
        self._acked = 0  # of those, how many the hub has acknowledged (last seen)
        self._progress_at = self.opened_at
        self._progress_timer: asyncio.TimerHandle | None = None
        self._closing = False  # closed with a reason; waiting for the hub to read it

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer_host = str(peer[0]) if peer else None
        admission = self.server.limiter.opened(self, self.peer_host, self.opened_at)
        if not admission.admitted:
            _log.warning("HDS: %d identified connections open; refusing another", len(self.server.connections))
            self.conn.close("too many connections")
            transport.abort()
            return
        if admission.evict is not None:
            level = logging.WARNING if admission.warn else logging.DEBUG  # a flood: not each one
            _log.log(level, "HDS: connection limit reached; closing an unidentified connection from %s for a new "
                     "one (%d so far)", admission.evict.peer_host, self.server.limiter.evictions)
            admission.evict.evict()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._sock = sock
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.server.send_buffer)
        transport.set_write_buffer_limits(high=self.server.high_water)
        self.server.connections.add(self)
        self.arm_timer()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data, self.server.clock())
        self.pump()

    def eof_received(self) -> bool:
        self.conn.connection_lost("peer sent EOF")
        self.pump()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(f"socket closed: {exc}" if exc else "socket closed")
        self.transport = None
        self.pump()
        self.server.keep_spare(self.conn.take_spare())
        for timer in (self._timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._abort_timer = None
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None
        self._wake_writer()
        self.server.connections.discard(self)
        self.server.limiter.closed(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def sent(self, owner: object) -> None:
        """The transport has handed all of ``owner`` to the kernel: a recording segment's buffer
        (a view of the connection's sealing buffer) can take the next segment."""
        if isinstance(owner, memoryview) and isinstance(owner.obj, bytearray):
            self.conn.recycle(owner.obj)

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    # -- plumbing --------------------------------------------------------------------------

    def _wake_writer(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def flush(self) -> None:
        """Write queued frames (each one buffer; the transport sends from it without copying)."""
        frames = self.conn.data_to_send()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for frame in frames:
            self._handed += len(frame)
            transport.write(frame)
        if frames:
            if self._progress_timer is None:  # nothing was outstanding: the hub is behind on nothing
                self._progress_at = self.server.clock()
            self._watch_progress()

    def pump(self) -> None:
        """Flush, then act on the connection's events."""
        self.flush()
        for event in self.conn.events():
            if isinstance(event, Identified):
                self.server.limiter.verified(self)  # proved its keys: never evicted for a newcomer
                event.session.bind(self.hap_session_closed)
            elif isinstance(event, StreamOpened):
                self._stream_opened(event.stream)
            elif isinstance(event, StreamEnded):
                handle = self.handles.pop(id(event.stream), None)
                if handle is not None:
                    handle._ended()
                self._wake_writer()  # a producer waiting for drain learns at once that it is over
            elif isinstance(event, HelloReceived):
                _log.debug("HDS hello from %s", self._peer())
            elif isinstance(event, ConnectionClosed):
                self.server.limiter.verified(self)  # closing: no longer a candidate to evict
                self._close_transport(event.reason)
        self.flush()
        self.arm_timer()

    def _stream_opened(self, stream: DataSendStream) -> None:
        spare = self.server.take_spare()
        if spare is not None:
            self.conn.recycle(spare)
        handle = RecordingStream(self, stream)
        self.handles[id(stream)] = handle
        try:
            self.server.on_stream(handle)
        except Exception:  # a camera-layer bug must not take the connection down silently
            _log.exception("on_stream callback failed; closing stream %d", stream.stream_id)
            self.conn.close_stream(stream, CloseReason.UNEXPECTED_FAILURE)

    def _close_transport(self, reason: str) -> None:
        """Close once the hub has read what is queued (the close reason last), or abort after
        ``abort_grace``: a hub that never reads again must not keep a socket and its buffers."""
        transport = self.transport
        if transport is None or self._closing:
            return
        _log.info("HDS connection from %s closed: %s", self._peer(), reason)
        self.flush()
        if self._outstanding() == 0:
            transport.close()
            return
        self._closing = True
        self._watch_progress()
        if self._abort_timer is None:
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(self.server.abort_grace, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        if self.transport is not None:
            if self._sock is not None:  # reset: the kernel drops what the hub never read
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()

    def evict(self) -> None:
        """Make room for a newcomer (only unidentified connections are evicted)."""
        self.evicted = True
        self.server.connections.discard(self)
        self.conn.close("evicted to make room for a new connection")
        if self.transport is not None:
            self.transport.abort()

    # -- progress: a stall counts from the last byte the hub acknowledged --------------------

    def _outstanding(self) -> int:
        transport = self.transport
        if transport is None:
            return 0
        return transport.get_write_buffer_size() + _unacked_in_kernel(self._sock)

    def _watch_progress(self) -> None:
        if self._progress_timer is None and self.transport is not None:
            loop = asyncio.get_running_loop()
            self._progress_timer = loop.call_later(PROGRESS_CHECK_S, self._on_progress_timer)

    def _on_progress_timer(self) -> None:
        self._progress_timer = None
        if self.check_progress(self.server.clock()):
            self._watch_progress()

    def check_progress(self, now: float) -> bool:
        """Note the hub's progress; close a hub that made none for ``stall_timeout``.

        Returns whether data is still outstanding (so the caller keeps watching)."""
        transport = self.transport
        if transport is None:
            return False
        outstanding = self._outstanding()
        acked = self._handed - outstanding
        if outstanding == 0 or acked > self._acked:
            self._acked = acked
            self._progress_at = now
        if outstanding == 0:
            if self._closing:
                transport.close()  # the hub has read everything, the close reason included
            return False
        if not self._closing and now - self._progress_at >= self.server.stall_timeout:
            self._stalled(now)
        return True

    def _stalled(self, now: float) -> None:
        stream = self.conn.stream
        _log.warning("hub %s made no progress for %.1f s (%d bytes unread); closing%s", self._peer(),
                     now - self._progress_at, self._outstanding(),
                     f" stream {stream.stream_id}" if stream is not None else "")
        if stream is not None:
            self.conn.close_stream(stream, CloseReason.CANCELLED)
        self.conn.close("hub stopped reading")
        self.pump()

    def _peer(self) -> object:
        return self.transport.get_extra_info("peername") if self.transport is not None else None

    def arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.conn.next_deadline()
        if deadline is None or self.conn.closed:
            return
        delay = max(0.0, deadline - self.server.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self.check_timers)

    def check_timers(self) -> None:
        self._timer = None
        now = self.server.clock()
        self.conn.handle_timeout(now)
        self.check_progress(now)
        self.pump()

    def hap_session_closed(self) -> None:
        self.conn.close("HAP session closed")
        self.pump()

    async def drain(self, handle: RecordingStream) -> None:
        """Wait while the socket buffer is above the high-water mark (a stalled hub is closed by
        the progress watch, which wakes us)."""
        while self._paused and self.transport is not None and not handle.closed:
            loop = asyncio.get_running_loop()
            self._drained = loop.create_future()
            try:
                await self._drained
            finally:
                self._drained = None
        if handle.closed or self.transport is None:
            raise StreamClosedError(f"stream {handle.stream_id} ended")


class HDSServer:
    """Per camera: DataStreamTransportManagement, the HDS listener and the recording slot.

    ``setup`` (synchronous, for the HAP write handler of 0x131) binds the listener on first use
    and returns the write response; ``on_stream`` is called with a :class:`RecordingStream` for
    every accepted ``open``; ``gate`` answers the open checks. ``clock`` defaults to the loop's
    monotonic time; tests pass a fake one and call :meth:`check_timers`.
    """

    def __init__(
        self,
        gate: OpenGate,
        on_stream: Callable[[RecordingStream], None],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - hubs connect from the LAN; callers pass the bind address
        clock: Callable[[], float] | None = None,
        hello_timeout: float = HELLO_TIMEOUT,
        session_timeout: float = PREPARED_SESSION_TIMEOUT,
        end_of_stream_timeout: float = END_OF_STREAM_TIMEOUT,
        high_water: int = DEFAULT_HIGH_WATER,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        abort_grace: float = DEFAULT_ABORT_GRACE,
        min_port: int = MIN_PORT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        send_buffer: int = DEFAULT_SEND_BUFFER,
    ) -> None:
        self.host = host
        self.max_connections = max_connections
        self.send_buffer = send_buffer
        self.limiter: ConnectionLimiter[_HDSProtocol] = ConnectionLimiter(max_connections)
        self.on_stream = on_stream
        self.clock: Callable[[], float] = clock or (lambda: asyncio.get_running_loop().time())
        self.hello_timeout = hello_timeout
        self.end_of_stream_timeout = end_of_stream_timeout
        self.high_water = high_water
        self.stall_timeout = stall_timeout
        self.abort_grace = abort_grace
        self.min_port = min_port
        self.transports = TransportManager(session_timeout=session_timeout)
        self.registry = StreamRegistry(gate)
        self.connections: set[_HDSProtocol] = set()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accept_timer: asyncio.TimerHandle | None = None
        self._spare: bytearray | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int | None:
        """The listening port, once bound."""
        if self._sock is None:
            return None
        port: int = self._sock.getsockname()[1]
        return port

    def _bind_socket(self) -> socket.socket:
        """A listening socket on ``host``, port >= ``min_port`` (OS choice first, then random)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        candidates = [0] + [random.randint(self.min_port, _MAX_EPHEMERAL_PORT) for _ in range(_BIND_ATTEMPTS)]
        for candidate in candidates:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, candidate))
                if sock.getsockname()[1] < self.min_port:
                    sock.close()
                    continue
                sock.listen(16)
                sock.setblocking(False)
            except OSError:
                sock.close()
                continue
            return sock
        raise OSError(f"no free HDS port >= {self.min_port} on {self.host}")

    def _listen(self) -> int:
        """Bind now (synchronously, so a HAP write handler can answer with the port at once) and
        start accepting on the loop."""
        port = self.port
        if port is not None:
            return port
        sock = self._bind_socket()
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._accept)
        port = self.port
        assert port is not None
        _log.info("HDS listener on %s:%d", self.host, port)
        return port

    def _accept(self) -> None:
        if self._sock is not None and self._loop is not None:
            accept_ready(self._sock, self._start_connection, self._pause_accepting)

    def _start_connection(self, conn: socket.socket) -> None:
        assert self._loop is not None
        protocol = _HDSProtocol(self)
        SocketTransport(self._loop, conn, protocol, on_sent=protocol.sent).start()

    def _pause_accepting(self) -> None:
        if self._sock is None or self._loop is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._accept_timer = self._loop.call_later(1.0, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._accept_timer = None
        if self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    async def start(self) -> int:
        """Bind and start the listener now if it is not yet (optional: ``setup`` does it lazily)."""
        return self._listen()

    def setup(
        self,
        value: bytes | bytearray | memoryview | str,
        *,
        shared_secret: bytes,
        on_hap_close: HapCloseRegistrar | None = None,
    ) -> bytes:
        """Handle a SetupDataStreamTransport write; return the write-response TLV bytes.

        Synchronous, for a HAP characteristic write handler running on the event loop. Raises
        :class:`~sidecar.hds.errors.SetupError` for a write that must get -70410 (validated before
        anything is bound). ``on_hap_close`` registers a callback for the end of the HAP session
        that wrote (e.g. ``ctx.session.add_close_callback``).
        """
        parse_setup_write(value)  # refuse bad writes before binding anything
        port = self._listen()
        response = self.transports.setup(
            value, shared_secret=shared_secret, port=port, now=self.clock(), on_hap_close=on_hap_close
        )
        self._arm_expiry()
        return response

    def read_value(self) -> bytes:
        """Value for a GET of SetupDataStreamTransport (status + port, no salt)."""
        return self.transports.read_value()

    def reserve(self, segment_bytes: int) -> None:
        """Have a sealing buffer for segments of about ``segment_bytes`` ready before any hub
        opens (the camera calls this when its prebuffer is warm). Without it the camera's first
        recording faults in its buffer while the hub waits for the prebuffer; with many cameras
        opened at once that was most of the first burst's time. Nothing is done while a
        recording holds the buffer, or when the one kept is large enough."""
        if self.registry.active is not None:
            return
        if self._spare is None or len(self._spare) < sealed_bound(segment_bytes):
            self._spare = buffer_for(segment_bytes)

    def take_spare(self) -> bytearray | None:
        """The sealing buffer an earlier recording of this camera left, for the next one."""
        spare, self._spare = self._spare, None
        return spare

    def keep_spare(self, buffer: bytearray | None) -> None:
        """Keep a finished connection's sealing buffer (the largest seen; one per camera, since a
        camera records to one hub at a time): the next recording's first fragments, the whole
        prebuffer, are then sealed without faulting in a fresh megabyte, which is where a burst
        of hubs opening at once spent its time."""
        if buffer is not None and (self._spare is None or len(buffer) > len(self._spare)):
            self._spare = buffer

    def check_timers(self) -> None:
        """Run every timer that is due at ``clock()`` now (tests with a fake clock call this)."""
        self.transports.expire(self.clock())
        for protocol in list(self.connections):
            protocol.check_timers()

    def _arm_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self.transports.next_deadline()
        if deadline is None:
            return
        delay = max(0.0, deadline - self.clock())
        self._expiry = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        self.transports.expire(self.clock())
        self._arm_expiry()

    async def aclose(self) -> None:
        """Stop listening, close every connection and forget pending sessions."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.transports.clear()
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        for protocol in list(self.connections):
            protocol.conn.close("server shutting down")
            protocol.pump()
        waiters = [p.lost for p in list(self.connections)]
        for protocol in list(self.connections):
            if protocol.transport is not None:
                protocol.transport.abort()
        if waiters:
            await asyncio.gather(*waiters)
