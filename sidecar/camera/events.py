"""What happens to a camera, as plain events that any observer may follow.

The status page, the MQTT publisher, the ``--stdio-json`` parent protocol and the logs all
want the same facts (motion rose, a hub opened a recording, it ended with this reason, ffmpeg
restarts in 4 s, a controller paired). Rather than each reaching into the camera's internals,
the camera emits these frozen events on one small bus and observers subscribe. An observer that
raises is logged and never disturbs the camera or the other observers: a broken status page
must not cost a clip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "CameraEvent",
    "DoorbellPressed",
    "EventBus",
    "LiveSessionsChanged",
    "MotionChanged",
    "MotionSource",
    "PairingChanged",
    "PipelineChanged",
    "RecordingEnded",
    "RecordingOpened",
    "SetupCodeRejected",
]

log = logging.getLogger(__name__)

MotionSource = str  # "http", "mqtt", "detector", "doorbell", "demo", "stdio", "web", "timeout", "manual"


def _wall() -> float:
    return time.time()


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraEvent:
    """Base: which camera, and the wall-clock time it happened (for people, never for timing)."""

    camera: str
    at: float = field(default_factory=_wall)


@dataclass(frozen=True, slots=True, kw_only=True)
class MotionChanged(CameraEvent):
    active: bool
    source: MotionSource


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorbellPressed(CameraEvent):
    source: MotionSource


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingOpened(CameraEvent):
    """A hub opened a dataSend recording stream."""

    stream_id: int
    selection: str | None  # e.g. "1920x1080@24 2000 kbps, prebuffer 4000 ms"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingEnded(CameraEvent):
    """A recording stream ended. ``reason`` is the HDS close reason's name (``NORMAL``, ...)."""

    stream_id: int
    reason: str
    reason_code: int | None
    closed_by: str  # "hub", "accessory", "ack", or "connection" (the hub vanished)
    detail: str = ""  # in words, e.g. "the hub stopped reading"
    bytes_sent: int = 0
    fragments_sent: int = 0
    first_byte_s: float | None = None  # open -> first media byte handed to the socket
    prebuffer_s: float | None = None  # seconds of media before the open that were sent
    duration_s: float = 0.0
    video_codec: str | None = None  # the clip's sample entry: avc1 (H.264), hvc1 (H.265), ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineChanged(CameraEvent):
    """The recording ffmpeg changed state.

    ``running``: media flows (emitted at each run's first fragment). ``restarting``: ffmpeg
    stopped; the next start is in ``restart_in_s`` (emitted per attempt, so the delays show the
    backoff). ``failed``: the same, but the cause needs the user (wrong password or path, codec,
    missing ffmpeg); retries go on in case it gets fixed. ``stopped``: recording off or shutdown.
    """

    state: str
    error: str | None = None  # the cause in words, credentials masked
    exit_code: int | None = None
    restart_in_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingChanged(CameraEvent):
    paired: bool  # whether the accessory has any controller now
    added: bool  # this change added (True) or removed (False) a controller
    controller: str = ""  # shortened controller id
    admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupCodeRejected(CameraEvent):
    """A controller tried to pair with a wrong setup code (HAP refuses for good after 100)."""

    failed_attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveSessionsChanged(CameraEvent):
    sessions: int


Observer = Callable[[CameraEvent], None]


class EventBus:
    """Synchronous fan-out of camera events. Observers must be quick and must not block."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Add an observer; returns the function that removes it."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def emit(self, event: CameraEvent) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:  # an observer's bug never reaches the camera
                log.exception("camera event observer failed on %s", type(event).__name__)
