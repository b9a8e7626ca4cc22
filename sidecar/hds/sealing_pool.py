"""Sealing buffers shared by every camera's HDS listener, bounded in number.

A recording seals each fragment into one buffer that the socket then sends from
(``FrameEncryptor.seal_batch``). A buffer made ahead of time, every page already written, lets the
first recordings after a start (typically several hubs opening at once) seal without the kernel
faulting in and zeroing fresh memory while the hubs wait (docs/hds.md, "Sealing").

A camera needs such a buffer only while it records, so one reserved per camera would make that
memory grow with the camera count. The pool keeps at most ``limit`` idle buffers for all the
cameras that share it, which is enough for ``limit`` recordings starting in the same instant;
more cameras than that cost no more idle memory. A buffer is lent to one recording at a time
(:meth:`take`) and comes back only once the socket has sent every byte of it (:meth:`give`), so
nothing seals into memory that is still being sent.
"""

from __future__ import annotations

from typing import Final

from .frames import batch_bound, buffer_for

__all__ = ["DEFAULT_POOL_BUFFERS", "SealingPool"]

DEFAULT_POOL_BUFFERS: Final = 16
"""Idle sealing buffers kept for all cameras: as many recordings as may open in the same instant
without faulting in fresh memory."""


class SealingPool:
    """Idle sealing buffers for the cameras that share it: at most ``limit``, and at most one per
    camera that has reserved one (:meth:`reserve`), each large enough for the largest fragment any
    of them reserved for."""

    __slots__ = ("_idle", "_wanted", "limit")

    def __init__(self, limit: int = DEFAULT_POOL_BUFFERS) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self._idle: list[bytearray] = []
        self._wanted: dict[object, int] = {}

    @property
    def idle(self) -> int:
        """Buffers kept now, not lent to any recording."""
        return len(self._idle)

    @property
    def idle_bytes(self) -> int:
        """Bytes held by the idle buffers."""
        return sum(len(b) for b in self._idle)

    def _target(self) -> int:
        return min(self.limit, len(self._wanted))

    def _size(self) -> int:
        return max(self._wanted.values(), default=0)

    def reserve(self, owner: object, segment_bytes: int) -> None:
        """``owner`` (a camera's listener) will record segments of about ``segment_bytes``: make
        the buffers now, off any hub's clock, up to one per owner and at most ``limit``, each
        large enough for the largest segment asked for. Buffers lent to recordings do not count,
        so an owner asks again only when none of its recordings holds one."""
        self._wanted[owner] = max(segment_bytes, self._wanted.get(owner, 0))
        need = batch_bound(self._size())
        self._idle = [b for b in self._idle if len(b) >= need]  # too small for the new largest
        while len(self._idle) < self._target():
            self._idle.append(buffer_for(self._size()))

    def forget(self, owner: object) -> None:
        """``owner`` is gone (its listener closed): its share of the idle buffers goes too."""
        self._wanted.pop(owner, None)
        del self._idle[self._target():]

    def take(self) -> bytearray | None:
        """An idle buffer for a recording (the largest one), or None if none is left."""
        if not self._idle:
            return None
        largest = max(range(len(self._idle)), key=lambda i: len(self._idle[i]))
        return self._idle.pop(largest)

    def give(self, owner: object, buffer: bytearray | None) -> None:
        """A recording of ``owner`` is over and the socket has sent every byte of ``buffer``:
        keep it for the next one (``owner`` counts as one that wants a buffer). Beyond one per
        such owner, or ``limit``, the smallest idle buffer goes."""
        self._wanted.setdefault(owner, 0)
        if buffer is None:
            return
        self._idle.append(buffer)
        if len(self._idle) > self._target():
            del self._idle[min(range(len(self._idle)), key=lambda i: len(self._idle[i]))]
