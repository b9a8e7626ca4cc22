"""Keep the C heap's freed memory for reuse, so each new fMP4 fragment does not fault in fresh pages.

Every camera's reader allocates a buffer of the fragment's size (about 1 MB at 2 Mbps, one per
4 s) and frees the oldest one its prebuffer drops. glibc serves blocks that large with ``mmap``
and adjusts the threshold as blocks are freed, and it gives the heap's free top back to the
kernel past a threshold twice that size; with fragments of varying sizes from many cameras the
process keeps mapping and unmapping, and the kernel zero-fills and faults in each new buffer
page by page. At 128 cameras that was most of the sidecar's CPU between recordings
(``benchmarks/RESULTS.md``, "Page faults per fragment"). Fixing both thresholds (``mallopt``,
documented in glibc's manual and mallopt(3)) keeps freed blocks in the heap for the next
fragment, at the price of the heap not shrinking below its high-water mark (a few per cent of
the sidecar's memory at 128 cameras).

The price shows in a long run: the heap keeps what it once held, and fragments of many sizes
leave free holes in it that it never gives back. A 60-minute soak with eight cameras saw the C
heap's free memory grow from 10 to 41 MiB while what the program held stayed at 55-66 MiB
(benchmarks/RESULTS.md, "The soak's RSS"). So the command also gives the free pages back once a
minute (:func:`give_back_free_memory_every`, glibc's documented ``malloc_trim``, which also
releases whole free pages inside the heap), off the event loop: a few milliseconds for tens of
megabytes, and a fragment that reuses such memory faults in at most what was free at that instant,
once a minute, not every fragment every time.

Only the ``hksv-sidecar`` command calls them: a program that embeds :class:`sidecar.App` keeps its
own allocator settings. No imports from the rest of the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
from collections.abc import AsyncIterator

__all__ = ["GIVE_BACK_EVERY_S", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "give_back_free_memory",
           "give_back_free_memory_every", "giving_back_free_memory", "keep_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 16 * 1024 * 1024
"""Blocks below this come from the heap: every fragment buffer, whatever the camera's bitrate."""
TRIM_THRESHOLD = 64 * 1024 * 1024
"""The heap's free top is given back to the kernel only past this."""
GIVE_BACK_EVERY_S = 60.0
"""How often the command gives the heap's free pages back (:func:`give_back_free_memory_every`)."""


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # not a glibc system (musl, macOS): no such name
        return False


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; False (and nothing done) elsewhere."""
    if not _is_glibc():
        return False
    try:
        libc = ctypes.CDLL(None)
        done = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                    and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    except (OSError, AttributeError):
        return False
    if not done:
        log.debug("mallopt refused the heap thresholds; glibc's defaults stay")
    return done


def give_back_free_memory() -> bool:
    """Give the heap's free pages back to the kernel (``malloc_trim(0)``: the free top of every
    arena and whole free pages inside them); whether anything was given. False elsewhere than
    glibc. It takes the allocator's locks, not the interpreter's: run it off the event loop."""
    if not _is_glibc():
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


async def give_back_free_memory_every(seconds: float = GIVE_BACK_EVERY_S) -> None:
    """Call :func:`give_back_free_memory` every ``seconds`` in a worker thread, until cancelled."""
    if not _is_glibc():
        return
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(give_back_free_memory)


@contextlib.asynccontextmanager
async def giving_back_free_memory(seconds: float = GIVE_BACK_EVERY_S) -> AsyncIterator[None]:
    """:func:`give_back_free_memory_every` for as long as the ``async with`` block runs: the
    command's application and a parent's control channel each run inside one, and the task
    ends with the block however it ends."""
    task = asyncio.create_task(give_back_free_memory_every(seconds), name="give back free memory")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
