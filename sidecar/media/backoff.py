"""The wait between two runs of a camera's recording ffmpeg: the asyncio face of the restart schedule.

:class:`~.restart.RestartSchedule` decides when the next run is due and whether a failure is
news; :class:`Backoff` sleeps until then and says so: the pipeline's state is ``BACKOFF``, the
camera layer gets a ``restarting`` (or ``failed``) event, and the log hears once per outage: a
warning when ffmpeg stops, another only when the cause changes, one line when media flows again,
and the attempts in between at debug level (docs/media.md §Supervision).

While the camera refuses connections the wait is cut short as soon as its port accepts a TCP
connection again (tried every ``reachability_poll_s``), so a camera that comes back records
again within seconds without an ffmpeg being started every few seconds meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .pipeline_config import PipelineConfig
from .pipeline_status import PipelineEvent, PipelineSignals, PipelineState
from .restart import RestartSchedule, RunEnd
from .stderr import Cause, CauseKind, seconds

__all__ = ["Backoff"]

log = logging.getLogger(__name__)


async def _accepts_connections(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether a TCP connect to the camera succeeds (it is closed at once, nothing is sent)."""
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Backoff:
    """Waits between runs as ``config``'s schedule says, and tells the user about outages.

    Args:
        config: the backoff timings, the reachability poll and the camera's name and source.
        clock: monotonic seconds.
        signals: the pipeline's state and event observer.
        interrupt: set to cut a wait short (stop, a restart request); never by the end of a run.
        stopping: whether the pipeline is stopping.
    """

    def __init__(self, config: PipelineConfig, clock: Callable[[], float], signals: PipelineSignals,
                 interrupt: asyncio.Event, stopping: Callable[[], bool]) -> None:
        self.schedule = RestartSchedule(config.backoff_initial_s, config.backoff_max_s, config.backoff_jitter)
        self._name = config.name
        self._cap_s = config.backoff_max_s
        self._endpoint = config.source.endpoint()
        self._poll_s = config.reachability_poll_s
        self._clock = clock
        self._signals = signals
        self._interrupt = interrupt
        self._stopping = stopping
        self._early_start = False  # the current run began early because the camera's port accepted again

    def media_flows(self, now: float) -> None:
        """The first fragment of a run: the run is healthy; an outage, if any, is over."""
        recovery = self.schedule.healthy(now)
        if recovery is not None:
            log.info("%s: ffmpeg is running again after %s s down (%d failed attempts)", self._name,
                     seconds(recovery.outage_s), recovery.attempts)

    async def wait(self, cause: Cause, exit_code: int | None) -> None:
        """A run failed because of ``cause``: say so, then sleep until the next run is due, unless
        interrupted (stop, restart request) or an unreachable camera accepts connections again."""
        end = self.schedule.run_ended(self._clock(), cause.text)
        self._signals.set_state(PipelineState.BACKOFF)
        self._signals.emit(PipelineEvent("failed" if cause.needs_user else "restarting", error=cause.text,
                                         exit_code=exit_code, restart_in_s=round(end.delay_s, 3)))
        self._log(end, cause)
        await self._sleep(end, cause)

    async def _sleep(self, end: RunEnd, cause: Cause) -> None:
        interrupt = self._interrupt
        endpoint, poll = self._endpoint, self._poll_s
        watch_port = cause.kind is CauseKind.UNREACHABLE and endpoint is not None and poll > 0
        # The attempt that just failed was itself refused, so the camera was down: the port
        # accepting again means it is back, even at the first poll (a camera restarting just as
        # an attempt failed is common; waiting for a second refusal then cost a whole back-off
        # of up to 60 s). Only when that attempt was already an early start that failed the same
        # way (the port accepts, yet ffmpeg is refused) must a refusal be seen while waiting, so
        # such a camera is retried on the schedule rather than at every poll.
        saw_refused = end.outage_started or not self._early_start
        self._early_start = False
        while not self._stopping() and not interrupt.is_set():
            remaining = end.next_start_at - self._clock()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, poll) if watch_port else remaining):
                    await interrupt.wait()
            if watch_port and not interrupt.is_set() and end.next_start_at - self._clock() > 0:
                assert endpoint is not None
                if await _accepts_connections(*endpoint):
                    if saw_refused:  # it was down and is back: start now
                        log.debug("%s: %s:%d accepts connections again; starting ffmpeg now", self._name, *endpoint)
                        self._early_start = True
                        return
                    watch_port = False  # reachable but ffmpeg failed: wait the full backoff
                else:
                    saw_refused = True

    def _log(self, end: RunEnd, cause: Cause) -> None:
        name, cap = self._name, seconds(self._cap_s)
        if end.outage_started:
            log.warning("%s: ffmpeg stopped: %s; restarting in %s s (then backing off up to %s s; "
                        "logged once per outage)", name, cause.text, seconds(end.delay_s), cap)
        elif end.cause_changed:
            log.warning("%s: still down after %s s (%d attempts), now: %s; next attempt in %s s", name,
                        seconds(end.outage_s), end.attempt, cause.text, seconds(end.delay_s))
        else:
            log.debug("%s: attempt %d failed: %s; next attempt in %s s", name, end.attempt, cause.text,
                      seconds(end.delay_s))
