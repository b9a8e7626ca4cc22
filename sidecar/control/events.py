"""Camera events (camera/events.py) as parent-protocol events: a pure mapping, no IO.

Kept apart from the session so the wire shape of every event is in one place, next to the
document that describes it (docs/child-process.md).
"""

from __future__ import annotations

from typing import Any

from ..camera.events import (
    CameraEvent,
    DoorbellPressed,
    MotionChanged,
    PipelineChanged,
    RecordingEnded,
    RecordingOpened,
)

__all__ = ["CAMERA_STATES", "wire_events"]

# ``camera`` event states: starting -> ready (HAP server up) -> streaming (ffmpeg running)
# / idle (ffmpeg stopped: recording off) / error (ffmpeg failed, or the camera could not start)
# -> stopped (shutdown).
CAMERA_STATES = ("starting", "ready", "streaming", "idle", "error", "stopped")

Wire = tuple[str, dict[str, Any]]


def wire_events(event: CameraEvent) -> list[Wire]:
    """The protocol events for one camera event (none for those a parent has no use for)."""
    cam = event.camera
    if isinstance(event, MotionChanged):
        return [("motion", {"camera": cam, "active": event.active, "source": event.source})]
    if isinstance(event, DoorbellPressed):
        return [("doorbell", {"camera": cam, "source": event.source})]
    if isinstance(event, RecordingOpened):
        return [("recording", {"camera": cam, "streamId": event.stream_id, "state": "start"})]
    if isinstance(event, RecordingEnded):
        return [("recording", {"camera": cam, "streamId": event.stream_id, "state": "end",
                               "reason": event.reason, "bytes": event.bytes_sent})]
    if isinstance(event, PipelineChanged):
        return _pipeline(event)
    return []


def _pipeline(event: PipelineChanged) -> list[Wire]:
    """camera/events.py's states: running, restarting, failed (the cause needs the user; the
    retries go on), stopped. ``backoff`` is media's own name for restarting."""
    cam = event.camera
    if event.state == "running":
        return [("camera", {"camera": cam, "state": "streaming"})]
    if event.state == "stopped":
        return [("camera", {"camera": cam, "state": "idle"})]
    if event.state not in ("restarting", "backoff", "failed"):
        return []
    out: list[Wire] = [("ffmpeg", {"camera": cam, "exitCode": event.exit_code, "restartIn": event.restart_in_s})]
    if event.state == "failed":
        state: dict[str, Any] = {"camera": cam, "state": "error"}
        if event.error:
            state["error"] = event.error
        out.append(("camera", state))
    return out
