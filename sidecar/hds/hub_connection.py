"""The asyncio side of one accepted HDS socket, and the stream handle a recording goes into.

:class:`HubConnection` moves bytes between the socket and its sans-IO
:class:`~sidecar.hds.connection.HDSConnection`, arms the timers the connection asks for, and
watches the hub's progress: a stall is measured from the last byte the hub acknowledged (the
kernel's unacked count), not from when the buffers happen to fill. After ``stall_timeout``
without progress the stream is closed (CANCELLED) and the socket aborted ``abort_grace`` later
at the latest. :class:`RecordingStream` is what the camera layer writes a recording into.
What the connection needs of its listener is the small :class:`ListenerSide` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Final, Protocol

from ..connection_limiter import ConnectionLimiter
from .config import HDSConfig
from .connection import (
    ConnectionClosed,
    HDSConnection,
    HelloReceived,
    Identified,
    SnapshotRequested,
    StreamEnded,
    StreamOpened,
)
from .datasend import ClosedBy, CloseReason, DataSendStream, Segment, StreamRegistry
from .errors import StreamClosedError
from .frames import SEAL_BATCH
from .socket_transport import unacked_in_kernel
from .transport import TransportManager

__all__ = ["PROGRESS_CHECK_S", "HubConnection", "ListenerSide", "RecordingStream"]

_log = logging.getLogger(__name__)

PROGRESS_CHECK_S: Final = 0.5
"""How often a connection with unacknowledged data looks for progress."""


class ListenerSide(Protocol):
    """What a hub connection uses of the listener that accepted it."""

    config: HDSConfig
    transports: TransportManager
    registry: StreamRegistry
    limiter: ConnectionLimiter[HubConnection]
    connections: set[HubConnection]
    on_stream: Callable[[RecordingStream], None]
    on_snapshot: Callable[[SnapshotStream], None] | None
    snapshot_gate: Callable[[], bool] | None
    clock: Callable[[], float]

    def take_spare(self) -> bytearray | None:
        """The sealing buffer an earlier recording left, for the next one."""

    def keep_spare(self, buffer: bytearray | None) -> None:
        """Keep a finished connection's sealing buffer for the next recording."""


def _in_flight(transport: asyncio.Transport, sock: socket.socket | None) -> int:
    """Bytes written to the transport that the hub has not acknowledged yet."""
    return transport.get_write_buffer_size() + unacked_in_kernel(sock)


def _spare_to_pool_when_idle(protocol: HubConnection) -> None:
    """No recording on the connection and nothing left to send: its sealing buffer goes back to
    the pool every camera shares. A hub keeps its data stream open for hours between recordings;
    an idle connection must not hold a buffer all that time while the camera reserves another."""
    if protocol.conn.stream is None and protocol.transport is not None and protocol._backlog() == 0:
        spare = protocol.conn.outbox.spare.take()
        if spare is not None:
            protocol.server.keep_spare(spare)


class RecordingStream:
    """What the camera layer holds while a hub records: feed init, then fragments.

    ``send_init`` and ``send_fragment`` return once the data is handed to the socket (waiting for
    the hub to read when the buffer is full) and raise :class:`StreamClosedError` as soon as the
    stream is over, whoever ended it; ``wait_closed`` then tells how (``closed_by``,
    ``close_reason``). Calls are serialised; ``close`` may be called at any time.
    """

    def __init__(self, protocol: HubConnection, stream: DataSendStream) -> None:
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

    async def send_init(self, data: Segment) -> None:
        """Send the initialization segment (dataSequenceNumber 1)."""
        async with self._lock:
            self._protocol.conn.send_init(self._stream, data)  # raises once the stream is over
            await self._flush_and_drain()

    async def send_fragment(self, data: Segment, *, end_of_stream: bool = False) -> None:
        """Send one fMP4 fragment (a buffer, or pieces sent as one); ``end_of_stream`` only on
        the very last one."""
        async with self._lock:
            protocol = self._protocol
            protocol.conn.send_fragment(self._stream, data, end_of_stream=end_of_stream, now=protocol.server.clock())
            protocol.arm_timer()
            await self._flush_and_drain()

    async def _flush_and_drain(self) -> None:
        """The segment is queued in the connection core (as plaintext): send what the socket
        takes now, then wait while the hub is more than the high-water mark behind."""
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


class SnapshotStream:
    """What the camera layer holds while a hub waits for a still picture: ``send`` the payload
    once (its bytes and label are the caller's), or ``fail`` with a reason."""

    def __init__(self, protocol: HubConnection, stream: DataSendStream) -> None:
        self._protocol = protocol
        self._stream = stream

    @property
    def stream_id(self) -> int:
        return self._stream.stream_id

    async def send(self, data: Segment, data_type: str) -> None:
        """Queue the payload in chunks and wait while the hub is behind; raises
        :class:`StreamClosedError` if the stream or connection is gone."""
        protocol = self._protocol
        protocol.conn.send_snapshot(self._stream, data, data_type, protocol.server.clock())
        protocol.flush()
        await protocol.drain()

    def fail(self, reason: CloseReason = CloseReason.UNEXPECTED_FAILURE) -> None:
        self._protocol.conn.fail_snapshot(self._stream, reason)
        self._protocol.pump()


class HubConnection(asyncio.Protocol):
    """Moves bytes between one accepted socket and its HDSConnection."""

    def __init__(self, server: ListenerSide) -> None:
        self.server = server
        self.conn = HDSConnection(
            server.transports.identify,
            server.registry,
            server.clock(),
            hello_timeout=server.config.hello_timeout,
            end_of_stream_timeout=server.config.end_of_stream_timeout,
            snapshot_gate=server.snapshot_gate if server.on_snapshot is not None else None,
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
        self.peername: object = None  # the remote address, for logs
        self.evicted = False
        self._sock: socket.socket | None = None
        self._handed = 0  # bytes written to the transport, ever
        self._acked = 0  # of those, how many the hub has acknowledged (last seen)
        self._progress_at = self.opened_at
        self._progress_timer: asyncio.TimerHandle | None = None
        self._closing = False  # closed with a reason; waiting for the hub to read it
        self._flushing = False

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer_host = str(peer[0]) if peer else None
        self.peername = peer
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
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.server.config.send_buffer)
        transport.set_write_buffer_limits(high=self.server.config.high_water)
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
        self.server.keep_spare(self.conn.outbox.spare.take())
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
        """The transport has handed all of ``owner`` to the kernel: its sealing buffer can take
        the next batch, which is sealed now if one is queued, and a producer waiting for the
        backlog to shrink is woken."""
        if isinstance(owner, memoryview) and isinstance(owner.obj, bytearray):
            self.conn.outbox.spare.keep(owner.obj)
        self.flush()
        if self._drained is not None and self._backlog() <= self.server.config.high_water:
            self._wake_writer()
        _spare_to_pool_when_idle(self)

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    # -- plumbing --------------------------------------------------------------------------

    def _wake_writer(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def flush(self) -> None:
        """Seal the next batch of queued frames and write it, again while the socket takes all
        of it at once. The transport then holds at most one batch (it sends from that buffer
        without copying); the rest stays queued as plaintext in the connection and is sealed
        when that batch has gone to the kernel (:meth:`sent`), so memory per connection is one
        batch and each batch is sent while it is still in the processor's cache."""
        transport = self.transport
        if transport is None or transport.is_closing():
            self.conn.outbox.drop()  # nobody will send it
            return
        if self._flushing:  # called back from a write below: the loop goes on by itself
            return
        self._flushing = True
        wrote = False
        try:
            while transport.get_write_buffer_size() == 0 and not transport.is_closing():
                frames = self.conn.data_to_send(SEAL_BATCH)
                if not frames:
                    break
                if not wrote and self._progress_timer is None:  # nothing was outstanding
                    self._progress_at = self.server.clock()
                wrote = True
                for frame in frames:
                    self._handed += len(frame)
                    transport.write(frame)
        finally:
            self._flushing = False
        if wrote:
            self._watch_progress()

    def _backlog(self) -> int:
        """Bytes a producer has queued that are not yet in the kernel: unsealed in the
        connection, sealed in the transport."""
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return self.conn.outbox.unsealed_bytes + buffered

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
                _spare_to_pool_when_idle(self)
            elif isinstance(event, SnapshotRequested) and self.server.on_snapshot is not None:
                try:
                    self.server.on_snapshot(SnapshotStream(self, event.stream))
                except Exception:  # a camera-layer bug must not take the connection down silently
                    _log.exception("on_snapshot callback failed; closing snapshot stream %d", event.stream.stream_id)
                    self.conn.fail_snapshot(event.stream, CloseReason.UNEXPECTED_FAILURE)
            elif isinstance(event, HelloReceived):
                _log.debug("HDS hello from %s", self.peername)
            elif isinstance(event, ConnectionClosed):
                self.server.limiter.verified(self)  # closing: no longer a candidate to evict
                self._close_transport(event.reason)
        self.flush()
        self.arm_timer()

    def _stream_opened(self, stream: DataSendStream) -> None:
        spare = self.server.take_spare()
        if spare is not None:
            self.conn.outbox.spare.keep(spare)
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
        _log.info("HDS connection from %s closed: %s", self.peername, reason)
        self.flush()
        if self._outstanding() == 0:
            transport.close()
            return
        self._closing = True
        self._watch_progress()
        if self._abort_timer is None:
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(self.server.config.abort_grace, self._abort)

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
        """Everything the hub has still to read: in flight, and queued but not yet sealed."""
        if self.transport is None:
            return 0
        return _in_flight(self.transport, self._sock) + self.conn.outbox.unsealed_bytes

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
        in_flight = _in_flight(transport, self._sock)
        if in_flight == 0 and self.conn.outbox.unsealed_bytes:
            self.flush()  # the socket took everything: the next batch goes now
            in_flight = _in_flight(transport, self._sock)
        outstanding = in_flight + self.conn.outbox.unsealed_bytes
        acked = self._handed - in_flight
        if outstanding == 0 or acked > self._acked:
            self._acked = acked
            self._progress_at = now
        if outstanding == 0:
            if self._closing:
                transport.close()  # the hub has read everything, the close reason included
            return False
        if not self._closing and now - self._progress_at >= self.server.config.stall_timeout:
            self._stalled(now)
        return True

    def _stalled(self, now: float) -> None:
        stream = self.conn.stream
        _log.warning("hub %s made no progress for %.1f s (%d bytes unread); closing%s", self.peername,
                     now - self._progress_at, self._outstanding(),
                     f" stream {stream.stream_id}" if stream is not None else "")
        if stream is not None:
            self.conn.close_stream(stream, CloseReason.CANCELLED)
        self.conn.close("hub stopped reading")
        self.pump()

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

    async def drain(self, handle: RecordingStream | None = None) -> None:
        """Wait while more than the high-water mark is queued and not yet in the kernel (sealed
        or not), or until the connection or ``handle`` (a recording; ``None`` for a snapshot)
        ends. A stalled hub is closed by the progress watch, which wakes us."""

        def ended() -> bool:
            return self.transport is None or (handle is not None and handle.closed)

        def behind() -> bool:
            return self._paused or self._backlog() > self.server.config.high_water

        while behind() and not ended():
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None
        if ended():
            raise StreamClosedError(f"stream {handle.stream_id} ended" if handle is not None
                                    else "the HDS connection ended")
