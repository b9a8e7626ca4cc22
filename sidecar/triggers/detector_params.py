"""What the motion detector is tuned by and what it reports: plain data, no numpy.

The detector itself (:mod:`.detector`) needs numpy and scipy, an optional extra
(``pip install 'hksv-sidecar[detector]'``). Its parameters, events and status are read by the
configuration, the status page and ``/api/status`` whether or not any camera runs it, so they
live here and importing them loads nothing heavy. :func:`missing_dependencies` says which of the
detector's libraries are absent, so the application can refuse a ``motion: [detector]`` camera in
words instead of failing on an import.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

__all__ = ["DETECTOR_EXTRA", "DetectorParams", "DetectorStats", "DetectorStatus", "MotionEvent", "Polygon",
           "missing_dependencies"]

Polygon = tuple[tuple[float, float], ...]

#: How to install what the detector needs (the package's optional extra).
DETECTOR_EXTRA = "pip install 'hksv-sidecar[detector]'"
_DETECTOR_MODULES = ("numpy", "scipy")


def missing_dependencies() -> list[str]:
    """The detector's libraries that are not installed (empty when it can run)."""
    return [name for name in _DETECTOR_MODULES if importlib.util.find_spec(name) is None]


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Tuning. Names and defaults follow Frigate's ``motion:`` section where they mean the same.

    Attributes:
        threshold: grey-level difference (1-255, after contrast scaling) a pixel must exceed to
            count as changed. Higher: less sensitive. Frigate: ``threshold``, 30.
        contour_area: smallest changed region, in pixels of the ``frame_height``-row picture.
            Frigate: ``contour_area``, 10.
        lightning_threshold: fraction of the picture that, changing at once, means a global
            change (lights, IR, camera moved): recalibrate instead of firing. Frigate, 0.8.
        improve_contrast: scale differences by the scene's contrast. Frigate, on.
        frame_alpha: background update rate per frame. Frigate, 0.01.
        frame_height: rows of the picture the detector works on. Frigate, 100.
        motion_frames: motion frames in a row before motion turns ON (ours; 2 at 5 fps = 0.4 s).
        off_delay: seconds without a motion frame before motion turns OFF. Frigate's
            ``mqtt_off_delay``, 30.
        regions: group changed pixels into regions of at least ``contour_area`` (True), or
            count all changed pixels together against ``contour_area`` (False, cheaper).
        mask: polygons (relative 0-1 x, y corners) where motion is ignored.
    """

    threshold: int = 30
    contour_area: int = 10
    lightning_threshold: float = 0.8
    improve_contrast: bool = True
    frame_alpha: float = 0.01
    frame_height: int = 100
    motion_frames: int = 2
    off_delay: float = 30.0
    regions: bool = True
    mask: tuple[Polygon, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 255:
            raise ValueError("threshold must be 1-255")
        if self.contour_area < 1:
            raise ValueError("contour_area must be at least 1")
        if not 0 < self.lightning_threshold <= 1:
            raise ValueError("lightning_threshold must be in (0, 1]")
        if not 0 < self.frame_alpha < 1:
            raise ValueError("frame_alpha must be in (0, 1)")
        if not 16 <= self.frame_height <= 1080:
            raise ValueError("frame_height must be 16-1080")
        if self.motion_frames < 1:
            raise ValueError("motion_frames must be at least 1")
        if self.off_delay < 0:
            raise ValueError("off_delay must not be negative")
        for polygon in self.mask:
            if len(polygon) < 3:
                raise ValueError("a mask polygon needs at least 3 corners")
            for x, y in polygon:
                if not (0 <= x <= 1 and 0 <= y <= 1):
                    raise ValueError("mask corners are relative: x and y must be within 0-1")


@dataclass(frozen=True, slots=True)
class MotionEvent:
    """Motion turned on (``active``) or off, at monotonic time ``at`` (a frame's or poll's ``now``)."""

    active: bool
    at: float
    area: float = 0.0  # fraction of the watched picture that changed, for ON events
    regions: int = 0


@dataclass(slots=True)
class DetectorStats:
    """Counters for the status page and the benchmark."""

    frames: int = 0
    motion_frames: int = 0
    recalibrations: int = 0
    last_area: float = 0.0
    last_regions: int = 0
    calibrating: bool = False
    events: int = 0


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    """The detector's figures since start, as plain data (``DetectorTrigger.status()``)."""

    active: bool  # motion from the detector is up now
    calibrating: bool  # the picture changed as a whole (lights, exposure): learning it again
    frames: int  # analysed
    dropped: int  # not analysed: the detector was behind and only the newest frame was taken
    motion_frames: int  # analysed frames that showed motion
    triggers: int  # motion events raised
    recalibrations: int
    last_area: float  # fraction of the watched picture that changed in the last frame
    last_regions: int  # separate moving regions in the last frame
    last_trigger_at: float | None  # wall clock of the last motion raised
    last_trigger_area: float | None  # its score: the fraction of the picture that changed
    last_trigger_regions: int | None
    cpu_s: float  # thread CPU spent analysing
