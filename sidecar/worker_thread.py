"""One worker thread for short blocking jobs, started on demand and ended when idle.

The event loop hands it work that must not run on the loop (an fsync, a long computation in
small steps). Starting a thread is not free for the starting thread: ``Thread.start`` waits
until the new thread has run, and on a loaded machine that is a wait for a free CPU. So jobs
share one thread, which runs them in the order given and ends as soon as none is left: a burst
of work costs one thread start, and an idle process keeps no thread. The thread is not a daemon,
so a job in flight is finished before the interpreter exits.

No imports from the rest of the package: every layer may use it.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

__all__ = ["WorkerThread"]

log = logging.getLogger(__name__)


class WorkerThread:
    """Run jobs in order in one thread of its own, which exists only while there are jobs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._running = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` soon in the worker thread (after the jobs before it). It must not raise."""
        with self._lock:
            self._jobs.append(job)
            start = not self._running
            self._running = True
        if start:
            threading.Thread(target=self._serve, name=self.name).start()

    def _serve(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._running = False
                    return
                job = self._jobs.popleft()
            try:
                job()
            except Exception:  # a job's bug must not strand the jobs after it
                log.exception("%s: a job failed", self.name)
