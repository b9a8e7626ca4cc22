"""Writing a private file so that a crash leaves the old one or the new one, never half of one.

The accessory state (keys, pairings) and the event journal are both written this way: to a
temporary file in the same directory, created with mode 0600 (what they hold is nobody else's
business), flushed to disk, renamed over the old file, and the directory flushed so the rename
itself survives a power cut.

No imports from the rest of the package: every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path, data: bytes, *, temp: Path | None = None, strict_dir_sync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600.

    ``temp``: the temporary file's path (default: a fresh ``.<name>.<8 random characters>``
    next to ``path``). ``strict_dir_sync``: whether failing to flush the directory is an
    error (else the file is written and the rename merely may not be on disk yet).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if temp is None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        temp = Path(name)
    else:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if strict_dir_sync:
        _sync_dir(path.parent)
    else:
        with contextlib.suppress(OSError):
            _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
