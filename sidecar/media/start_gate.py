"""How many ffmpeg may be starting at once in this process (one gate per event loop).

A sidecar with many cameras starts every camera's ffmpeg when it starts (or when a shared source
comes back). Starting is ffmpeg's costly moment: loading its libraries, connecting, probing the
source. A hundred of them in the same instant make every camera late and the event loop's own
work (HAP, recordings) wait for a CPU. The gate lets at most ``limit`` runs be *starting* at a
time: a run holds a slot from just before its spawn until its init segment arrived, the run
ended, or ``hold_s`` passed (a camera that is slow to answer does not keep the others waiting).
Those beyond the limit wait their turn in order, so starts are staggered, not refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable

__all__ = ["START_HOLD_S", "START_LIMIT", "StartGate", "start_gate", "take_start_slot"]

START_LIMIT = 8  # ffmpeg starting at once
START_HOLD_S = 2.0  # the longest one start holds its slot

_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StartGate] = weakref.WeakKeyDictionary()


class StartGate:
    """At most ``limit`` holders at once; each slot is given back by its release callable, or
    by itself after ``hold_s``."""

    def __init__(self, limit: int = START_LIMIT, hold_s: float = START_HOLD_S) -> None:
        self.limit = limit
        self.hold_s = hold_s
        self._free = asyncio.Semaphore(limit)
        self.starting = 0  # slots held now

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; return the callable that gives it back (once; later calls do nothing)."""
        await self._free.acquire()
        self.starting += 1
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def release() -> None:
            nonlocal timer
            if timer is None:
                return
            timer.cancel()
            timer = None
            self.starting -= 1
            self._free.release()

        timer = loop.call_later(self.hold_s, release)
        return release


def start_gate() -> StartGate:
    """The running event loop's gate (made on first use)."""
    loop = asyncio.get_running_loop()
    gate = _GATES.get(loop)
    if gate is None:
        gate = _GATES[loop] = StartGate()
    return gate


async def take_start_slot(stop_asked: asyncio.Event) -> Callable[[], None]:
    """A slot of the running loop's gate, or, when ``stop_asked`` is set first, nothing to give
    back (the run is then stopped before it spawns)."""
    taking = asyncio.ensure_future(start_gate().acquire())
    stop = asyncio.ensure_future(stop_asked.wait())
    try:
        await asyncio.wait({taking, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not taking.done():
            taking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await taking
    if taking.cancelled():
        return lambda: None
    return taking.result()
