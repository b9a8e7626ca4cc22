"""The local clip archive: every recording sent to a hub, also written as a playable MP4.

Users want their own copy of clips beside iCloud (docs/field-lessons.md §What users ask for); no other HKSV bridge keeps
one. A clip is exactly what the hub got: the init segment and the fragments actually sent, in
order, which is a valid fragmented MP4 that ffmpeg and browsers play. Files go to
``archive_dir/<camera>/<YYYY-MM-DD>/<HHMMSS>.mp4`` (written as a hidden ``.part`` file and
renamed when the recording ends, so a listed clip is always complete).

The relay must never wait for a disk. The event loop only puts references to the bytes on a
bounded queue (no copy, no syscall); one writer thread does every open, write, rename and
deletion. When the queue is full the clip being written is abandoned with one warning (a clip
with a hole would not play). When the disk is full, read-only or otherwise refuses a write,
archiving stops with one warning and recordings go on untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .retention import StoredClip, plan_retention

__all__ = ["ArchiveSink", "ArchivedClip", "ClipArchive", "ClipWriter"]

log = logging.getLogger(__name__)

QUEUE_ITEMS = 256  # about a minute of 4 s fragments for four cameras at once


@dataclass(frozen=True, slots=True)
class ArchivedClip:
    camera: str  # slug
    date: str
    name: str
    size: int
    mtime: float
    path: Path


@dataclass(slots=True)
class _Begin:
    clip: ClipWriter


@dataclass(slots=True)
class _Write:
    clip: ClipWriter
    data: bytes | bytearray | memoryview


@dataclass(slots=True)
class _End:
    clip: ClipWriter


_STOP = object()


class ClipWriter:
    """One recording's clip. Its methods are called on the event loop and never block."""

    def __init__(self, archive: ClipArchive, camera: str, started: float) -> None:
        self._archive = archive
        self.camera = camera
        self.started = started
        self.dropped = False  # set on the loop when the queue was full: the clip is abandoned
        self.failed = False  # set by the writer thread
        self.bytes = 0
        # Writer-thread side
        self.file: int | None = None
        self.part: Path | None = None
        self.final: Path | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue media bytes exactly as sent to the hub (init segment first)."""
        if self.dropped or self._archive.disabled:
            return
        if not self._archive._put(_Write(self, data)):
            self.dropped = True
            self._archive._put_end(self)
            return
        self.bytes += len(data)

    def end(self) -> None:
        if not self.dropped:
            self._archive._put_end(self)


class ClipArchive:
    """The writer thread, its bounded queue, retention and the index the status page lists."""

    def __init__(self, root: Path, *, max_age_s: float, max_bytes: int, clock: Callable[[], float] = time.time,
                 queue_items: int = QUEUE_ITEMS) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_items)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._index: dict[str, list[ArchivedClip]] = {}
        self.disabled = False
        self._warned_behind = False
        self.written = 0  # clips completed since start
        self.dropped = 0  # clips abandoned because the writer fell behind

    # -- life cycle (event loop) --------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        done = self._done

        def run() -> None:
            try:
                self._run()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(done.set)

        self._thread = threading.Thread(target=run, name="clip-archive", daemon=True)
        self._thread.start()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """End the thread; clips still being recorded are discarded (they are incomplete)."""
        if self._thread is None:
            return
        while True:
            try:
                self._queue.put_nowait(_STOP)
                break
            except queue.Full:  # stopping anyway: forget pending work, the thread discards open clips
                with contextlib.suppress(queue.Empty):
                    while True:
                        self._queue.get_nowait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout_s)
        self._thread = None

    def begin(self, camera: str) -> ClipWriter | None:
        """A recording opened: a clip for it, or None while archiving is off."""
        if self.disabled or self._thread is None:
            return None
        clip = ClipWriter(self, camera, self._clock())
        if not self._put(_Begin(clip)):
            return None
        return clip

    def _put(self, item: object) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            if not self._warned_behind:
                self._warned_behind = True
                log.warning("clip archive: the disk is not keeping up; dropping clips until it does "
                            "(recordings to hubs are not affected)")
            self.dropped += 1
            return False

    def _put_end(self, clip: ClipWriter) -> None:
        # An end that does not fit marks the clip dropped: the (busy) thread discards it after
        # the item it is working on (see _run).
        if not self._put(_End(clip)):
            clip.dropped = True

    # -- listing (any thread) -----------------------------------------------------------------
    def clips(self, camera: str) -> list[ArchivedClip]:
        with self._lock:
            return sorted(self._index.get(camera, ()), key=lambda c: c.mtime, reverse=True)

    def clip_path(self, camera: str, date: str, name: str) -> Path | None:
        with self._lock:
            for clip in self._index.get(camera, ()):
                if clip.date == date and clip.name == name:
                    return clip.path
        return None

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        open_clips: set[ClipWriter] = set()
        try:
            self._scan()
            self._apply_retention()
        except OSError as exc:
            self._disable(exc)
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            try:
                if isinstance(item, _Begin):
                    self._open(item.clip)
                    open_clips.add(item.clip)
                elif isinstance(item, _Write):
                    self._write(item.clip, item.data)
                elif isinstance(item, _End):
                    open_clips.discard(item.clip)
                    self._finish(item.clip)
            except OSError as exc:
                clip = getattr(item, "clip", None)
                if isinstance(clip, ClipWriter):
                    clip.failed = True
                    self._discard(clip)
                self._disable(exc)
            for clip in [c for c in open_clips if c.dropped and c.file is not None]:
                open_clips.discard(clip)
                self._discard(clip)
        for clip in open_clips:
            self._discard(clip)

    def _disable(self, exc: OSError) -> None:
        if self.disabled:
            return
        self.disabled = True
        why = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
               errno.EACCES: "permission denied", errno.EDQUOT: "the disk quota is exceeded"}.get(
                   exc.errno or 0, exc.strerror or type(exc).__name__)
        log.warning("clip archive: %s (%s); archiving stopped, recordings to hubs go on", why, self.root)

    def _open(self, clip: ClipWriter) -> None:
        if self.disabled or clip.dropped:
            return
        stamp = time.localtime(clip.started)
        folder = self.root / clip.camera / time.strftime("%Y-%m-%d", stamp)
        folder.mkdir(parents=True, exist_ok=True)
        base = time.strftime("%H%M%S", stamp)
        name, n = f"{base}.mp4", 1
        while (folder / name).exists() or (folder / f".{name}.part").exists():
            n += 1
            name = f"{base}-{n}.mp4"
        clip.final = folder / name
        clip.part = folder / f".{name}.part"
        clip.file = os.open(clip.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)

    def _write(self, clip: ClipWriter, data: bytes | bytearray | memoryview) -> None:
        if clip.file is None or clip.dropped:
            return
        view = memoryview(data)
        while view:
            written = os.write(clip.file, view)
            view = view[written:]

    def _finish(self, clip: ClipWriter) -> None:
        if clip.file is None or clip.part is None or clip.final is None:
            return
        if clip.dropped or clip.bytes == 0:
            self._discard(clip)
            return
        os.close(clip.file)
        clip.file = None
        os.replace(clip.part, clip.final)
        st = clip.final.stat()
        record = ArchivedClip(clip.camera, clip.final.parent.name, clip.final.name, st.st_size, st.st_mtime,
                              clip.final)
        with self._lock:
            self._index.setdefault(clip.camera, []).append(record)
        self.written += 1
        self._warned_behind = False  # caught up: warn again if it falls behind later
        log.info("clip archive: %s (%d bytes)", clip.final, st.st_size)
        self._apply_retention()

    def _discard(self, clip: ClipWriter) -> None:
        if clip.file is not None:
            with contextlib.suppress(OSError):
                os.close(clip.file)
            clip.file = None
        if clip.part is not None:
            with contextlib.suppress(OSError):
                clip.part.unlink()

    def _scan(self) -> None:
        found: dict[str, list[ArchivedClip]] = {}
        if self.root.is_dir():
            for path in self.root.glob("*/*/*.mp4"):
                st = path.stat()
                found.setdefault(path.parent.parent.name, []).append(
                    ArchivedClip(path.parent.parent.name, path.parent.name, path.name, st.st_size, st.st_mtime, path))
        else:
            self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._index = found

    def _apply_retention(self) -> None:
        with self._lock:
            everything = [c for clips in self._index.values() for c in clips]
        doomed = plan_retention([StoredClip(c.path, c.mtime, c.size) for c in everything], now=self._clock(),
                                max_age_s=self.max_age_s, max_bytes=self.max_bytes)
        gone = set()
        for victim in doomed:
            with contextlib.suppress(FileNotFoundError):
                victim.path.unlink()
            gone.add(victim.path)
            with contextlib.suppress(OSError):
                victim.path.parent.rmdir()  # only succeeds once the day's folder is empty
        if gone:
            with self._lock:
                for camera, clips in self._index.items():
                    self._index[camera] = [c for c in clips if c.path not in gone]
            log.info("clip archive: retention removed %d clip(s)", len(gone))


class ArchiveSink:
    """One camera's recording sink (``Camera.recording_sinks``): each recording becomes a clip."""

    def __init__(self, archive: ClipArchive, camera: str) -> None:
        self._archive = archive
        self._camera = camera
        self._clip: ClipWriter | None = None

    def begin(self, stream_id: int, init: bytes | bytearray | memoryview) -> None:
        if self._clip is not None:  # a previous recording that never ended: close it first
            self._clip.end()
        self._clip = self._archive.begin(self._camera)
        if self._clip is not None:
            self._clip.write(init)

    def write(self, fragment: bytes | bytearray | memoryview) -> None:
        if self._clip is not None:
            self._clip.write(fragment)

    def end(self, event: object = None) -> None:
        if self._clip is not None:
            self._clip.end()
            self._clip = None
