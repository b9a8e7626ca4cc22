"""The asyncio side of HDS: one lazily bound TCP listener per camera.

Thin by design (docs/architecture.md): :class:`HDSServer` binds the listener when a hub first
asks for a data stream (a HAP write handler needs the port synchronously), accepts sockets into
:class:`~sidecar.hds.hub_connection.HubConnection` objects, keeps the prepared sessions and the
recording slot, and takes its recordings' sealing buffers from a :class:`~.sealing_pool.SealingPool`
shared by every camera of the process (one of its own if none is given). Limits and
timeouts come in one :class:`~sidecar.hds.config.HDSConfig`. A hub that stops reading cannot
make us buffer without bound, nor hold the recording slot for long:

* each socket's kernel send buffer is small (``send_buffer``; autotuning would let a stalled hub
  park megabytes there and hide the stall for tens of seconds), and a producer awaits drain above
  ``high_water`` bytes in the transport;
* a stall is measured from the last progress the hub made, and a stalled hub's stream is closed
  with a reason and its socket aborted soon after (see ``hub_connection``);
* when the listener is full, a newcomer evicts the oldest connection that has not proved its keys
  (the busiest host's first; the policy is the shared ``connection_limiter``); identified
  connections are never evicted for a newcomer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from typing import Final

from ..connection_limiter import ConnectionLimiter
from .config import HDSConfig
from .datasend import OpenGate, StreamRegistry
from .hub_connection import HubConnection, RecordingStream, SnapshotStream
from .sealing_pool import SealingPool
from .socket_transport import SocketTransport, accept_ready
from .transport import HapCloseRegistrar, TransportManager, parse_setup_write

__all__ = ["HDSServer"]

_log = logging.getLogger(__name__)

_MAX_EPHEMERAL_PORT: Final = 60999
_BIND_ATTEMPTS: Final = 32


class HDSServer:
    """Per camera: DataStreamTransportManagement, the HDS listener and the recording slot.

    ``setup`` (synchronous, for the HAP write handler of 0x131) binds the listener on first use
    and returns the write response; ``on_stream`` is called with a :class:`RecordingStream` for
    every accepted ``open``, ``on_snapshot`` (if given) with a :class:`SnapshotStream` for every
    accepted snapshot ``open``; ``gate`` answers the open checks. ``clock`` defaults to the loop's
    monotonic time; tests pass a fake one and call :meth:`check_timers`. ``pool`` is the sealing
    buffers shared with other cameras; without one the listener keeps one buffer of its own.
    """

    def __init__(
        self,
        gate: OpenGate,
        on_stream: Callable[[RecordingStream], None],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - hubs connect from the LAN; callers pass the bind address
        clock: Callable[[], float] | None = None,
        config: HDSConfig | None = None,
        on_snapshot: Callable[[SnapshotStream], None] | None = None,
        pool: SealingPool | None = None,
    ) -> None:
        self.host = host
        self.config = config or HDSConfig()
        self.on_stream = on_stream
        # Snapshot streams (docs/hds.md §Snapshot streams), offered only with a handler: opened
        # while HomeKitCameraActive is 1, answered by the handler with one payload.
        self.on_snapshot = on_snapshot
        self.snapshot_gate: Callable[[], bool] | None = gate.camera_active
        self.clock: Callable[[], float] = clock or (lambda: asyncio.get_running_loop().time())
        self.limiter: ConnectionLimiter[HubConnection] = ConnectionLimiter(self.config.max_connections)
        self.transports = TransportManager(session_timeout=self.config.session_timeout)
        self.registry = StreamRegistry(gate)
        self.connections: set[HubConnection] = set()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accept_timer: asyncio.TimerHandle | None = None
        self.pool = pool if pool is not None else SealingPool(limit=1)
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
        candidates = [0] + [random.randint(self.config.min_port, _MAX_EPHEMERAL_PORT) for _ in range(_BIND_ATTEMPTS)]
        for candidate in candidates:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, candidate))
                if sock.getsockname()[1] < self.config.min_port:
                    sock.close()
                    continue
                sock.listen(16)
                sock.setblocking(False)
            except OSError:
                sock.close()
                continue
            return sock
        raise OSError(f"no free HDS port >= {self.config.min_port} on {self.host}")

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
        protocol = HubConnection(self)
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
        opened at once that was most of the first burst's time. Nothing is asked while this
        camera records (its recording holds a buffer); the pool bounds how many are kept."""
        if self.registry.active is not None:
            return
        self.pool.reserve(self, segment_bytes)

    def take_spare(self) -> bytearray | None:
        """A sealing buffer from the pool (one an earlier recording left, or one made ahead)."""
        return self.pool.take()

    def keep_spare(self, buffer: bytearray | None) -> None:
        """A finished connection's sealing buffer, every byte of it sent, back to the pool: the
        next recording's first fragments, the whole prebuffer, are then sealed without faulting
        in a fresh megabyte, which is where a burst of hubs opening at once spent its time."""
        self.pool.give(self, buffer)

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
        self.pool.forget(self)
