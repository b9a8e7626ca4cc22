"""The optional local clip archive: a playable MP4 of every recording sent to a hub."""

from .retention import StoredClip, plan_retention
from .writer import ArchivedClip, ClipArchive, ClipWriter

__all__ = ["ArchivedClip", "ClipArchive", "ClipWriter", "StoredClip", "plan_retention"]
