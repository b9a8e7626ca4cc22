"""The asyncio adapter around :class:`ServerCore`: sockets, one timer, snapshots, persistence.

Deliberately thin: it moves bytes between sockets and the core, arms the single timer the
core asks for, runs ``/resource`` requests as tasks under a timeout (so a hung camera can
never stall the server), runs the cores' CPU-heavy steps (pair-setup's SRP) in a worker thread
so they never stall the event loop, writes the state file when told (in a worker thread too: an
fsync must not stall the loop), and keeps the mDNS record in step.
A client that stops reading while events pile up is disconnected once its write buffer passes
``MAX_WRITE_BUFFER``: memory stays bounded whatever the peer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..worker_thread import WorkerThread
from .advertiser import Advertiser
from .connection import Connection
from .core import CoreConfig, ServerCore
from .model import Accessory
from .notices import PairingNotice
from .setup_payload import setup_uri
from .state import AccessoryState, DamagedStateError, move_aside
from .state_file import WriteBehind
from .status import HapError, HapStatus

__all__ = ["AccessoryServer", "ResourceHandler"]

log = logging.getLogger(__name__)

MAX_WRITE_BUFFER = 1 << 20
ResourceHandler = Callable[[int, int, "int | None"], Awaitable[bytes]]


_crypto_worker = WorkerThread("hap-crypto")


def run_off_loop(loop: asyncio.AbstractEventLoop, compute: Callable[[], Any]) -> asyncio.Future[Any]:
    """``compute()`` in the crypto worker thread; its result (or exception) on the loop.

    One worker for the process, so the steps take turns (several at once would only fight the
    event loop for the interpreter lock) and a burst of pairings costs one thread start; it
    ends when no step is left, so a server that pairs nobody keeps no idle thread around.
    """
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = compute()
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(deliver, result, error)

    _crypto_worker.submit(work)
    return future


READ_BUFFER = 64 * 1024


class _HapProtocol(asyncio.BufferedProtocol):
    """One connection's socket. Reads land in the server's one read buffer.

    asyncio's plain ``Protocol`` receives into a fresh 256 KiB bytes object per read, which
    costs more than a whole small request's parsing and decryption; HAP messages are small.
    The buffer is shared: asyncio hands it out, fills it and reports the count in one step
    (``get_buffer``, ``recv_into``, ``buffer_updated``), and the bytes are copied out at once.
    """

    def __init__(self, server: AccessoryServer) -> None:
        self._server = server
        self._time = server.loop.time  # looked up once: the per-request path is mostly overhead
        self._read_buffer = server.read_buffer
        self._transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self._resource_task: asyncio.Task[None] | None = None
        self._offload_task: asyncio.Task[None] | None = None
        self._held: asyncio.Task[None] | None = None  # answers wait for the pairing state on disk

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        conn = self._server.core.open_connection(self._server.loop.time(), str(peer[0]) if peer else None)
        if conn is None:
            log.warning("%s: connection limit reached by verified sessions; refusing a connection",
                        self._server.name)
            transport.abort()
            return
        self.conn = conn
        self._server._protocols[conn.id] = self
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._server._rearm()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.conn is None:
            return
        server = self._server
        saves = server.pairing_saves
        self.conn.receive_data(bytes(self._read_buffer[:nbytes]), self._time())
        if server.pairing_saves != saves:
            self._flush_after(saves)
        else:
            self.flush()

    def _flush_after(self, saves: int) -> None:
        """Flush, unless the request changed the pairings: then once their state file is on disk.

        A hub that has our M6 (or an add/remove-pairing answer) believes the pairing exists, so
        the answer must not go out before the write that keeps it: a crash in between would leave
        the hub paired with an accessory that forgot it (docs/hap-server.md, checklist item 24).
        """
        if self._server.pairing_saves != saves and self._held is None:
            self._held = self._server.loop.create_task(self._flush_when_durable())
        else:
            self.flush()

    async def _flush_when_durable(self) -> None:
        try:
            await self._server.drain_state()
        finally:
            self._held = None
        self.flush()

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def flush(self) -> None:
        """Write what the core produced, start deferred work, close if asked."""
        conn, transport = self.conn, self._transport
        if conn is None or transport is None or self._held is not None or transport.is_closing():
            return  # (held: the waiting task flushes everything, in order, once the state is on disk)
        if conn.evicted:  # made room for a newcomer: release the socket at once
            transport.abort()
            return
        data = conn.data_to_send()
        if data:
            transport.write(data)
        conn.sent()
        # Only a write grows the buffer, and a flush that found it over the limit aborted.
        if data and transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("%s: connection %d is not reading; dropping it", self._server.name, conn.id)
            transport.abort()
            return
        if conn.pending_resource is not None and self._resource_task is None:
            self._resource_task = self._server.loop.create_task(self._run_resource())
        if conn.pending_offload is not None and self._offload_task is None:
            self._offload_task = self._server.loop.create_task(self._run_offload())
        if conn.close_after_send:
            transport.close()
        server = self._server
        if server.core.next_deadline() != server._timer_at:  # the common case: the timer stands
            server._rearm()

    async def _run_offload(self) -> None:
        """Run the connection's CPU-heavy step in the crypto worker, then let it answer."""
        conn = self.conn
        assert conn is not None and conn.pending_offload is not None
        work = conn.pending_offload
        result: Any = None
        error: BaseException | None = None
        try:
            result = await run_off_loop(self._server.loop, work.compute)
        except Exception as exc:
            error = exc
        finally:
            self._offload_task = None
        if self.conn is conn:
            saves = self._server.pairing_saves
            conn.complete_offload(result, error, self._server.loop.time())
            self._flush_after(saves)

    async def _run_resource(self) -> None:
        conn = self.conn
        assert conn is not None and conn.pending_resource is not None
        request = conn.pending_resource
        handler = self._server.resource_handler
        image: bytes | None = None
        status: HapStatus | None = None
        try:
            assert handler is not None
            image = await asyncio.wait_for(
                handler(request.width, request.height, request.reason), self._server.resource_timeout
            )
        except TimeoutError:
            status = HapStatus.OPERATION_TIMED_OUT
        except HapError as exc:
            status = exc.status
        except Exception:
            log.exception("%s: snapshot failed", self._server.name)
            status = HapStatus.SERVICE_COMMUNICATION_FAILURE
        finally:
            self._resource_task = None
        conn.complete_resource(image, status, self._server.loop.time())
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resource_task is not None:
            self._resource_task.cancel()
            self._resource_task = None
        if self._offload_task is not None:
            self._offload_task.cancel()  # the worker finishes its step; nobody waits for it
            self._offload_task = None
        if self._held is not None:
            self._held.cancel()  # the write goes on (stop() drains it); there is nobody to answer
            self._held = None
        if self.conn is not None:
            self._server._protocols.pop(self.conn.id, None)
            self.conn.connection_lost()
            self.conn = None
        self._transport = None
        self._server._rearm()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class AccessoryServer:
    """Serve one accessory: its own TCP port, identity, pairings and mDNS record."""

    def __init__(
        self,
        accessory: Accessory,
        state_path: Path,
        *,
        name: str,
        host: str = "0.0.0.0",  # noqa: S104 - a real user serves the LAN; tests pass 127.0.0.1
        port: int = 0,
        setup_code: str | None = None,
        config: CoreConfig | None = None,
        advertiser: Advertiser | None = None,
        resource_handler: ResourceHandler | None = None,
        resource_timeout: float = 25.0,
        on_identify: Callable[[], None] | None = None,
        on_factory_reset: Callable[[], None] | None = None,
        on_pairing: Callable[[PairingNotice], None] | None = None,
        reset_damaged_state: bool = False,
    ) -> None:
        self.name = name
        self.accessory = accessory
        self.state_path = state_path
        self.host = host
        self._requested_port = port
        self.loop = asyncio.get_running_loop()
        self._state_file = WriteBehind(state_path, self.loop)

        def save(state: AccessoryState) -> None:
            self._state_file.write(state.to_bytes())

        try:
            self.state = AccessoryState.load_or_create(state_path, setup_code, save=save)
        except DamagedStateError:
            if not reset_damaged_state:
                raise
            kept = move_aside(state_path)
            log.warning("%s: damaged state file moved to %s; starting unpaired", name, kept.name)
            self.state = AccessoryState.load_or_create(state_path, setup_code, save=save)
        self.core = ServerCore(accessory, self.state, clock=self.loop.time, config=config)
        if self.core.state_changed_at_start:
            self.save_state()
        self.resource_handler = resource_handler
        self.resource_timeout = resource_timeout
        self.advertiser = advertiser
        self._on_factory_reset = on_factory_reset
        self.core.callbacks.on_output = self._on_output
        self.pairing_saves = 0  # the core's saves (pairings, failed attempts): answers wait for them
        self.core.callbacks.on_state_dirty = self._save_pairing_state
        self.core.callbacks.on_advertise = self._advertise
        self.core.callbacks.on_factory_reset = self._factory_reset
        self.core.callbacks.has_resource = resource_handler is not None
        if on_identify is not None:
            self.core.callbacks.on_identify = on_identify
        if on_pairing is not None:
            self.core.callbacks.on_pairing = on_pairing
        self._protocols: dict[int, _HapProtocol] = {}
        self.read_buffer = memoryview(bytearray(READ_BUFFER))  # shared by the connections' reads
        self._server: asyncio.Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._advert_task: asyncio.Task[None] | None = None
        self.port = 0

    # -- identity for the user ----------------------------------------------------------------
    @property
    def setup_code(self) -> str:
        return self.state.setup_code

    @property
    def setup_uri(self) -> str:
        return setup_uri(self.state.setup_code, self.state.setup_id, self.accessory.category)

    @property
    def paired(self) -> bool:
        return self.state.paired

    # -- status for the layer above -----------------------------------------------------------
    @property
    def session_count(self) -> int:
        """Verified (encrypted) sessions open now."""
        return sum(1 for conn in self.core.connections.values() if conn.session is not None)

    @property
    def verify_failures(self) -> int:
        """Pair-verify attempts answered with an error, since start."""
        return self.core.verify_failures

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await self.loop.create_server(
            lambda: _HapProtocol(self), self.host, self._requested_port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.advertiser is not None:
            await self.advertiser.register(self.name, self.port, self.core.txt_record())
        log.info("%s: HAP server on %s:%d (paired: %s)", self.name, self.host, self.port, self.paired)

    async def stop(self) -> None:
        if self._advert_task is not None:
            await self._advert_task
        if self.advertiser is not None:
            await self.advertiser.unregister()
        if self._server is not None:
            self._server.close()
        for proto in list(self._protocols.values()):
            proto.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.core.close()
        self.save_state()
        await self._state_file.drain()

    def remove_all_pairings(self) -> bool:
        """Forget every controller (a parent's "unpair"): back to factory state, pairable again.

        Open sessions are closed (their keys belong to controllers we no longer know) and the
        mDNS record says "not paired" again. Returns whether there was anything to forget.
        """
        if not self.state.pairings:
            return False
        before = self.state.admin_flags()
        self.state.pairings.clear()
        self.core.notify_pairing_changes(before)
        for proto in list(self._protocols.values()):
            proto.close()
        self.save_state()
        self._advertise()
        self._factory_reset()
        return True

    # -- callbacks from the core --------------------------------------------------------------
    def save_state(self) -> None:
        """Write the state file, off the event loop (in order; :meth:`stop` waits for it)."""
        self._state_file.write(self.state.to_bytes())

    def _save_pairing_state(self) -> None:
        self.pairing_saves += 1
        self.save_state()

    async def drain_state(self) -> None:
        """Return once every state written so far is on disk."""
        await self._state_file.drain()

    def _on_output(self, conn: Connection) -> None:
        proto = self._protocols.get(conn.id)
        if proto is not None:
            proto.flush()

    def _advertise(self) -> None:
        if self.advertiser is None:
            return
        txt = self.core.txt_record()
        previous = self._advert_task

        async def update() -> None:
            if previous is not None:
                await previous
            assert self.advertiser is not None
            await self.advertiser.update(txt)

        self._advert_task = self.loop.create_task(update())
        self._advert_task.add_done_callback(self._advert_done)

    def _advert_done(self, task: asyncio.Task[None]) -> None:
        if self._advert_task is task:
            self._advert_task = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s: mDNS update failed: %s", self.name, task.exception())

    def _factory_reset(self) -> None:
        log.info("%s: last admin removed; back to factory state (unpaired)", self.name)
        if self._on_factory_reset is not None:
            self._on_factory_reset()

    def _rearm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(max(deadline, self.loop.time()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.core.handle_timers(self.loop.time())
        self._rearm()
