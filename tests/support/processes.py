"""Child processes as psutil sees them: whether one has ended, and which ffmpeg a process runs."""

from __future__ import annotations

import psutil


def gone(pid: int | None) -> bool:
    """The process ``pid`` has exited: no such process any more, or a zombie not yet reaped."""
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def ffmpeg_children(pid: int | None = None, *, recursive: bool = False, running: bool = False) -> list[psutil.Process]:
    """The ffmpeg processes among ``pid``'s children (this process's by default), by name: a
    name that starts with ``ffmpeg``, so a copy-mode camera's ``ffmpeg-copy`` counts too.
    ``running`` leaves out zombies not yet reaped. A process that is gone, or exits while it is
    looked at, gives no children rather than an error."""
    try:
        children = psutil.Process(pid).children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if child.name().startswith("ffmpeg") and not (running and child.status() == psutil.STATUS_ZOMBIE):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found
