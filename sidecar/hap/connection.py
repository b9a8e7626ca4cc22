"""One HAP connection and the session it carries, as sans-IO objects.

A :class:`Connection` is fed the bytes read from its socket (:meth:`Connection.receive_data`)
and hands back what to write (:meth:`Connection.data_to_send`). It parses requests, passes
each one to its owner (the server core, which answers with a :class:`~.response.Response` or,
for a snapshot, a :class:`ResourceRequest`), writes the answer, and switches to encryption
exactly after the pair-verify M4 response. Requests are answered strictly in order: while a
snapshot is pending for the adapter, or a CPU-heavy step (:class:`~.offload.Offload`) runs
off the event loop, later requests wait in the parser.

A verified connection has a :class:`Session`, which the layers above see as
``model.SessionView``: who the controller is, whether it is an admin, the pair-verify secret,
and callbacks for when the connection closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .events import EventQueue
from .http import HttpError, HttpRequest, RequestParser, format_error_and_close, format_response
from .offload import Offload
from .pair_verify import PairVerify, VerifiedKeys
from .response import RequestError, Response
from .secure_channel import SecureChannel, SecureChannelError
from .state import AccessoryState
from .status import HapStatus

__all__ = ["Connection", "ConnectionOwner", "OffloadedRequest", "ResourceRequest", "Session"]

log = logging.getLogger(__name__)

MAX_PREPARED = 8


@dataclass(frozen=True)
class ResourceRequest:
    """A snapshot request waiting for the adapter: it calls the resource hook, then completes."""

    width: int
    height: int
    reason: int | None
    aid: int


OffloadedRequest = Offload[Any, Response]
"""A request whose answer needs CPU-heavy work first: the adapter runs ``compute`` (off the
loop) and hands its result to :meth:`Connection.complete_offload`."""


class ConnectionOwner(Protocol):
    """What a connection asks of the server that holds it."""

    def handle_request(self, conn: Connection, request: HttpRequest, now: float
                       ) -> Response | ResourceRequest | OffloadedRequest:
        """Answer one request (routes raise RequestError, which the owner turns into a Response)."""

    def connection_verified(self, conn: Connection) -> None:
        """Pair-verify finished: ``conn.session`` is set."""

    def connection_closed(self, conn: Connection) -> None:
        """The connection is gone: free its slot."""

    def events_waiting(self, conn: Connection, waiting: bool) -> None:
        """Whether coalesced events wait for the connection's next window."""


class Session:
    """What a verified connection knows about its controller (implements model.SessionView)."""

    def __init__(self, state: AccessoryState, conn: Connection, keys: VerifiedKeys) -> None:
        self._state = state
        self._conn = conn
        self._keys = keys
        self._close_callbacks: list[Callable[[], None]] = []

    @property
    def controller_id(self) -> bytes:
        return self._keys.controller_id

    @property
    def is_admin(self) -> bool:
        pairing = self._state.pairings.get(self._keys.controller_id)
        return pairing is not None and pairing.admin

    @property
    def shared_secret(self) -> bytes:
        return self._keys.shared_secret

    @property
    def session_id(self) -> int:
        return self._conn.id

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def add_close_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` once when this session's connection closes (at once if it has).

        Returns a function that unregisters it, so users that finish early (an HDS setup that
        was consumed) do not leave callbacks piling up on a long-lived session.
        """
        if self._conn.closed:
            callback()
            return lambda: None
        self._close_callbacks.append(callback)

        def remove() -> None:
            if callback in self._close_callbacks:
                self._close_callbacks.remove(callback)

        return remove

    def run_close_callbacks(self) -> None:
        """The connection closed: call every registered callback once."""
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("session close callback failed")

    def __repr__(self) -> str:
        return f"Session(conn={self._conn.id}, controller={self.controller_id!r})"


class Connection:
    """One TCP connection's protocol state."""

    def __init__(
        self,
        owner: ConnectionOwner,
        conn_id: int,
        now: float,
        peer: str | None = None,
        *,
        state: AccessoryState,
        events: EventQueue,
    ) -> None:
        self.id = conn_id
        self.peer = peer  # the remote address, so a flood from one host evicts its own sockets first
        self.evicted = False  # closed to make room for a newcomer: the adapter aborts the socket
        self._owner = owner
        self._state = state
        self._parser = RequestParser()
        self._channel: SecureChannel | None = None
        self.verify = PairVerify(state)  # driven by the /pair-verify route
        self._out: list[bytes] = []
        self._after_send: list[Callable[[], None]] = []
        self.session: Session | None = None
        self.events = events
        self.subscriptions: set[int] = set()
        self._events_waiting = False  # what the owner was last told by events_waiting()
        self._prepared: dict[int, float] = {}
        self.opened_at = now
        self.last_activity = now
        self.close_after_send = False
        self.closed = False
        self.pending_resource: ResourceRequest | None = None
        self.pending_offload: OffloadedRequest | None = None
        self._busy = False  # a request is being handled or awaits the adapter

    # -- adapter interface --------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> None:
        if self.closed or self.close_after_send:
            return
        self.last_activity = now
        try:
            if self._channel is not None:
                data = self._channel.decrypt(data)
            if not data:
                return  # an incomplete frame (h11 would read b"" as end of stream)
            self._parser.receive(data)
        except SecureChannelError as exc:
            log.info("connection %d: %s; closing", self.id, exc)
            self.abort()
            return
        self._process(now)

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def sent(self) -> None:
        """The adapter wrote everything from data_to_send(); run the deferred actions."""
        if not self._after_send:
            return
        actions, self._after_send = self._after_send, []
        for action in actions:
            action()

    def connection_lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._owner.connection_closed(self)
        if self.session is not None:
            self.session.run_close_callbacks()

    def complete_resource(self, image: bytes | None, status: HapStatus | None, now: float) -> None:
        """Finish the pending /resource request with a JPEG or a HAP status."""
        if self.pending_resource is None or self.closed:
            return
        self.pending_resource = None
        if image:
            self._respond(Response(200, image, b"image/jpeg"))
        else:
            code = status if status is not None else HapStatus.SERVICE_COMMUNICATION_FAILURE
            self._respond(Response.hap_status(207, code))
        self._busy = False
        self._process(now)

    def complete_offload(self, result: Any, error: BaseException | None, now: float) -> None:
        """Finish the pending offloaded request with what its ``compute`` returned (or raised)."""
        pending = self.pending_offload
        if pending is None or self.closed:
            return
        self.pending_offload = None
        response: Response
        if error is not None:
            log.error("connection %d: offloaded work failed: %r", self.id, error)
            response = RequestError(500, HapStatus.SERVICE_COMMUNICATION_FAILURE).response()
        else:
            try:
                response = pending.finish(result, now)
            except Exception:
                log.exception("connection %d: finishing offloaded work failed", self.id)
                response = RequestError(500, HapStatus.SERVICE_COMMUNICATION_FAILURE).response()
        self._respond(response)
        self._busy = False
        self._process(now)

    # -- for the server core ------------------------------------------------------------------
    def abort(self) -> None:
        """Drop what is queued and close: the adapter closes the socket."""
        self._out.clear()
        self.close_after_send = True

    def flush_events(self, now: float) -> None:
        """Write the coalesced events that are due (not in the middle of a request)."""
        if self._busy or self._channel is None or self.closed or self.close_after_send:
            return
        events = self.events
        waiting = False
        if events:
            message = events.take(now)
            if message is not None:
                self._write(message)
            waiting = len(events) > 0
        if waiting or self._events_waiting:  # after most requests: nothing queued before or now
            self._events_waiting = waiting
            self._owner.events_waiting(self, waiting)

    def prepare(self, pid: int, ttl_ms: int, now: float) -> None:
        """Remember a timed write's ``pid`` until ``ttl_ms`` from now (a few at most)."""
        self._prepared = {p: t for p, t in self._prepared.items() if t >= now}
        if len(self._prepared) >= MAX_PREPARED:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[pid] = now + ttl_ms / 1000.0

    def consume_prepared(self, pid: int, now: float) -> bool:
        expiry = self._prepared.pop(pid, None)
        return expiry is not None and now <= expiry

    # -- internals ----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._channel is not None:
            data = self._channel.encrypt(data)
        self._out.append(data)

    def _respond(self, response: Response) -> None:
        self._write(format_response(response.status, response.body, response.content_type))
        self._after_send.extend(response.after_send)
        if response.keys is not None:
            self._switch_to_encryption(response.keys)

    def _process(self, now: float) -> None:
        while not self._busy and not self.close_after_send:
            try:
                request = self._parser.next_request()
            except HttpError as exc:
                self._write(format_error_and_close(exc.status))
                self.close_after_send = True
                return
            except EOFError:
                self.close_after_send = True
                return
            if request is None:
                break
            self._busy = True
            log.debug("connection %d: %s %s", self.id, request.method, request.path)
            try:
                answer = self._owner.handle_request(self, request, now)
            except Exception:
                log.exception("connection %d: handler failed for %s", self.id, request.path)
                answer = RequestError(500, HapStatus.SERVICE_COMMUNICATION_FAILURE).response()
            if isinstance(answer, ResourceRequest):
                self.pending_resource = answer  # stays busy until the adapter completes it
            elif isinstance(answer, Offload):
                self.pending_offload = answer  # stays busy until the adapter completes it
            else:
                self._respond(answer)
                self._busy = False
        if not self._busy:
            self.flush_events(now)

    def _switch_to_encryption(self, keys: VerifiedKeys) -> None:
        """Called after the M4 response is serialised: later bytes both ways are encrypted."""
        trailing = self._parser.trailing()
        self._channel = SecureChannel(keys.encrypt_key, keys.decrypt_key)
        self._parser = RequestParser()
        self.session = Session(self._state, self, keys)
        self._owner.connection_verified(self)
        if trailing:
            self._parser.receive(self._channel.decrypt(trailing))
