"""Writing the accessory's state file off the event loop, in order, nothing lost.

An atomic write ends with two ``fsync`` calls, and on a busy disk each can take tens of
milliseconds; on the event loop that would stall every connection the process serves. A
:class:`WriteBehind` takes the file's new content on the loop (serialising it is cheap) and
writes it in a worker thread shared by every state file of the process. Writes of one file
never overlap and never reorder: the newest content handed over is written last, and content
handed over while a write is under way is written after it (a burst of changes costs one more
write, not one each). :meth:`WriteBehind.drain` waits until everything handed over is on disk (a
server awaits it when it stops), and the worker is not a daemon thread, so the interpreter
finishes a write in flight before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..atomic_file import atomic_write
from ..worker_thread import WorkerThread

__all__ = ["WriteBehind"]

log = logging.getLogger(__name__)

_worker = WorkerThread("state-writer")


class WriteBehind:
    """The file at ``path``, written atomically (``write``) off the event loop, newest content last."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop,
                 write: Callable[[Path, bytes], None] = atomic_write) -> None:
        self.path = path
        self._loop = loop
        self._write = write
        self._lock = threading.Lock()
        self._pending: bytes | None = None
        self._queued = False  # a job for this file is queued or running: it will see what is pending
        self._idle: list[asyncio.Future[None]] = []  # drain() callers, woken when the job ends
        self.failures = 0

    def write(self, data: bytes) -> None:
        """Hand over the file's new content (on the loop's thread); it is written soon, in order."""
        with self._lock:
            self._pending = data
            start = not self._queued
            self._queued = True
        if start:
            _worker.submit(self._write_pending)

    async def drain(self) -> None:
        """Return once everything handed over so far is on disk (or its write failed and was logged)."""
        with self._lock:
            if not self._queued:
                return
            done = self._loop.create_future()
            self._idle.append(done)
        await done

    def _write_pending(self) -> None:
        while True:
            with self._lock:
                data = self._pending
                self._pending = None
                if data is None:
                    self._queued = False
                    waiting, self._idle = self._idle, []
                    break
            self._write_one(data)
        for future in waiting:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                self._loop.call_soon_threadsafe(_resolve, future)

    def _write_one(self, data: bytes) -> None:
        try:
            self._write(self.path, data)
        except OSError as exc:
            self.failures += 1
            log.error("cannot write %s: %s", self.path, exc.strerror or type(exc).__name__)
        except Exception:
            self.failures += 1
            log.exception("cannot write %s", self.path)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
