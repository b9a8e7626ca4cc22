"""Stopping an ffmpeg child safely: the one way both the recording and the live runners do it.

SIGTERM first (ffmpeg then flushes its last fragment), SIGKILL after a grace period, always
reaped. The caller's reader tasks keep draining stdout/stderr meanwhile: a child blocked on a
full pipe would never exit. The whole sequence is shielded, so a cancelled caller (a camera
stopping, a test timing out) still leaves no zombie or orphan behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable
from typing import Any

__all__ = ["terminate_and_reap"]

READER_GRACE_S = 5.0


async def terminate_and_reap(
    proc: asyncio.subprocess.Process,
    readers: Iterable[asyncio.Task[Any]],
    *,
    grace_s: float,
    name: str,
    log: logging.Logger,
) -> None:
    tasks = list(readers)

    async def finish() -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace_s):
                    await proc.wait()
            except TimeoutError:
                log.warning("%s: ffmpeg ignored SIGTERM; killing it", name)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        # The pipes close when ffmpeg exits; give the readers a moment to see EOF.
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=READER_GRACE_S)
            for task in pending:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    inner = asyncio.get_running_loop().create_task(finish(), name=f"{name}:reap")
    try:
        await asyncio.shield(inner)
    except asyncio.CancelledError:
        await inner
        raise
