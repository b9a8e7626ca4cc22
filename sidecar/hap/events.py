"""Per-session event queue with HAP's coalescing rule (sans-IO).

A session gets at most one EVENT message per ``interval`` (1 s, the ADK's minimum for
network notifications): the first change goes out at once, later changes inside the window
are merged (latest value wins per characteristic) and go out when it ends. Button presses
(``immediate``) are never delayed. The queue is keyed by characteristic, so it can never hold
more entries than there are characteristics: no event storm can grow it.
"""

from __future__ import annotations

from typing import Any

from .http import encode_event, json_body
from .model import Characteristic

__all__ = ["EventQueue"]


class EventQueue:
    def __init__(self, aid: int, interval: float = 1.0) -> None:
        self._aid = aid
        self._interval = interval
        self._pending: dict[int, tuple[Characteristic, Any]] = {}
        self._immediate = False
        self._last_sent = float("-inf")

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, char: Characteristic, value: Any) -> None:
        """Queue a change. The server flushes immediate events right after adding them."""
        self._pending[char.iid] = (char, value)
        if char.immediate:
            self._immediate = True

    def discard(self, iid: int) -> None:
        self._pending.pop(iid, None)

    def deadline(self) -> float | None:
        if not self._pending:
            return None
        if self._immediate:
            return float("-inf")
        return self._last_sent + self._interval

    def take(self, now: float) -> bytes | None:
        """Return one EVENT message if one is due at ``now``, else None."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        chars = [
            {"aid": self._aid, "iid": iid, "value": char.to_json_value(value)}
            for iid, (char, value) in self._pending.items()
        ]
        self._pending.clear()
        self._immediate = False
        self._last_sent = now
        return encode_event(json_body({"characteristics": chars}))
