"""Work a sans-IO HAP core hands to its adapter to run off the event loop.

Pair-setup's SRP steps cost tens of milliseconds of arithmetic each; done on the event loop
they would stall every camera the process serves. A core that meets such a step returns an
:class:`Offload` instead of its answer: ``compute`` is pure (it reads only values handed to it
and touches nothing the loop uses), so the adapter may run it in a worker thread; ``finish``
runs back on the loop with compute's result and the time, and gives the answer. The core
itself stays free of threads and I/O, and a connection waits for its answer before it reads
its next request, so the order of a connection's requests is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Offload"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Offload(Generic[T, R]):
    """``finish(compute(), now)`` is the answer; ``compute`` may run in another thread."""

    compute: Callable[[], T]
    finish: Callable[[T, float], R]

    def run_inline(self, now: float) -> R:
        """Both halves here and now (for callers that want the answer synchronously)."""
        return self.finish(self.compute(), now)
