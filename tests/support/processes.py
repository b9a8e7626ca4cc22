"""Whether a child process a test started has ended, as psutil sees it."""

from __future__ import annotations

import psutil


def gone(pid: int | None) -> bool:
    """The process ``pid`` has exited: no such process any more, or a zombie not yet reaped."""
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
