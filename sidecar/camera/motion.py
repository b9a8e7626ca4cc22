"""Whether a camera sees motion, decided without I/O: :class:`MotionState`.

Motion is what makes a hub open a recording. Several sources raise it (HTTP and MQTT
triggers, the built-in detector, a doorbell press, the demo schedule); a trigger's motion
clears itself after a timeout, which is a deadline here rather than a timer, so the rule runs
on a fake clock in tests. The detector's "no motion" does not clear motion another source
raised after it (that source keeps its own timeout); every other clear is explicit and wins.
"""

from __future__ import annotations

from .events import MotionSource

__all__ = ["MotionState"]


class MotionState:
    """The MotionDetected value, who raised it, and when it clears by itself."""

    def __init__(self) -> None:
        self.active = False
        self.raised_by: MotionSource | None = None
        self.reset_at: float | None = None  # monotonic seconds; None: no auto-reset pending

    def set(self, active: bool, source: MotionSource, now: float, auto_reset_s: float | None = None) -> bool | None:
        """Apply a raise or a clear. Returns None when it is ignored, else whether the value changed."""
        if not active and source == "detector" and self.raised_by not in (None, "detector"):
            return None
        if active:
            self.raised_by = source
        self.reset_at = now + auto_reset_s if active and auto_reset_s else None
        changed = active != self.active
        self.active = active
        return changed

    def due(self, now: float) -> bool:
        """Whether the auto-reset is due at ``now`` (the caller then clears with source "timeout")."""
        return self.reset_at is not None and now >= self.reset_at
