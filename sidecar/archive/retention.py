"""Which archived clips to delete (pure): older than the age limit, then the oldest beyond the size cap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StoredClip", "plan_retention"]


@dataclass(frozen=True, slots=True)
class StoredClip:
    path: Path
    mtime: float  # wall clock, seconds
    size: int


def plan_retention(clips: Sequence[StoredClip], *, now: float, max_age_s: float, max_bytes: int) -> list[StoredClip]:
    """The clips to delete, oldest first: every clip older than ``max_age_s``, then the oldest of
    the rest until what remains fits in ``max_bytes``. The newest clip is kept even when it alone
    exceeds the cap: deleting the clip just recorded would make the archive useless."""
    ordered = sorted(clips, key=lambda c: (c.mtime, str(c.path)))
    doomed = [c for c in ordered if now - c.mtime > max_age_s]
    kept = [c for c in ordered if now - c.mtime <= max_age_s]
    total = sum(c.size for c in kept)
    while len(kept) > 1 and total > max_bytes:
        oldest = kept.pop(0)
        total -= oldest.size
        doomed.append(oldest)
    return doomed
