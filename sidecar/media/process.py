"""Starting and stopping ffmpeg children: the only place the sidecar spawns or reaps one.

Spawning (:func:`spawn`): children must die with the sidecar, even when it is SIGKILLed, at
once rather than whenever they next write. Linux's ``PR_SET_PDEATHSIG`` does that, but it has to
be set *in the child*. Python's ``preexec_fn`` would run Python code between fork and exec,
which is unsafe in a process with threads (asyncio's executor, zeroconf, aiohttp's resolver):
a lock held by another thread at fork time stays locked forever in the child, and
``preexec_fn`` also forces the slow fork path. Instead the child execs util-linux's
``setpriv --pdeathsig KILL -- ffmpeg ...``: a C program that sets the flag and execs ffmpeg
(same pid, the flag survives exec), so nothing but the kernel and libc runs in the forked
child. ``setpriv`` is in util-linux, which is Essential in Debian, so every Debian machine and
image has it. The death signal is tied to the *thread* that forked the child: children are
started off the event loop by one spawner thread that lives while any of them does
(:mod:`.child`). Without ``setpriv`` (another OS) we spawn ffmpeg directly and rely on SIGPIPE
on its next write to our closed pipes.

Stopping (:func:`terminate_and_reap`): SIGTERM first (ffmpeg then flushes its last fragment),
SIGKILL after a grace period, always reaped. The caller's reader tasks keep draining
stdout/stderr meanwhile: a child blocked on a full pipe would never exit. The whole sequence is
shielded, so a cancelled caller (a camera stopping, a test timing out) still leaves no zombie or
orphan behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
from collections.abc import Iterable, Sequence
from typing import Any

from .child import Child, start_child

__all__ = ["FfmpegNotFound", "death_signal_wrapper", "spawn", "terminate_and_reap"]

READER_GRACE_S = 5.0


class FfmpegNotFound(OSError):
    """The ffmpeg binary does not exist or is not executable (the message names it)."""


@functools.lru_cache(maxsize=1)
def death_signal_wrapper() -> tuple[str, ...]:
    """The argv prefix that makes a child die with us (empty if the OS has no way)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not os.path.exists("/proc/self"):
        return ()
    return (setpriv, "--pdeathsig", "KILL", "--")


async def spawn(
    argv: Sequence[str],
    *,
    stdin: int | None = asyncio.subprocess.DEVNULL,
    stdout: int | None = asyncio.subprocess.PIPE,
    stderr: int | None = asyncio.subprocess.PIPE,
    pass_fds: Sequence[int] = (),
    limit: int = 1 << 16,
    direct_stdout: bool = False,
) -> Child:
    """Start ``argv`` (``argv[0]`` is ffmpeg) as a child that dies with the sidecar.

    ``pass_fds`` are inherited by ffmpeg at the same numbers (for ``pipe:<fd>`` outputs); the
    caller still owns them and should close its copies of the child's ends after this returns.
    Raises :class:`FfmpegNotFound` when the binary is missing, ``OSError`` for other failures.
    """
    if not argv:
        raise ValueError("empty argv")
    binary = shutil.which(argv[0])
    if binary is None:
        raise FfmpegNotFound(f"ffmpeg not found: {argv[0]!r} is not an executable file (install ffmpeg or "
                             "set the ffmpeg path)")
    return await start_child(
        (*death_signal_wrapper(), binary, *argv[1:]),
        stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=tuple(pass_fds), limit=limit,
        direct_stdout=direct_stdout,
    )


async def terminate_and_reap(
    proc: Child,
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
