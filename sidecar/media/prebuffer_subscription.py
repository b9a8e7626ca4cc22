"""Asyncio face of a prebuffer :class:`~sidecar.media.prebuffer.Subscription`.

The sans-IO subscription owns the bounded queue and the close reason; this wrapper only turns
"an item was queued" into an awaitable. It holds no queue of its own, so it adds no buffering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType

from .prebuffer import Subscription, SubscriptionEnd
from .segments import Fragment, InitSegment

__all__ = ["PrebufferSubscription", "SubscriptionClosed"]


class SubscriptionClosed(Exception):
    """The live subscription ended; ``reason`` says why (slow consumer, new generation, stop)."""

    def __init__(self, reason: SubscriptionEnd) -> None:
        super().__init__(reason.value)
        self.reason = reason


class PrebufferSubscription:
    """Await the init segment, the prebuffer fragments, then live fragments, in order.

    Use as an async iterator (it ends when the subscription closes; read :attr:`close_reason`)
    or call :meth:`get` (raises :class:`SubscriptionClosed`). Always close it (``async with``
    or :meth:`close`) so the prebuffer stops feeding it.
    """

    def __init__(self, core: Subscription) -> None:
        self._core = core
        self._event = asyncio.Event()
        core.on_ready = self._event.set
        self._event.set()

    @property
    def generation(self) -> int:
        return self._core.generation

    @property
    def close_reason(self) -> SubscriptionEnd | None:
        return self._core.close_reason

    @property
    def backlog_received_at(self) -> tuple[float, ...]:
        """When each fragment of the starting snapshot arrived (monotonic), oldest first."""
        return self._core.backlog_received_at

    @property
    def pending(self) -> int:
        return self._core.pending

    def get_nowait(self) -> InitSegment | Fragment | None:
        """Next item if one is queued, else ``None``. Raises :class:`SubscriptionClosed` once
        closed and drained."""
        item = self._core.pop()
        if item is None and self._core.close_reason is not None:
            raise SubscriptionClosed(self._core.close_reason)
        return item

    async def get(self) -> InitSegment | Fragment:
        """Next item; waits for it. Raises :class:`SubscriptionClosed` once closed and drained."""
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            self._event.clear()
            await self._event.wait()

    def close(self, reason: SubscriptionEnd = SubscriptionEnd.CLOSED) -> None:
        """Stop receiving (idempotent)."""
        self._core.close(reason)

    def __aiter__(self) -> AsyncIterator[InitSegment | Fragment]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[InitSegment | Fragment]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return

    async def __aenter__(self) -> PrebufferSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
