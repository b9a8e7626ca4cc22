"""Which connection a full listener closes for a newcomer: one policy for HAP and HDS.

A listener holds at most ``capacity`` connections. When a new one arrives at a full listener,
the oldest connection that has not yet proved its keys is closed to make room, taken from the
peer that holds the most such connections, so a flood from one host evicts its own sockets and
not a hub's on another host. Connections that proved their keys are never evicted for a
newcomer: when every slot holds one, the newcomer is refused.

Sans-IO: the adapter reports connects, verifications and closes (with ``now``) and acts on the
:class:`Admission` it gets back; the limiter never touches a socket. A flood evicts on every
connect, so :attr:`Admission.warn` is set for the first eviction and then every
``warn_every``-th, for the adapter to log at warning level only then.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Admission", "ConnectionLimiter"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Admission(Generic[K]):
    """The answer to a connect: admitted or not, and which connection to close for it."""

    admitted: bool
    evict: K | None = None  # close this one now; it is already forgotten by the limiter
    warn: bool = False  # log this eviction at warning level (the first, then every n-th)


@dataclass
class _Entry:
    peer: str | None
    opened_at: float
    verified: bool = False


class ConnectionLimiter(Generic[K]):
    """Counts a listener's connections and picks the one to evict when it is full."""

    def __init__(self, capacity: int, *, warn_every: int = 100) -> None:
        self.capacity = capacity
        self.warn_every = warn_every
        self.evictions = 0  # connections closed to make room, since start
        self._entries: dict[K, _Entry] = {}  # insertion order: oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def opened(self, key: K, peer: str | None, now: float) -> Admission[K]:
        """A new connection from ``peer``: admit it (perhaps evicting another) or refuse it."""
        victim: K | None = None
        if len(self._entries) >= self.capacity:
            victim = self._eviction_candidate()
            if victim is None:
                return Admission(admitted=False)
            del self._entries[victim]
            self.evictions += 1
        self._entries[key] = _Entry(peer, now)
        if victim is None:
            return Admission(admitted=True)
        return Admission(admitted=True, evict=victim, warn=(self.evictions - 1) % self.warn_every == 0)

    def verified(self, key: K) -> None:
        """``key`` proved its keys (or is past being evictable): never evict it for a newcomer."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.verified = True

    def closed(self, key: K) -> None:
        """``key`` is gone and frees its slot (idempotent)."""
        self._entries.pop(key, None)

    def _eviction_candidate(self) -> K | None:
        per_peer: dict[str | None, list[tuple[K, _Entry]]] = {}
        for key, entry in self._entries.items():
            if not entry.verified:
                per_peer.setdefault(entry.peer, []).append((key, entry))
        if not per_peer:
            return None
        busiest = max(per_peer.values(), key=lambda group: (len(group), -group[0][1].opened_at))
        return busiest[0][0]
