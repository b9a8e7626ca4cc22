"""What one camera's media pipeline reports, and the asyncio face of its state.

:class:`PipelineState` and :class:`PipelineStatus` are read by the status page,
:class:`PipelineEvent` is handed to the camera layer when the recording ffmpeg starts or stops
delivering. :class:`PipelineSignals` keeps the state and announces it both ways: an event that
waiters (``MediaPipeline.wait_for``) await, set on every state change, init segment and
fragment, and the :class:`PipelineEvent` observer, whose bugs never stop the pipeline.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PipelineEvent", "PipelineSignals", "PipelineState", "PipelineStatus"]

log = logging.getLogger(__name__)


class PipelineState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"  # ffmpeg spawned, no init segment yet
    RUNNING = "running"  # init segment received, fragments flowing
    BACKOFF = "backoff"  # ffmpeg exited; waiting before the next start
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """A snapshot for the status page (all times monotonic seconds or durations)."""

    name: str
    state: PipelineState
    running: bool
    pid: int | None
    generation: int
    restarts: int
    last_error: str | None
    last_exit_code: int | None
    profile: str
    audio: str
    source: str
    uptime_s: float | None
    keyframe_interval_s: float | None
    max_fragment_s: float | None
    bitrate_kbps: float | None
    fps: float | None
    width: int | None
    height: int | None
    codec: str | None
    h264_profile: str | None
    h264_level: str | None
    has_audio: bool | None
    gop_verdict: str
    warning: str | None
    prebuffer_s: float
    prebuffer_bytes: int
    fragments: int
    bytes_in: int
    ignored_settings: tuple[str, ...]
    argv: tuple[str, ...]  # passwords masked
    next_start_in_s: float | None = None  # while backing off: when ffmpeg starts again


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    """The recording ffmpeg changed state; the camera layer turns it into ``PipelineChanged``.

    ``state``: ``running`` (media flows), ``restarting`` (it stopped; the next start is in
    ``restart_in_s``), ``failed`` (like restarting, but the cause needs the user: a wrong
    password or path, a codec or ffmpeg missing; we keep retrying in case it is fixed),
    ``stopped`` (recording turned off or shutdown). ``error`` is the cause in words, masked.
    """

    state: str
    error: str | None = None
    exit_code: int | None = None
    restart_in_s: float | None = None


class PipelineSignals:
    """The pipeline's state, the change event waiters await, and the event observer.

    Args:
        name: the camera, for the log.
        on_event: called with each :class:`PipelineEvent` (exceptions are logged and dropped).
    """

    def __init__(self, name: str, on_event: Callable[[PipelineEvent], None] | None) -> None:
        self.name = name
        self.on_event = on_event
        self.state = PipelineState.STOPPED
        self.announced: str | None = None  # the last PipelineEvent state emitted
        self._changed = asyncio.Event()

    def set_state(self, state: PipelineState) -> None:
        if state is not self.state:
            self.state = state
            self.changed()

    def changed(self) -> None:
        """Wake everything waiting in :meth:`next_change`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def next_change(self) -> None:
        await self._changed.wait()

    def emit(self, event: PipelineEvent) -> None:
        self.announced = event.state
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # an observer's bug never stops the pipeline
                log.exception("%s: pipeline event observer failed", self.name)
