"""When to start ffmpeg again, and what to tell the user about it: a sans-IO core.

Why a core of its own: a down camera must never be restarted in a tight loop, and the delay
the log announces must be the delay that is kept. The schedule is a plain object fed ``now`` (monotonic
seconds) and run outcomes, tested with a fake clock; the asyncio adapter only sleeps until
:attr:`RestartSchedule.next_start_at`, which is the same number the log prints.

The rules:

* Exponential backoff, ``initial_s`` doubling up to ``maximum_s`` (1 s -> 60 s).
* Jitter: each delay is shortened by up to ``jitter`` (a fraction) at random, so cameras that
  dropped together (an NVR restart) do not all reconnect in the same instant. The delay never
  exceeds ``maximum_s`` and never falls below ``(1 - jitter) * initial_s``.
* A run that delivered media is healthy: the backoff starts again from ``initial_s`` (a camera
  that worked for an hour and dropped is retried after about a second).
* Outages, not attempts, are what the user hears about: the first failure after a healthy run
  opens an outage (one warning), later failures of the same outage are quiet unless the cause
  changes (refused -> 401 is news), and the first healthy run closes it (one line with the
  length of the outage and the number of attempts).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Recovery", "RestartSchedule", "RunEnd"]


@dataclass(frozen=True, slots=True)
class RunEnd:
    """What :meth:`RestartSchedule.run_ended` decided."""

    delay_s: float  # start the next run this much later...
    next_start_at: float  # ...at this monotonic time
    attempt: int  # failed runs in this outage, this one included (1 = the outage just began)
    outage_started: bool  # the first failure after a healthy run (or the first run ever)
    cause_changed: bool  # a later failure whose cause differs from the previous one
    outage_s: float  # since the outage began

    @property
    def worth_logging(self) -> bool:
        """One line per outage, plus one per change of cause."""
        return self.outage_started or self.cause_changed


@dataclass(frozen=True, slots=True)
class Recovery:
    """An outage ended: media flows again."""

    outage_s: float
    attempts: int
    last_cause: str | None


class RestartSchedule:
    """Backoff with jitter, reset by healthy runs, with outage bookkeeping (see module doc).

    Args:
        initial_s: the first delay after a failure.
        maximum_s: the cap.
        jitter: fraction (0..1) by which a delay may be shortened at random.
        rand: a source of floats in [0, 1); injectable for tests.
    """

    def __init__(self, initial_s: float = 1.0, maximum_s: float = 60.0, jitter: float = 0.2,
                 rand: Callable[[], float] = random.random) -> None:
        if not 0 < initial_s <= maximum_s:
            raise ValueError("need 0 < initial_s <= maximum_s")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self.initial_s, self.maximum_s, self.jitter = initial_s, maximum_s, jitter
        self._rand = rand
        self.failures = 0  # consecutive failed runs: the exponent
        self.next_start_at: float | None = None
        self._outage_since: float | None = None
        self._outage_attempts = 0
        self._last_cause: str | None = None

    @property
    def in_outage(self) -> bool:
        return self._outage_since is not None

    @property
    def outage_attempts(self) -> int:
        return self._outage_attempts

    def base_delay(self) -> float:
        """The delay before jitter for the next failure."""
        return min(self.maximum_s, self.initial_s * 2.0 ** min(self.failures, 60))

    def healthy(self, now: float) -> Recovery | None:
        """The current run delivered media. Resets the backoff; closes an open outage."""
        self.failures = 0
        if self._outage_since is None:
            return None
        recovery = Recovery(now - self._outage_since, self._outage_attempts, self._last_cause)
        self._outage_since = None
        self._outage_attempts = 0
        self._last_cause = None
        return recovery

    def run_ended(self, now: float, cause: str) -> RunEnd:
        """A run failed (ffmpeg exited, stalled, or never got going) because of ``cause``."""
        delay = min(self.maximum_s, self.base_delay() * (1.0 - self.jitter * self._rand()))
        self.failures += 1
        started = self._outage_since is None
        if started:
            self._outage_since = now
            self._outage_attempts = 0
        changed = not started and cause != self._last_cause
        self._outage_attempts += 1
        self._last_cause = cause
        self.next_start_at = now + delay
        assert self._outage_since is not None
        return RunEnd(delay, self.next_start_at, self._outage_attempts, started, changed, now - self._outage_since)

    def remaining(self, now: float) -> float:
        """Seconds until the next start is due (0 when due or when nothing is scheduled)."""
        if self.next_start_at is None:
            return 0.0
        return max(0.0, self.next_start_at - now)

    def reset(self) -> None:
        """Forget everything (the pipeline was stopped by the user)."""
        self.failures = 0
        self.next_start_at = None
        self._outage_since = None
        self._outage_attempts = 0
        self._last_cause = None
