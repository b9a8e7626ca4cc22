"""A recording sink: gets exactly the bytes a hub was sent (init segment, then fragments).

The local clip archive is one; anything that wants a copy of recordings can be another.
Calls happen on the event loop right after the bytes went to the hub's socket, so a sink must
only queue them: it must never block (an exception is logged and ignored).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["RecordingSink"]


class RecordingSink(Protocol):
    def begin(self, stream_id: int, init: bytes | bytearray | memoryview) -> None: ...

    def write(self, fragment: bytes | bytearray | memoryview) -> None: ...

    def end(self, event: Any) -> None: ...
