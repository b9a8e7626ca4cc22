"""A per-recording sink: gets exactly the bytes a hub was sent (init segment, then fragments).

The local clip archive is one; anything that wants a copy of recordings (an upload, a test)
can be another. Calls happen on the event loop right after the bytes went to the hub's socket,
so a sink must only queue them: it must never block or raise into the relay.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RecordingSink"]


class RecordingSink(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """The init segment or one fragment, as sent."""

    def end(self) -> None:
        """The recording ended (whatever the reason)."""
