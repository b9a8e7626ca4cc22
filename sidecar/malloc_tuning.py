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

Only the ``hksv-sidecar`` command calls it: a program that embeds :class:`sidecar.App` keeps its
own allocator settings. No imports from the rest of the package.
"""

from __future__ import annotations

import ctypes
import logging
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 16 * 1024 * 1024
"""Blocks below this come from the heap: every fragment buffer, whatever the camera's bitrate."""
TRIM_THRESHOLD = 64 * 1024 * 1024
"""The heap's free top is given back to the kernel only past this."""


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
