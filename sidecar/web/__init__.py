"""The status page, /healthz, /metrics, the JSON API and the HTTP triggers: one aiohttp server.

It reads cameras through ``Camera.status()`` and ``Camera.events`` only (docs/architecture.md).
"""

from .journal import EventJournal, JournalEntry, RecordingRecord, describe_end
from .metrics import Metrics
from .server import WebServer, serve_app

__all__ = ["EventJournal", "JournalEntry", "Metrics", "RecordingRecord", "WebServer", "describe_end", "serve_app"]
