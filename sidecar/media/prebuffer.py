"""Sans-IO prebuffer: a ring of recent fragments per camera, plus bounded live subscriptions.

A hub asks for recordings that start *before* the motion event (``prebufferLength``, 4-8 s), so
the newest fragments of the current ffmpeg run are kept in a ring holding what that request
reaches, capped in bytes. Each ffmpeg run is a *generation*: its init segment and its fragments
only make sense together (timestamps restart at 0, SPS/PPS may change: docs/field-lessons.md #9),
so a new init segment empties the ring and closes every live subscription of the old generation.

Nothing here sleeps, awaits or reads a clock: ``now`` (monotonic seconds) is passed in. A
subscription's only link to the async world is an optional ``on_ready`` callback, which the
asyncio side (:class:`sidecar.media.prebuffer_subscription.PrebufferSubscription`) uses to wake its waiter.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .segments import Fragment, InitSegment

__all__ = [
    "KEYFRAME_SEARCH_S",
    "Prebuffer",
    "PrebufferNotReady",
    "PrebufferSnapshot",
    "StoredFragment",
    "Subscription",
    "SubscriptionEnd",
]

KEYFRAME_SEARCH_S = 8.0
"""How much older media the ring keeps, at most, while it cannot yet serve its request from a
keyframe (a source whose fragments do not start on one): beyond that, fragments go by age."""


class SubscriptionEnd(enum.Enum):
    """Why a live subscription ended (not an HDS reason: camera/recording/session.py maps it to one)."""

    SLOW_CONSUMER = "slow-consumer"  # its queue hit the bound: the hub is not keeping up
    NEW_GENERATION = "new-generation"  # ffmpeg restarted; the old init segment is void
    STOPPED = "stopped"  # the pipeline stopped (or the source went away and was reset)
    CLOSED = "closed"  # the consumer closed it


class PrebufferNotReady(Exception):
    """No init segment (or no keyframe-started fragment) yet: the pipeline is still warming up."""


@dataclass(frozen=True, slots=True)
class StoredFragment:
    """A fragment with the monotonic time it arrived, as kept in the ring."""

    fragment: Fragment
    received_at: float


@dataclass(frozen=True, slots=True)
class PrebufferSnapshot:
    """Init segment and the fragments covering the requested span, oldest first.

    The first fragment starts on a keyframe. ``duration_s`` is the media duration of
    ``fragments`` (it may exceed the requested span by up to one GOP, never fall short unless
    the ring holds less).
    """

    generation: int
    init: InitSegment
    fragments: tuple[Fragment, ...]
    received_at: tuple[float, ...] = ()  # when each of ``fragments`` arrived (monotonic)

    @property
    def duration_s(self) -> float:
        return sum(f.duration_s for f in self.fragments)

    @property
    def size(self) -> int:
        return len(self.init.data) + sum(f.size for f in self.fragments)


class Subscription:
    """One consumer's bounded queue of live fragments (sans-IO core).

    Created by :meth:`Prebuffer.subscribe`. The queue starts with the init segment and the
    prebuffer snapshot, then receives every new fragment of the same generation. If more than
    ``max_pending`` fragments (or ``max_pending_bytes``) wait unread, the subscription is closed
    with :attr:`SubscriptionEnd.SLOW_CONSUMER` and its queue is dropped at once, so a stalled hub can
    never make memory grow (docs/field-lessons.md #8).
    """

    def __init__(
        self,
        prebuffer: Prebuffer,
        generation: int,
        max_pending: int,
        max_pending_bytes: int,
    ) -> None:
        self._prebuffer: Prebuffer | None = prebuffer
        self.generation = generation
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self._queue: deque[InitSegment | Fragment] = deque()
        self._queued_bytes = 0
        self._queued_fragments = 0
        self.close_reason: SubscriptionEnd | None = None
        #: When each fragment of the starting snapshot arrived (monotonic), oldest first.
        self.backlog_received_at: tuple[float, ...] = ()
        #: Called (synchronously) whenever an item is queued or the subscription closes.
        self.on_ready: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    @property
    def pending(self) -> int:
        """Fragments waiting to be read."""
        return self._queued_fragments

    @property
    def pending_bytes(self) -> int:
        return self._queued_bytes

    def pop(self) -> InitSegment | Fragment | None:
        """Next item, or ``None`` if the queue is empty (check :attr:`closed` then)."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        if isinstance(item, Fragment):
            self._queued_fragments -= 1
            self._queued_bytes -= item.size
        else:
            self._queued_bytes -= len(item.data)
        return item

    def close(self, reason: SubscriptionEnd = SubscriptionEnd.CLOSED) -> None:
        """Close (idempotent). Items already queued stay readable unless the reason is
        :attr:`SubscriptionEnd.SLOW_CONSUMER` or :attr:`SubscriptionEnd.NEW_GENERATION`, where they would
        only waste memory or be wrong."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        if reason in (SubscriptionEnd.SLOW_CONSUMER, SubscriptionEnd.NEW_GENERATION):
            self._queue.clear()
            self._queued_bytes = self._queued_fragments = 0
        if self._prebuffer is not None:
            self._prebuffer._forget(self)
            self._prebuffer = None
        self._wake()

    def _put(self, item: InitSegment | Fragment) -> None:
        if self.close_reason is not None:
            return
        self._queue.append(item)
        if isinstance(item, Fragment):
            self._queued_fragments += 1
            self._queued_bytes += item.size
            if self._queued_fragments > self.max_pending or self._queued_bytes > self.max_pending_bytes:
                self.close(SubscriptionEnd.SLOW_CONSUMER)
                return
        else:
            self._queued_bytes += len(item.data)
        self._wake()

    def _wake(self) -> None:
        if self.on_ready is not None:
            self.on_ready()


class Prebuffer:
    """Ring of the newest fragments of the current generation: what a request reaches, capped.

    Args:
        serve_ms: the longest request (``prebuffer_ms``) the ring must serve in full. It keeps
            exactly the fragments :meth:`fragments_since` reaches for it: the newest and the
            fewest before it that cover it and start on a keyframe. With 4 s keyframe-started
            fragments and the 4 s hubs select, that is the newest fragment alone; anything
            older is memory no hub is ever sent (1 MB per camera per 4 s at 2 Mbps). Until a
            keyframe is in reach, at most :data:`KEYFRAME_SEARCH_S` more is kept.
        max_bytes: hard cap whatever the durations say (a broken source with zero-length
            fragments must not grow memory).
        max_fragments: another hard cap, for the same reason.
        stale_after_s: fragments that arrived longer ago than the requested span plus this
            slack are not served: after a stall they no longer describe "the last N seconds".
    """

    def __init__(
        self,
        *,
        serve_ms: int = 8000,
        max_bytes: int = 32 * 1024 * 1024,
        max_fragments: int = 64,
        stale_after_s: float = 8.0,
    ) -> None:
        self.serve_ms = serve_ms
        self.max_bytes = max_bytes
        self.max_fragments = max_fragments
        self.stale_after_s = stale_after_s
        self.generation = 0
        self.init: InitSegment | None = None
        self._ring: deque[StoredFragment] = deque()
        self._bytes = 0
        self._duration = 0.0
        self._subscribers: list[Subscription] = []
        self.last_fragment_at: float | None = None

    # -- producer side (the supervisor) ------------------------------------------------------

    def start_generation(self, init: InitSegment, now: float) -> int:
        """A new ffmpeg run produced ``init``: drop the old fragments and subscribers.

        Returns the new generation number (strictly increasing from 1).
        """
        self.reset(SubscriptionEnd.NEW_GENERATION)
        self.generation += 1
        self.init = init
        return self.generation

    def reset(self, reason: SubscriptionEnd = SubscriptionEnd.STOPPED) -> None:
        """Forget the init segment and every fragment; close all subscriptions with ``reason``."""
        self.init = None
        self._ring.clear()
        self._bytes = 0
        self._duration = 0.0
        self.last_fragment_at = None
        for sub in list(self._subscribers):
            sub.close(reason)
        self._subscribers.clear()

    def push(self, fragment: Fragment, now: float) -> None:
        """Append a fragment of the current generation, evict old ones, feed subscribers."""
        if self.init is None:
            raise PrebufferNotReady("push before start_generation")
        self._ring.append(StoredFragment(fragment, now))
        self._bytes += fragment.size
        self._duration += fragment.duration_s
        self.last_fragment_at = now
        # Evict what a request for serve_ms no longer reaches, or the oldest while a hard cap
        # (bytes, count, or age while no keyframe is in reach) is exceeded.
        start, covered = self._walk(self.serve_ms)
        for _ in range(start if covered and start is not None else 0):
            self._evict()
        limit_s = self.serve_ms / 1000 + KEYFRAME_SEARCH_S
        while len(self._ring) > 1 and (
            self._duration - self._ring[0].fragment.duration_s >= limit_s
            or self._bytes > self.max_bytes
            or len(self._ring) > self.max_fragments
        ):
            self._evict()
        for sub in list(self._subscribers):
            sub._put(fragment)

    def _walk(self, ms: int, cutoff: float = float("-inf")) -> tuple[int | None, bool]:
        """The walk that serves a request for ``ms``: back from the newest fragment (stopping at
        one that arrived before ``cutoff``) until the span covers ``ms`` at a keyframe-started
        fragment. Returns that fragment's index in the ring (else the oldest keyframe-started one
        reached, or None if none was) and whether ``ms`` was covered."""
        span = 0.0
        start: int | None = None
        for index in range(len(self._ring) - 1, -1, -1):
            stored = self._ring[index]
            if stored.received_at < cutoff:
                break
            span += stored.fragment.duration_s
            if stored.fragment.keyframe:
                start = index
                if span * 1000 >= ms:
                    return start, True
        return start, False

    def _evict(self) -> None:
        old = self._ring.popleft().fragment
        self._bytes -= old.size
        self._duration -= old.duration_s

    # -- consumer side (the camera layer) ----------------------------------------------------

    @property
    def bytes(self) -> int:
        """Bytes held by the ring (fragments only)."""
        return self._bytes

    @property
    def duration_s(self) -> float:
        """Media seconds held by the ring."""
        return self._duration

    @property
    def fragment_count(self) -> int:
        return len(self._ring)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def fragments(self) -> tuple[Fragment, ...]:
        """Everything in the ring, oldest first (for diagnostics and tests)."""
        return tuple(s.fragment for s in self._ring)

    def ready(self, ms: int, now: float) -> bool:
        """True if :meth:`fragments_since` can serve ``ms`` milliseconds in full right now."""
        snap = self.fragments_since(ms, now)
        return snap is not None and snap.duration_s * 1000 >= ms - 1

    def fragments_since(self, ms: int, now: float) -> PrebufferSnapshot | None:
        """Init segment + the newest fragments covering at least ``ms`` milliseconds.

        Walks back from the newest fragment until the span is covered, then further back to the
        nearest keyframe-started fragment, so the result always starts on a keyframe. Returns
        ``None`` when there is no init segment or no usable (fresh, keyframe-started) fragment;
        the result may cover less than ``ms`` while the ring is still filling.
        """
        if self.init is None or not self._ring:
            return None
        start, _ = self._walk(ms, now - (ms / 1000.0 + self.stale_after_s))
        if start is None:
            return None
        kept = tuple(itertools.islice(self._ring, start, None))
        return PrebufferSnapshot(self.generation, self.init, tuple(s.fragment for s in kept),
                                 tuple(s.received_at for s in kept))

    def subscribe(
        self,
        ms: int,
        now: float,
        *,
        max_pending: int = 16,
        max_pending_bytes: int = 16 * 1024 * 1024,
        allow_empty: bool = False,
    ) -> Subscription:
        """Open a live subscription: init, the last ``ms`` of fragments, then every new one.

        The bound covers the prebuffer snapshot as well, so it must be large enough for it
        (16 fragments is 64 s of 4 s fragments; the default 16 MiB is 64 s at 2 Mbps).
        ``allow_empty``: a run that has its init segment but no keyframe-started fragment yet
        is good enough (the recording waits for the first keyframe itself); the subscription
        then starts with the init segment alone. :attr:`Subscription.backlog_received_at`
        says when each fragment of the snapshot arrived.

        Raises:
            PrebufferNotReady: no init segment (or, unless ``allow_empty``, no keyframe-started
            fragment) yet.
        """
        snap = self.fragments_since(ms, now)
        if snap is None:
            if not allow_empty or self.init is None:
                raise PrebufferNotReady("no init segment or keyframe fragment yet")
            snap = PrebufferSnapshot(self.generation, self.init, ())
        sub = Subscription(self, self.generation, max_pending, max_pending_bytes)
        sub.backlog_received_at = snap.received_at
        self._subscribers.append(sub)
        sub._put(snap.init)
        for fragment in snap.fragments:
            sub._put(fragment)
        return sub

    def _forget(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
