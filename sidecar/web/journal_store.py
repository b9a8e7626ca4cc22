"""The event journal on disk, so "motion but no clip: why?" still has an answer after a restart.

One JSON file in the state directory (``events.json``), bounded like the journal itself (the
last :data:`~.journal.MAX_ENTRIES` entries per camera, none older than
:data:`~.journal.MAX_AGE_S`). Every write goes to a temporary file in the same directory that
is flushed to disk and renamed over the old one, so a crash leaves either the old or the new
journal, never half of one; the file is created with mode 0600 (controller ids and camera names
are nobody else's business). A file that cannot be read back (damaged, edited by hand, written
by a newer version) is renamed aside to ``events.json.damaged`` with one warning and the
journal starts empty: the sidecar never refuses to start over its diary.

Saving is debounced: the first change arms a timer of :data:`SAVE_DELAY_S`, and the JSON is
encoded and written in a worker thread so the event loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic_file import atomic_write
from .journal import EventJournal

__all__ = ["FILE_NAME", "SAVE_DELAY_S", "JournalStore"]

log = logging.getLogger(__name__)

FILE_NAME = "events.json"
FORMAT = 1
SAVE_DELAY_S = 1.0


class JournalStore:
    """Loads ``journal`` from ``path`` once and keeps the file up to date with it."""

    def __init__(self, journal: EventJournal, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.path = path
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._saving: asyncio.Task[None] | None = None
        self._dirty = False
        self.saves = 0
        self.save_failures = 0

    async def load(self) -> int:
        """Read the file into the journal; returns the entries restored. The file is read and
        parsed in a worker thread; the journal is filled in the event loop."""
        try:
            data = await asyncio.to_thread(_read, self.path)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("event journal %s cannot be read (%s): starting with an empty one", self.path,
                        exc.strerror or exc)
            return 0
        except (ValueError, RecursionError) as exc:
            return await self._set_aside(exc)
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not an event journal of this version")
            return self.journal.load(data["cameras"], self._clock())
        except (ValueError, KeyError, TypeError) as exc:
            return await self._set_aside(exc)

    async def _set_aside(self, exc: BaseException) -> int:
        aside = self.path.with_name(self.path.name + ".damaged")
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.replace, self.path, aside)
        log.warning("event journal %s is damaged (%s): moved aside to %s; starting with an empty one",
                    self.path, str(exc)[:120] or type(exc).__name__, aside.name)
        return 0

    def changed(self) -> None:
        """The journal changed: save it within :data:`SAVE_DELAY_S` (from the event loop)."""
        self._dirty = True
        if self._timer is None and self._saving is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (an event outside it): saved with the next change or at close
                return
            self._timer = loop.call_later(SAVE_DELAY_S, self._start_save)

    def _start_save(self) -> None:
        self._timer = None
        self._saving = asyncio.create_task(self._save(), name="journal-save")

    async def _save(self) -> None:
        try:
            while self._dirty:
                self._dirty = False
                data = {"format": FORMAT, "saved_at": self._clock(), "cameras": self.journal.dump(self._clock())}
                try:
                    await asyncio.to_thread(_write_atomically, self.path, data)
                    self.saves += 1
                except OSError as exc:
                    self.save_failures += 1
                    if self.save_failures == 1:
                        log.warning("event journal %s cannot be written (%s): events are kept in memory only",
                                    self.path, exc.strerror or exc)
                    return
        finally:
            self._saving = None

    async def close(self) -> None:
        """Write what is pending now (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._saving is not None:
            await asyncio.shield(self._saving)
        if self._dirty:
            self._saving = asyncio.create_task(self._save(), name="journal-save")
            await self._saving


def _read(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Encode, write to a private temporary file, flush to disk, rename over ``path``."""
    body = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
    atomic_write(path, body, temp=path.with_name(f".{path.name}.{os.getpid()}.tmp"), strict_dir_sync=False)
