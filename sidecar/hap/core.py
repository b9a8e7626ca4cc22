"""The HAP accessory server as a sans-IO object: bytes in, bytes out, time passed in.

:class:`ServerCore` owns one accessory, its persistent state, pair-setup and the table of open
connections (:class:`~.connection.Connection`, each fed its socket's bytes by the adapter). It
admits connections through the shared :class:`~sidecar.connection_limiter.ConnectionLimiter`,
runs the timers (event coalescing windows, unverified and idle timeouts), builds the mDNS TXT
record and fans value changes out to subscribed sessions. Requests are answered by the handlers
in ``routes.py``. Nothing here touches a socket, a clock or the event loop, so every rule is
unit-testable in memory with a fake clock.

The adapter (``server.py``) is told through :class:`~.callbacks.Callbacks`: ``on_output(conn)``
when a connection has something to send outside of a receive (events, a forced close),
``on_state_dirty()`` when the state file must be written, ``on_advertise()`` when the mDNS
TXT record changed. Work that cannot be done synchronously (snapshots over ``/resource``) is
exposed as :attr:`Connection.pending_resource` and completed by the adapter; CPU-heavy steps
(pair-setup's SRP) as :attr:`Connection.pending_offload`, which the adapter runs off the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..connection_limiter import ConnectionLimiter
from . import routes
from .callbacks import Callbacks
from .connection import Connection, OffloadedRequest, ResourceRequest
from .events import EventQueue
from .http import HttpRequest
from .model import Accessory, Characteristic, Perm
from .notices import PairingNotice
from .pair_setup import PairSetup
from .response import Response
from .setup_payload import setup_hash
from .state import AccessoryState

__all__ = ["Callbacks", "CoreConfig", "ServerCore"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreConfig:
    """Limits. Defaults suit a home network; tests shrink them."""

    max_connections: int = 64
    unverified_timeout: float = 10.0  # a connection must finish pair-verify within this
    idle_timeout: float = 24 * 3600.0  # a verified session with no traffic is closed after this
    event_interval: float = 1.0


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
        self.index: dict[int, Characteristic] = {}  # by iid
        for char in self.accessory.characteristics():
            self.index[char.iid] = char
            char.add_listener(self._on_value_changed)

    def close(self) -> None:
        for char in self.index.values():
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
            victim.abort()
            victim.connection_lost()  # frees its slot now; the adapter's later call is a no-op
            self.callbacks.on_output(victim)
        conn = Connection(self, self._next_id, now, peer, state=self.state,
                          events=EventQueue(self.accessory.aid, self.config.event_interval))
        self._next_id += 1
        self.connections[conn.id] = conn
        if self._housekeeping_at is None:
            self._housekeeping_at = now + self.HOUSEKEEPING_S
        return conn

    @property
    def evictions(self) -> int:
        """Unverified connections closed to make room, since start (for logs and status)."""
        return self.limiter.evictions

    def connection_closed(self, conn: Connection) -> None:
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
            if not conn.closed and not conn.close_after_send and self._expired(conn, now):
                conn.close_after_send = True
                self.callbacks.on_output(conn)

    def _expired(self, conn: Connection, now: float) -> bool:
        if conn.session is None:
            if self.pair_setup.active_connection(now) == conn.id:
                # A user may take a while to type the setup code between M2 and M3.
                return now >= conn.last_activity + self.pair_setup.TIMEOUT
            return now >= conn.opened_at + self.config.unverified_timeout
        return now >= conn.last_activity + self.config.idle_timeout

    # -- advertisement ------------------------------------------------------------------------
    @property
    def status_flags(self) -> int:
        return 0 if self.state.paired else 1

    def txt_record(self) -> dict[str, str]:
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

    # -- requests (the ConnectionOwner side) --------------------------------------------------
    def handle_request(self, conn: Connection, request: HttpRequest, now: float
                       ) -> Response | ResourceRequest | OffloadedRequest:
        return routes.dispatch(self, conn, request, now)

    def connection_verified(self, conn: Connection) -> None:
        self.limiter.verified(conn.id)

    def events_waiting(self, conn: Connection, waiting: bool) -> None:
        if waiting:
            self._event_conns.add(conn)
        else:
            self._event_conns.discard(conn)

    def close_sessions_of(self, controllers: frozenset[bytes] | set[bytes], requester: Connection) -> None:
        """Close the sessions of removed controllers (``requester``'s own, after its answer)."""
        for other in list(self.connections.values()):
            if other.session is not None and other.session.controller_id in controllers:
                other.close_after_send = True
                if other is not requester:
                    self.callbacks.on_output(other)

    def notify_pairing_changes(self, before: dict[bytes, bool]) -> None:
        """Tell ``on_pairing`` what changed since ``before`` (identifier -> admin)."""
        after = self.state.admin_flags()
        paired = bool(after)
        for ident, admin in before.items():
            if ident not in after:
                self.callbacks.on_pairing(PairingNotice("removed", ident, admin, paired=paired))
        for ident, admin in after.items():
            if before.get(ident) != admin:
                self.callbacks.on_pairing(PairingNotice("added", ident, admin, paired=paired))
