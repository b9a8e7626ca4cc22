"""The built-in motion detector as a trigger: camera frames in, ``set_motion`` out.

The thin asyncio side of :mod:`.detector`. It subscribes to the camera's detector frames (the
camera runs the ffmpeg that makes them whenever it is active), feeds each to the sans-IO
:class:`~.detector.MotionDetector` and turns its events into
``camera.set_motion(..., source="detector")``. It arms one timer for the detector's OFF
deadline, so motion still ends when frames stop (the camera switched off, ffmpeg restarting).

Detector motion never rings a doorbell: it only ever calls ``set_motion``.

:meth:`DetectorTrigger.status` gives the detector's figures as one frozen value for the status
page and ``/api/status``: frames analysed and dropped (the detector fell behind), what the last
frame showed, and the score of the last trigger, which is what a user tunes the sensitivity by.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..media.frames import DetectionZones, FrameCallback, GrayFrame
from .detector import DetectorParams, DetectorStatus, MotionDetector, MotionEvent

__all__ = ["DetectorTrigger", "FrameSource"]

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    """What the trigger needs of a camera (``sidecar.camera.Camera`` has it)."""

    name: str

    def add_frame_observer(self, observer: FrameCallback) -> Callable[[], None]: ...

    def set_motion(self, active: bool, *, auto_reset_s: float | None = None, source: str = "manual") -> None: ...


class DetectorTrigger:
    """One camera's detector. ``start()`` subscribes, ``stop()`` unsubscribes and clears motion."""

    def __init__(self, camera: FrameSource, params: DetectorParams | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.camera = camera
        self.detector = MotionDetector(params)
        self._clock = clock
        self._unsubscribe: Callable[[], None] | None = None
        self._unsubscribe_zones: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.cpu_s = 0.0  # thread CPU spent in feed(), for the status page
        self.dropped = 0  # frames dropped before they reached the detector (it was behind)
        self._last_trigger: tuple[float, float, int] | None = None  # wall clock, area, regions
        self._triggers = 0

    @property
    def running(self) -> bool:
        return self._unsubscribe is not None

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.camera.add_frame_observer(self._on_frame)
            # Cameras whose hub writes motion zones (the secure-video model) tell the detector.
            add_zones_observer = getattr(self.camera, "add_zones_observer", None)
            if add_zones_observer is not None:
                self._unsubscribe_zones = add_zones_observer(self._on_zones)
            log.info("%s: motion detector on (%s)", self.camera.name, self.detector.params)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unsubscribe_zones is not None:
            self._unsubscribe_zones()
            self._unsubscribe_zones = None
        self._cancel_timer()
        if self.detector.active:
            self._apply(self.detector.poll(float("inf")))

    def _on_zones(self, zones: DetectionZones) -> None:
        self.detector.set_zones(zones)
        log.info("%s: motion zones: %d included, %d excluded", self.camera.name, len(zones.include),
                 len(zones.exclude))

    def _on_frame(self, frame: GrayFrame, now: float) -> None:
        self.dropped += frame.skipped
        pixels = np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width)
        started = time.thread_time()
        events = self.detector.feed(pixels, now)
        self.cpu_s += time.thread_time() - started
        self._apply(events)
        self._arm()

    def _apply(self, events: list[MotionEvent]) -> None:
        for event in events:
            if event.active:
                self._last_trigger = (time.time(), event.area, event.regions)
                self._triggers += 1
                log.debug("%s: detector motion: %.1f %% of the picture in %d region(s)", self.camera.name,
                          100 * event.area, event.regions)
            self.camera.set_motion(event.active, source="detector")

    def status(self) -> DetectorStatus:
        s = self.detector.stats
        last = self._last_trigger
        return DetectorStatus(
            active=self.detector.active, calibrating=s.calibrating, frames=s.frames, dropped=self.dropped,
            motion_frames=s.motion_frames, triggers=self._triggers, recalibrations=s.recalibrations,
            last_area=s.last_area, last_regions=s.last_regions,
            last_trigger_at=None if last is None else last[0], last_trigger_area=None if last is None else last[1],
            last_trigger_regions=None if last is None else last[2], cpu_s=self.cpu_s)

    def _arm(self) -> None:
        self._cancel_timer()
        deadline = self.detector.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._apply(self.detector.poll(self._clock()))
        self._arm()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
