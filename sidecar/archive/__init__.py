"""The optional local clip archive: a playable MP4 of every recording sent to a hub."""

from .retention import StoredClip, plan_retention
from .writer import ArchivedClip, ArchiveSink, ClipArchive, ClipWriter

__all__ = ["ArchiveSink", "ArchivedClip", "ClipArchive", "ClipWriter", "StoredClip", "plan_retention"]
