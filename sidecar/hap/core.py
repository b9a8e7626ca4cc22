"""The HAP accessory server as a sans-IO object: bytes in, bytes out, time passed in.

:class:`ServerCore` owns one accessory, its persistent state, pair-setup and the set of open
connections. Each :class:`Connection` is fed the bytes read from its socket with
:meth:`Connection.receive_data` and hands back what to write with
:meth:`Connection.data_to_send`; nothing here touches a socket, a clock or the event loop, so
every rule (pair-verify gating, the switch to encryption exactly after M4, event coalescing,
session closing after unpairing) is unit-testable in memory with a fake clock.

The adapter (``server.py``) is told through three callbacks: ``on_output(conn)`` when a
connection has something to send outside of a receive (events, a forced close),
``on_state_dirty()`` when the state file must be written, ``on_advertise()`` when the mDNS
TXT record changed. Work that cannot be done synchronously (snapshots over ``/resource``) is
exposed as :attr:`Connection.pending_resource` and completed by the adapter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from .. import tlv8
from ..connection_limiter import ConnectionLimiter
from .events import EventQueue
from .http import (
    JSON_TYPE,
    TLV_TYPE,
    HttpError,
    HttpRequest,
    RequestParser,
    format_error_and_close,
    format_response,
    json_body,
)
from .model import (
    Accessory,
    Characteristic,
    Perm,
    ReadContext,
    WriteContext,
    services_json,
    short_uuid,
)
from .notices import PairingNotice
from .pair_setup import PairSetup
from .pair_verify import PairVerify, VerifiedKeys
from .pairing_tlv import T
from .pairings import handle_pairings
from .secure_channel import SecureChannel, SecureChannelError
from .state import AccessoryState
from .status import HapError, HapStatus

__all__ = ["Callbacks", "Connection", "CoreConfig", "ResourceRequest", "ServerCore", "Session"]

log = logging.getLogger(__name__)

UNVERIFIED_PATHS = frozenset({"/pair-setup", "/pair-verify", "/identify"})
MAX_PREPARED = 8
MAX_TTL_MS = 60_000


@dataclass(frozen=True)
class CoreConfig:
    """Limits. Defaults suit a home network; tests shrink them."""

    max_connections: int = 64
    unverified_timeout: float = 10.0  # a connection must finish pair-verify within this
    idle_timeout: float = 24 * 3600.0  # a verified session with no traffic is closed after this
    event_interval: float = 1.0


@dataclass(frozen=True)
class ResourceRequest:
    """A snapshot request waiting for the adapter: it calls the resource hook, then completes."""

    width: int
    height: int
    reason: int | None
    aid: int


class Session:
    """What a verified connection knows about its controller (implements model.SessionView)."""

    def __init__(self, core: ServerCore, conn: Connection, keys: VerifiedKeys) -> None:
        self._core = core
        self._conn = conn
        self._keys = keys
        self._close_callbacks: list[Callable[[], None]] = []

    @property
    def controller_id(self) -> bytes:
        return self._keys.controller_id

    @property
    def is_admin(self) -> bool:
        pairing = self._core.state.pairings.get(self._keys.controller_id)
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

    def _run_close_callbacks(self) -> None:
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

    def __init__(self, core: ServerCore, conn_id: int, now: float, peer: str | None = None) -> None:
        self.id = conn_id
        self.peer = peer  # the remote address, so a flood from one host evicts its own sockets first
        self.evicted = False  # closed to make room for a newcomer: the adapter aborts the socket
        self._core = core
        self._parser = RequestParser()
        self._channel: SecureChannel | None = None
        self._verify = PairVerify(core.state)
        self._out: list[bytes] = []
        self._after_send: list[Callable[[], None]] = []
        self.session: Session | None = None
        self.events = EventQueue(core.accessory.aid, core.config.event_interval)
        self.subscriptions: set[int] = set()
        self._prepared: dict[int, float] = {}
        self.opened_at = now
        self.last_activity = now
        self.close_after_send = False
        self.closed = False
        self.pending_resource: ResourceRequest | None = None
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
            self._abort()
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
        actions, self._after_send = self._after_send, []
        for action in actions:
            action()

    def connection_lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._core._forget(self)
        if self.session is not None:
            self.session._run_close_callbacks()

    def complete_resource(self, image: bytes | None, status: HapStatus | None, now: float) -> None:
        """Finish the pending /resource request with a JPEG or a HAP status."""
        if self.pending_resource is None or self.closed:
            return
        self.pending_resource = None
        if image:
            self._send_response(200, image, b"image/jpeg")
        else:
            code = status if status is not None else HapStatus.SERVICE_COMMUNICATION_FAILURE
            self._send_response(207, json_body({"status": int(code)}))
        self._busy = False
        self._process(now)

    # -- internals ----------------------------------------------------------------------------
    def _abort(self) -> None:
        self._out.clear()
        self.close_after_send = True

    def _write(self, data: bytes) -> None:
        if self._channel is not None:
            data = self._channel.encrypt(data)
        self._out.append(data)

    def _send_response(self, status: int, body: bytes = b"", content_type: bytes = JSON_TYPE) -> None:
        self._write(format_response(status, body, content_type))

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
                self._core._dispatch(self, request, now)
            except Exception:
                log.exception("connection %d: handler failed for %s", self.id, request.path)
                self._send_response(500, json_body({"status": int(HapStatus.SERVICE_COMMUNICATION_FAILURE)}))
            if self.pending_resource is None:
                self._busy = False
        if not self._busy:
            self.flush_events(now)

    def flush_events(self, now: float) -> None:
        if self._busy or self._channel is None or self.closed or self.close_after_send:
            return
        message = self.events.take(now)
        if message is not None:
            self._write(message)
        if len(self.events):
            self._core._event_conns.add(self)
        else:
            self._core._event_conns.discard(self)

    def _switch_to_encryption(self, keys: VerifiedKeys) -> None:
        """Called after the M4 response is serialised: later bytes both ways are encrypted."""
        trailing = self._parser.trailing()
        self._channel = SecureChannel(keys.encrypt_key, keys.decrypt_key)
        self._parser = RequestParser()
        self.session = Session(self._core, self, keys)
        self._core.limiter.verified(self.id)
        if trailing:
            self._parser.receive(self._channel.decrypt(trailing))

    def prepare(self, pid: int, ttl_ms: int, now: float) -> None:
        self._prepared = {p: t for p, t in self._prepared.items() if t >= now}
        if len(self._prepared) >= MAX_PREPARED:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[pid] = now + ttl_ms / 1000.0

    def consume_prepared(self, pid: int, now: float) -> bool:
        expiry = self._prepared.pop(pid, None)
        return expiry is not None and now <= expiry

    def expired(self, now: float) -> bool:
        if self.session is None:
            if self._core.pair_setup.active_connection(now) == self.id:
                # A user may take a while to type the setup code between M2 and M3.
                return now >= self.last_activity + self._core.pair_setup.TIMEOUT
            return now >= self.opened_at + self._core.config.unverified_timeout
        return now >= self.last_activity + self._core.config.idle_timeout


@dataclass
class Callbacks:
    """How the core tells its adapter that something must happen outside a receive call."""

    on_output: Callable[[Connection], None] = lambda conn: None  # write/close/re-arm timers
    on_state_dirty: Callable[[], None] = lambda: None  # persist the state file
    on_advertise: Callable[[], None] = lambda: None  # TXT record changed
    on_identify: Callable[[], None] = lambda: None
    on_factory_reset: Callable[[], None] = lambda: None
    on_pairing: Callable[[PairingNotice], None] = lambda notice: None  # added/removed/failed proofs
    has_resource: bool = False


class ServerCore:
    """One accessory's HAP server state, independent of any I/O.

    ``clock`` is only consulted when the application changes a value outside a request
    (motion, camera state): that change must respect the event coalescing window. Tests pass a
    fake clock; the adapter passes the event loop's monotonic time.
    """

    def __init__(
        self,
        accessory: Accessory,
        state: AccessoryState,
        *,
        clock: Callable[[], float],
        config: CoreConfig | None = None,
        pair_setup: PairSetup | None = None,
    ) -> None:
        self.accessory = accessory
        self.state = state
        self.clock = clock
        self.config = config or CoreConfig()
        self.callbacks = Callbacks()
        self.pair_setup = pair_setup or PairSetup(state)
        self.verify_failures = 0  # pair-verify attempts answered with an error, since start
        self.connections: dict[int, Connection] = {}
        self._event_conns: set[Connection] = set()  # connections holding coalesced events
        self._housekeeping_at: float | None = None
        self._next_id = 1
        self.limiter: ConnectionLimiter[int] = ConnectionLimiter(self.config.max_connections)
        changed = self.accessory.assign_iids(self.state.iids)
        shape = self.accessory.shape_hash()
        if shape != self.state.db_hash:
            if self.state.db_hash:
                self.state.config_number = self.state.config_number % 65535 + 1
            self.state.db_hash = shape
            changed = True
        self.state_changed_at_start = changed
        self._index: dict[int, Characteristic] = {}
        for char in self.accessory.characteristics():
            self._index[char.iid] = char
            char.add_listener(self._on_value_changed)

    def close(self) -> None:
        for char in self._index.values():
            char.remove_listener(self._on_value_changed)

    # -- connections --------------------------------------------------------------------------
    def open_connection(self, now: float, peer: str | None = None) -> Connection | None:
        """A new TCP connection; None when the server is full (the adapter closes the socket).

        A full server makes room by evicting the oldest unverified connection of the peer that
        holds the most unverified connections (so a flood from one host evicts its own sockets,
        not a hub on another host). Verified sessions are never evicted for a newcomer: when every
        slot is verified, the newcomer is refused.
        """
        admission = self.limiter.opened(self._next_id, peer, now)
        if not admission.admitted:
            return None
        if admission.evict is not None:
            victim = self.connections[admission.evict]
            level = logging.WARNING if admission.warn else logging.DEBUG  # a flood: not each one
            log.log(level, "connection limit reached: closing unverified connection %d (from %s) for a new one "
                    "(%d so far)", victim.id, victim.peer, self.evictions)
            victim.evicted = True
            victim._abort()
            victim.connection_lost()  # frees its slot now; the adapter's later call is a no-op
            self.callbacks.on_output(victim)
        conn = Connection(self, self._next_id, now, peer)
        self._next_id += 1
        self.connections[conn.id] = conn
        if self._housekeeping_at is None:
            self._housekeeping_at = now + self.HOUSEKEEPING_S
        return conn

    @property
    def evictions(self) -> int:
        """Unverified connections closed to make room, since start (for logs and status)."""
        return self.limiter.evictions

    def _forget(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        self.limiter.closed(conn.id)
        self._event_conns.discard(conn)
        if not self.connections:
            self._housekeeping_at = None
        self.pair_setup.connection_closed(conn.id)

    # Timeouts (unverified, idle) are checked on a coarse tick rather than tracked per
    # connection: they are long, and recomputing a minimum over every connection after every
    # request would cost more than the requests themselves with many sessions open.
    HOUSEKEEPING_S = 1.0

    def next_deadline(self) -> float | None:
        deadline = self._housekeeping_at
        for conn in self._event_conns:
            due = conn.events.deadline()
            if due is not None and (deadline is None or due < deadline):
                deadline = due
        return deadline

    def handle_timers(self, now: float) -> None:
        for conn in list(self._event_conns):
            if conn.events.deadline() is not None:
                conn.flush_events(now)
                self.callbacks.on_output(conn)
            else:
                self._event_conns.discard(conn)
        if self._housekeeping_at is None or now < self._housekeeping_at:
            return
        self._housekeeping_at = now + self.HOUSEKEEPING_S if self.connections else None
        for conn in list(self.connections.values()):
            if not conn.closed and not conn.close_after_send and conn.expired(now):
                conn.close_after_send = True
                self.callbacks.on_output(conn)

    # -- advertisement ------------------------------------------------------------------------
    @property
    def status_flags(self) -> int:
        return 0 if self.state.paired else 1

    def txt_record(self) -> dict[str, str]:
        from .setup_payload import setup_hash

        return {
            "c#": str(self.state.config_number),
            "ff": "0",
            "id": self.state.device_id,
            "md": self._model_name(),
            "pv": "1.1",
            "s#": "1",
            "sf": str(self.status_flags),
            "ci": str(self.accessory.category),
            "sh": setup_hash(self.state.setup_id, self.state.device_id),
        }

    def _model_name(self) -> str:
        try:
            return str(self.accessory.service("3E").get("21").value)
        except KeyError:
            return "hksv-sidecar"

    # -- events -------------------------------------------------------------------------------
    def _on_value_changed(self, char: Characteristic, value: Any, origin: Any) -> None:
        if Perm.EVENTS not in char.perms:
            return
        now = self.clock()
        for conn in list(self.connections.values()):
            if char.iid not in conn.subscriptions or conn.session is None or conn.session is origin:
                continue
            conn.events.add(char, value)
            conn.flush_events(now)
            self.callbacks.on_output(conn)

    # -- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, conn: Connection, req: HttpRequest, now: float) -> None:
        path = req.path
        if conn.session is None and path not in UNVERIFIED_PATHS:
            conn._send_response(470, json_body({"status": int(HapStatus.INSUFFICIENT_PRIVILEGES)}))
            return
        handler = _ROUTES.get(path)
        if handler is None:
            conn._send_response(404, json_body({"status": int(HapStatus.RESOURCE_DOES_NOT_EXIST)}))
            return
        method, func = handler
        if req.method != method and not (path == "/characteristics" and req.method in ("GET", "PUT")):
            conn._send_response(405, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        func(self, conn, req, now)

    # /pair-setup
    def _pair_setup(self, conn: Connection, req: HttpRequest, now: float) -> None:
        if conn.session is not None:
            conn._send_response(470, json_body({"status": int(HapStatus.INSUFFICIENT_PRIVILEGES)}))
            return
        failed_before = self.state.failed_attempts
        result = self.pair_setup.handle(conn.id, req.body, now)
        if result.state_dirty:
            self.callbacks.on_state_dirty()
        conn._send_response(200, result.body, TLV_TYPE)
        if result.new_pairing is not None:
            # sf flips to "paired" only once the M6 response is on its way.
            conn._after_send.append(self.callbacks.on_advertise)
            self.callbacks.on_pairing(PairingNotice("added", result.new_pairing.identifier, result.new_pairing.admin,
                                                    paired=True))
        elif self.state.failed_attempts > failed_before:
            self.callbacks.on_pairing(PairingNotice("setup_failed", paired=self.state.paired,
                                                    failed_attempts=self.state.failed_attempts))

    # /pair-verify
    def _pair_verify(self, conn: Connection, req: HttpRequest, now: float) -> None:
        if conn.session is not None:
            # Re-verifying inside an encrypted session would swap keys mid-stream: refuse.
            conn._send_response(470, json_body({"status": int(HapStatus.INSUFFICIENT_PRIVILEGES)}))
            return
        result = conn._verify.handle(req.body)
        conn._send_response(200, result.body, TLV_TYPE)
        if result.keys is not None:
            conn._switch_to_encryption(result.keys)
        elif _is_error(result.body):
            self.verify_failures += 1
            self.callbacks.on_pairing(PairingNotice("verify_failed", paired=self.state.paired))

    # /identify
    def _identify(self, conn: Connection, req: HttpRequest, now: float) -> None:
        if self.state.paired:
            conn._send_response(400, json_body({"status": int(HapStatus.INSUFFICIENT_PRIVILEGES)}))
            return
        self.callbacks.on_identify()
        conn._send_response(204)

    # /pairings
    def _pairings(self, conn: Connection, req: HttpRequest, now: float) -> None:
        assert conn.session is not None
        before = {ident: p.admin for ident, p in self.state.pairings.items()}
        result = handle_pairings(self.state, conn.session.controller_id, req.body)
        self.notify_pairing_changes(before)
        if result.state_dirty:
            self.callbacks.on_state_dirty()
        conn._send_response(200, result.body, TLV_TYPE)
        if result.removed:
            removed = result.removed

            def close_removed() -> None:
                for other in list(self.connections.values()):
                    if other.session is not None and other.session.controller_id in removed:
                        other.close_after_send = True
                        if other is not conn:
                            self.callbacks.on_output(other)

            conn._after_send.append(close_removed)
        if result.factory_reset:
            conn._after_send.append(self.callbacks.on_factory_reset)
        if result.state_dirty:
            conn._after_send.append(self.callbacks.on_advertise)

    def notify_pairing_changes(self, before: dict[bytes, bool]) -> None:
        """Tell ``on_pairing`` what changed since ``before`` (identifier -> admin)."""
        after = {ident: p.admin for ident, p in self.state.pairings.items()}
        paired = bool(after)
        for ident, admin in before.items():
            if ident not in after:
                self.callbacks.on_pairing(PairingNotice("removed", ident, admin, paired=paired))
        for ident, admin in after.items():
            if before.get(ident) != admin:
                self.callbacks.on_pairing(PairingNotice("added", ident, admin, paired=paired))

    # /accessories
    def _accessories(self, conn: Connection, req: HttpRequest, now: float) -> None:
        session = conn.session
        assert session is not None

        def read(char: Characteristic) -> tuple[Any, bool]:
            if Perm.READ not in char.perms:
                return None, False
            try:
                return self._read_value(char, session), True
            except HapError:
                return None, False

        body = {"accessories": [{"aid": self.accessory.aid, "services": services_json(self.accessory, read)}]}
        conn._send_response(200, json_body(body))

    @staticmethod
    def _read_value(char: Characteristic, session: Session) -> Any:
        """The value to serve; a ReadContext is only built for characteristics with a handler."""
        if char.on_read is not None:
            return char.validate(char.on_read(ReadContext(session)))
        return char.value

    # /characteristics GET
    def _get_characteristics(self, conn: Connection, req: HttpRequest, now: float) -> None:
        assert conn.session is not None
        query = _parse_query(req.query)
        ids = query.get("id")
        if not ids:
            conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        want_meta = query.get("meta") in ("1", "true")
        want_perms = query.get("perms") in ("1", "true")
        want_type = query.get("type") in ("1", "true")
        want_ev = query.get("ev") in ("1", "true")
        aid_ok = self.accessory.aid
        index = self._index
        results: list[dict[str, Any]] = []
        errors = False
        for token in ids.split(","):
            aid_s, _, iid_s = token.partition(".")
            try:
                aid, iid = int(aid_s), int(iid_s)
            except ValueError:
                conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
                return
            entry: dict[str, Any] = {"aid": aid, "iid": iid}
            char = index.get(iid) if aid == aid_ok else None
            if char is None:
                entry["status"] = int(HapStatus.RESOURCE_DOES_NOT_EXIST)
                errors = True
            elif Perm.READ not in char.perms:
                entry["status"] = int(HapStatus.WRITE_ONLY)
                errors = True
            else:
                try:
                    entry["value"] = char.to_json_value(self._read_value(char, conn.session))
                except HapError as exc:
                    entry["status"] = int(exc.status)
                    errors = True
                if want_meta:
                    entry.update(char.meta())
                if want_perms:
                    entry["perms"] = char.perms_list()
                if want_type:
                    entry["type"] = short_uuid(char.type)
                if want_ev:
                    entry["ev"] = char.iid in conn.subscriptions
            results.append(entry)
        if errors:
            for entry in results:
                entry.setdefault("status", 0)
        conn._send_response(207 if errors else 200, json_body({"characteristics": results}))

    # /characteristics PUT
    def _put_characteristics(self, conn: Connection, req: HttpRequest, now: float) -> None:
        session = conn.session
        assert session is not None
        try:
            payload = json.loads(req.body)
            items = payload["characteristics"]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        pid = payload.get("pid")
        timed_ok = False
        if pid is not None:
            timed_ok = isinstance(pid, int) and conn.consume_prepared(pid, now)
        results: list[dict[str, Any]] = []
        any_error = False
        any_value = False
        for item in items:
            aid, iid = item.get("aid"), item.get("iid")
            entry: dict[str, Any] = {"aid": aid, "iid": iid}
            status, response_value = self._write_one(conn, session, item, pid, timed_ok, now)
            entry["status"] = int(status)
            if status != HapStatus.SUCCESS:
                any_error = True
            if response_value is not _NO_VALUE:
                entry["value"] = response_value
                any_value = True
            results.append(entry)
        if not any_error and not any_value:
            conn._send_response(204)
        else:
            conn._send_response(207, json_body({"characteristics": results}))

    def _write_one(
        self,
        conn: Connection,
        session: Session,
        item: dict[str, Any],
        pid: Any,
        timed_ok: bool,
        now: float,
    ) -> tuple[HapStatus, Any]:
        aid, iid = item.get("aid"), item.get("iid")
        if not isinstance(aid, int) or not isinstance(iid, int):
            return HapStatus.INVALID_VALUE, _NO_VALUE
        char = self._index.get(iid) if aid == self.accessory.aid else None
        if char is None:
            return HapStatus.RESOURCE_DOES_NOT_EXIST, _NO_VALUE
        if "ev" in item:
            if Perm.EVENTS not in char.perms:
                return HapStatus.NOTIFICATION_NOT_SUPPORTED, _NO_VALUE
            if not isinstance(item["ev"], bool | int):
                return HapStatus.INVALID_VALUE, _NO_VALUE
            if item["ev"]:
                conn.subscriptions.add(char.iid)
            else:
                conn.subscriptions.discard(char.iid)
                conn.events.discard(char.iid)
        if "value" not in item:
            return HapStatus.SUCCESS, _NO_VALUE
        if Perm.WRITE not in char.perms:
            return HapStatus.READ_ONLY, _NO_VALUE
        if pid is not None and not timed_ok:
            return HapStatus.INVALID_VALUE, _NO_VALUE
        if Perm.TIMED_WRITE in char.perms and not timed_ok:
            return HapStatus.INVALID_VALUE, _NO_VALUE
        want_response = bool(item.get("r", False))
        if want_response and Perm.WRITE_RESPONSE not in char.perms:
            return HapStatus.INVALID_VALUE, _NO_VALUE
        if char.admin_write and not session.is_admin:
            return HapStatus.INSUFFICIENT_PRIVILEGES, _NO_VALUE
        try:
            value = char.validate(item["value"])
            answer = None
            if char.on_write is not None:
                answer = char.on_write(value, WriteContext(session, timed_ok, want_response))
            char.set_value(value, origin=session)
        except HapError as exc:
            return exc.status, _NO_VALUE
        except Exception:
            log.exception("write handler failed for iid %d", char.iid)
            return HapStatus.SERVICE_COMMUNICATION_FAILURE, _NO_VALUE
        if want_response:
            return HapStatus.SUCCESS, char.to_json_value(answer if answer is not None else value)
        return HapStatus.SUCCESS, _NO_VALUE

    # /prepare
    def _prepare(self, conn: Connection, req: HttpRequest, now: float) -> None:
        try:
            payload = json.loads(req.body)
            ttl, pid = payload["ttl"], payload["pid"]
            if not (isinstance(ttl, int) and isinstance(pid, int) and 0 < ttl <= MAX_TTL_MS):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        conn.prepare(pid, ttl, now)
        conn._send_response(200, json_body({"status": 0}))

    # /resource
    def _resource(self, conn: Connection, req: HttpRequest, now: float) -> None:
        if not req.body:
            conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        try:
            payload = json.loads(req.body)
            if not isinstance(payload, dict):
                raise TypeError
        except (ValueError, TypeError):
            conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        aid = payload.get("aid", self.accessory.aid)
        if payload.get("resource-type") != "image" or aid != self.accessory.aid or not self.callbacks.has_resource:
            conn._send_response(404, json_body({"status": int(HapStatus.RESOURCE_DOES_NOT_EXIST)}))
            return
        width, height, reason = payload.get("image-width"), payload.get("image-height"), payload.get("reason")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192 for v in (width, height)) \
                or (reason is not None and reason not in (0, 1)):
            conn._send_response(400, json_body({"status": int(HapStatus.INVALID_VALUE)}))
            return
        assert isinstance(width, int) and isinstance(height, int)
        conn.pending_resource = ResourceRequest(width, height, reason, aid)


def _is_error(tlv_body: bytes) -> bool:
    """Whether a pairing TLV answer carries kTLVType_Error (our own answers always decode)."""
    try:
        return T.ERROR in tlv8.decode_dict(tlv_body)
    except tlv8.TLVError:
        return False


def _parse_query(query: str) -> dict[str, str]:
    """``id=1.2,1.3&ev=1`` -> {"id": "1.2,1.3", "ev": "1"}; first value wins, %-escapes decoded."""
    out: dict[str, str] = {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        out.setdefault(key, value)
    return out


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Any = _NoValue()

_Handler = Callable[[ServerCore, Connection, HttpRequest, float], None]


def _characteristics(core: ServerCore, conn: Connection, req: HttpRequest, now: float) -> None:
    if req.method == "GET":
        core._get_characteristics(conn, req, now)
    else:
        core._put_characteristics(conn, req, now)


_ROUTES: dict[str, tuple[str, _Handler]] = {
    "/pair-setup": ("POST", ServerCore._pair_setup),
    "/pair-verify": ("POST", ServerCore._pair_verify),
    "/identify": ("POST", ServerCore._identify),
    "/pairings": ("POST", ServerCore._pairings),
    "/accessories": ("GET", ServerCore._accessories),
    "/characteristics": ("GET", _characteristics),
    "/prepare": ("PUT", ServerCore._prepare),
    "/resource": ("POST", ServerCore._resource),
}
