"""The built-in motion detector: small gray frames in, motion on/off events out (sans-IO).

A plain RTSP camera has no motion events of its own, and HomeKit records only when the accessory
reports motion. This is a frame-difference detector in the spirit of Frigate's (docs/cameras-and-nvrs.md
§Motion detection), written with numpy and one scipy call, fed about 5 frames a second of about 100 rows:

1. **Contrast** (``improve_contrast``): the 4th-96th percentile range of the frame, averaged over
   the last 50 frames as Frigate does, sets how much a grey level counts; a dim night scene is
   judged on the same 0-255 scale as a bright day.
2. **Blur**: a 3x3 Gaussian (sigma 1, radius 1) takes the edge off sensor noise and compression
   blocks.
3. **Lighting compensation** (ours; Frigate has none): before differencing, the frame is matched
   to the background with a robust affine map (medians of the difference in the darker and the
   brighter half of the picture). A lighting ramp, a cloud or an auto-exposure step moves every
   pixel the same way and disappears; an object covering less than half of either half does not
   move those medians.
4. **Background**: a running average (``frame_alpha``), kept per pixel: a pixel that differs
   from it is not blended in (so a slow object leaves no ghost trail) until it has differed for
   5 s in a row (then a car that parked becomes background within a few frames more).
5. **Threshold and regions**: pixels that differ by more than ``threshold`` (after the contrast
   scaling), dilated once, grouped into 8-connected regions; a region smaller than
   ``contour_area`` pixels is noise. ``scipy.ndimage.label`` does the grouping: a pure-numpy
   labelling costs dozens of times more per frame (benchmarks/RESULTS.md).
6. **Recalibration**: when the brightness of half the picture or more steps by more than
   ``threshold`` between two frames (a light switched on, the IR filter flipping, an exposure
   jump), or more than ``lightning_threshold`` of the picture differs at once (the camera
   moved), the background restarts from this frame and motion is ignored until less than 5 %
   of the picture differs. It never fires. Clipped pixels (white or black) only count in the
   direction clipping cannot fake, so highlights burning out during a lighting ramp are not
   motion.
7. **Events**: motion is ON after ``motion_frames`` motion frames in a row, OFF once no motion
   frame has been seen for ``off_delay`` seconds (Frigate's ``mqtt_off_delay``).

Parameters keep Frigate's names and defaults where they mean the same thing (``threshold``,
``contour_area``, ``lightning_threshold``, ``improve_contrast``, ``frame_alpha``,
``frame_height``), so a tuning carried over from Frigate means the same here. Motion masks are
polygons in relative coordinates (0-1), so they survive a change of resolution.

Usage::

    detector = MotionDetector(DetectorParams())
    for event in detector.feed(gray_frame, now):     # a 2-D uint8 array, monotonic seconds
        camera.set_motion(event.active, source="detector")
    deadline = detector.next_deadline()               # when to call poll(now) if frames stop
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ..media.frames import DetectionZones
from .detector_params import DetectorParams, DetectorStats, DetectorStatus, MotionEvent, Polygon

__all__ = ["DetectorParams", "DetectorStats", "DetectorStatus", "MotionDetector", "MotionEvent", "Polygon",
           "polygon_mask"]

Gray = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

CONTRAST_HISTORY = 50  # frames averaged for the contrast range (Frigate's choice)
BACKGROUND_HOLD_FRAMES = 25  # frames a pixel differs in a row before the background takes it in (5 s)
CALIBRATION_ALPHA = 0.2  # background update rate while recalibrating
CALIBRATED_BELOW = 0.05  # recalibration ends once less than this fraction differs...
CALIBRATED_MAX_REGIONS = 4  # ...in at most this many regions
GAP_RESET_S = 30.0  # frames that resume after this long start a fresh background
SATURATED_HIGH = 250  # grey levels at which a pixel is taken as clipped
SATURATED_LOW = 5
WARMUP_FRAMES = 8  # a fresh background first averages this many frames (no motion reported)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def polygon_mask(polygons: Sequence[Polygon], height: int, width: int) -> Mask:
    """Pixels (by centre) inside any polygon, even-odd rule; True means masked (ignored)."""
    masked = np.zeros((height, width), dtype=bool)
    ys = (np.arange(height, dtype=np.float64) + 0.5) / height
    xs = (np.arange(width, dtype=np.float64) + 0.5) / width
    px, py = np.meshgrid(xs, ys)
    for polygon in polygons:
        inside = np.zeros((height, width), dtype=bool)
        corners = list(polygon)
        for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True):
            if y1 == y2:
                continue
            crosses = (y1 > py) != (y2 > py)
            x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (px < x_at)
        masked |= inside
    return masked


def _blur(frame: Floats) -> Floats:
    """3x3 Gaussian, sigma 1 (weights .274/.452/.274), edges replicated: two 1-D passes."""
    side, centre = np.float32(0.27407), np.float32(0.45186)
    padded = np.pad(frame, 1, mode="edge")
    rows = centre * padded[1:-1, :] + side * (padded[:-2, :] + padded[2:, :])
    out = centre * rows[:, 1:-1] + side * (rows[:, :-2] + rows[:, 2:])
    return out.astype(np.float32, copy=False)


def _dilate(changed: Mask) -> Mask:
    """One 3x3 dilation with shifted ORs (cheaper than a library call at this size)."""
    rows = changed.copy()
    rows[1:] |= changed[:-1]
    rows[:-1] |= changed[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


@dataclass(slots=True)
class _Scene:
    """Per-resolution state: rebuilt when the frame size changes."""

    shape: tuple[int, int]
    watched: Mask  # not masked
    watched_count: int
    background: Floats
    stale: npt.NDArray[np.uint16]  # frames in a row each pixel has differed from the background
    clipped_high: Mask  # pixels clipped white (or next to one) in the last frame
    clipped_low: Mask
    levels: tuple[float, float] | None = None  # last frame's dark and bright medians
    contrast: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 2), np.float32))


class MotionDetector:
    """Feed gray frames with their monotonic time; get :class:`MotionEvent` on each change."""

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params or DetectorParams()
        self.stats = DetectorStats()
        self._scene: _Scene | None = None
        self._active = False
        self._run = 0  # motion frames in a row
        self._last_motion: float | None = None
        self._last_frame_at: float | None = None
        self._calibrating = False
        self._warmup = 0
        self._zones = DetectionZones()

    @property
    def active(self) -> bool:
        return self._active

    def next_deadline(self) -> float | None:
        """When motion will turn OFF if no more motion is seen; ``None`` while it is off."""
        if not self._active or self._last_motion is None:
            return None
        return self._last_motion + self.params.off_delay

    def poll(self, now: float) -> list[MotionEvent]:
        """Advance the clock without a frame (frames stopped): the OFF delay may expire."""
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._active = False
            self._run = 0
            self.stats.events += 1
            return [MotionEvent(False, now)]
        return []

    def set_zones(self, zones: DetectionZones) -> None:
        """Where motion counts from the next frame on (the camera's zones), on top of ``mask``.

        The background is kept: only the watched pixels change.
        """
        self._zones = zones
        scene = self._scene
        if scene is not None:
            scene.watched = self._watched(*scene.shape)
            scene.watched_count = max(1, int(scene.watched.sum()))

    def _watched(self, height: int, width: int) -> Mask:
        masked = np.zeros((height, width), dtype=bool)
        excluded = (*self.params.mask, *self._zones.exclude)
        if excluded:
            masked |= polygon_mask(excluded, height, width)
        if self._zones.include:
            masked |= ~polygon_mask(self._zones.include, height, width)
        return ~masked

    def reset(self) -> None:
        """Forget the background (the source changed); motion state is kept until the OFF delay."""
        self._scene = None
        self._run = 0

    def feed(self, frame: Gray, now: float) -> list[MotionEvent]:
        """Process one frame (2-D uint8, any size; about ``frame_height`` rows is best)."""
        if frame.ndim != 2 or frame.size == 0:
            raise ValueError("a frame is a non-empty 2-D array of grey levels")
        if self._last_frame_at is not None and now - self._last_frame_at > GAP_RESET_S:
            self._scene = None  # the camera was away: its old background means nothing
        self._last_frame_at = now
        self.stats.frames += 1
        pixels = frame.astype(np.float32)
        scene = self._scene
        if scene is None or scene.shape != frame.shape:
            self._scene = self._new_scene(pixels)
            self._warmup = WARMUP_FRAMES
            self._run = 0
            return self.poll(now)
        moving, area, regions = self._detect(scene, pixels)
        self.stats.last_area, self.stats.last_regions = area, regions
        self.stats.calibrating = self._calibrating
        events: list[MotionEvent] = []
        if moving:
            self.stats.motion_frames += 1
            self._run += 1
            if self._active:
                self._last_motion = now
            elif self._run >= self.params.motion_frames:
                self._active = True
                self._last_motion = now
                self.stats.events += 1
                events.append(MotionEvent(True, now, area, regions))
        else:
            self._run = 0
            events.extend(self.poll(now))
        return events

    # -- the picture work ------------------------------------------------------------------------

    def _new_scene(self, pixels: Floats) -> _Scene:
        height, width = pixels.shape
        watched = self._watched(height, width)
        return _Scene(shape=(height, width), watched=watched, watched_count=max(1, int(watched.sum())),
                      background=_blur(pixels), stale=np.zeros((height, width), dtype=np.uint16),
                      clipped_high=np.zeros((height, width), dtype=bool),
                      clipped_low=np.zeros((height, width), dtype=bool))

    def _contrast_gain(self, scene: _Scene, pixels: Floats) -> float:
        """How much one grey level counts: 255 over the scene's usual 4th-96th percentile range."""
        if not self.params.improve_contrast:
            return 1.0
        sample = pixels[::2, ::2][scene.watched[::2, ::2]]
        if sample.size == 0:
            return 1.0
        low, high = np.percentile(sample, (4, 96))
        if high > low:
            scene.contrast = np.vstack([scene.contrast, np.array([[low, high]], np.float32)])[-CONTRAST_HISTORY:]
        if len(scene.contrast) == 0:
            return 1.0
        avg_low, avg_high = scene.contrast.mean(axis=0)
        return float(255.0 / max(float(avg_high - avg_low), 8.0))

    @staticmethod
    def _match_lighting(scene: _Scene, blurred: Floats) -> tuple[Floats, tuple[float, float]]:
        """Map the frame onto the background's lighting with a robust two-point affine fit.

        The offset of the darker and of the brighter half of the background (medians of the
        difference) give two points of a line; a global brightness/contrast change is such a
        line. Medians ignore whatever covers less than half of either half, i.e. objects.
        Also returns the frame's two medians, which :meth:`_detect` watches for a step.
        """
        bg = scene.background[::2, ::2]
        fg = blurred[::2, ::2]
        watched = scene.watched[::2, ::2]
        bg_w, fg_w = bg[watched], fg[watched]
        if bg_w.size < 16:
            return blurred, (0.0, 0.0)
        split = float(np.median(bg_w))
        dark = bg_w <= split
        bright = ~dark
        if not dark.any() or not bright.any():
            level = float(np.median(fg_w))
            return blurred + (float(np.median(bg_w)) - level), (level, level)
        fg_dark, fg_bright = float(np.median(fg_w[dark])), float(np.median(fg_w[bright]))
        bg_dark, bg_bright = float(np.median(bg_w[dark])), float(np.median(bg_w[bright]))
        if fg_bright - fg_dark < 2.0:  # a flat picture (lens covered, black frame): offset only
            return blurred + (bg_bright + bg_dark - fg_bright - fg_dark) / 2, (fg_dark, fg_bright)
        gain = (bg_bright - bg_dark) / (fg_bright - fg_dark)
        gain = min(max(gain, 0.25), 4.0)
        out: Floats = (blurred - fg_dark) * np.float32(gain) + np.float32(bg_dark)
        return out, (fg_dark, fg_bright)

    def _detect(self, scene: _Scene, pixels: Floats) -> tuple[bool, float, int]:
        """One frame: returns (is a motion frame, changed fraction, regions)."""
        p = self.params
        gain = self._contrast_gain(scene, pixels)
        blurred, levels = self._match_lighting(scene, _blur(pixels))
        previous, scene.levels = scene.levels, levels
        if self._warmup > 0:
            # A background from one noisy frame would make noise look like motion: average a
            # few first (1.6 s at 5 fps, after a start or a camera reconnecting).
            self._warmup -= 1
            scene.background += (blurred - scene.background) * np.float32(CALIBRATION_ALPHA)
            return False, 0.0, 0
        step = 0.0 if previous is None else max(abs(levels[0] - previous[0]), abs(levels[1] - previous[1]))
        if step * gain > p.threshold:
            # Half the picture or more changed brightness between two frames: a light switched,
            # the IR filter flipped, the exposure jumped. Not something moving: start over.
            return self._recalibrate(scene, blurred, 1.0, 0)
        signed = blurred - scene.background
        delta = np.abs(signed)
        # A clipped pixel (white or black) hides its true level. Clipped now and in the last
        # frame: both are mere bounds, nothing to compare. Newly clipped: trust only the
        # direction clipping cannot fake (a highlight that burns out is at least this bright).
        # Clipped before and no longer: the first true level; the background there was only a
        # bound, so it takes the new level instead of firing.
        high, low = _dilate(pixels >= SATURATED_HIGH), _dilate(pixels <= SATURATED_LOW)
        delta[high & (scene.clipped_high | (signed < 0))] = 0
        delta[low & (scene.clipped_low | (signed > 0))] = 0
        emerged = (scene.clipped_high & ~high & (signed > 0)) | (scene.clipped_low & ~low & (signed < 0))
        delta[emerged] = 0
        scene.clipped_high, scene.clipped_low = high, low
        raw = (delta * np.float32(gain)) > p.threshold
        raw &= scene.watched
        changed = _dilate(raw) & scene.watched
        if p.regions:
            labels, count = ndimage.label(changed, structure=_EIGHT_CONNECTED)
            if count:
                sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
                big = sizes[sizes >= p.contour_area]
                regions, changed_px = int(big.size), int(big.sum())
            else:
                regions, changed_px = 0, 0
        else:
            changed_px = int(changed.sum())
            regions = 1 if changed_px >= p.contour_area else 0
            if not regions:
                changed_px = 0
        area = changed_px / scene.watched_count
        if self._calibrating and area < CALIBRATED_BELOW and regions <= CALIBRATED_MAX_REGIONS:
            self._calibrating = False
        if area > p.lightning_threshold:
            # Most of the picture changed at once (lightning, the camera moved): start over.
            return self._recalibrate(scene, blurred, area, regions)
        moving = regions > 0 and not self._calibrating
        self._update_background(scene, blurred, raw)
        scene.background[emerged] = blurred[emerged]
        return moving, area, regions

    def _recalibrate(self, scene: _Scene, blurred: Floats, area: float, regions: int) -> tuple[bool, float, int]:
        """A global change: the background restarts from this picture; motion waits until it
        has settled (less than 5 % of the picture differing)."""
        if not self._calibrating:
            self.stats.recalibrations += 1
        self._calibrating = True
        scene.background = blurred.copy()
        scene.stale[:] = 0
        scene.contrast = scene.contrast[-1:]
        self._run = 0
        return False, area, regions

    def _update_background(self, scene: _Scene, blurred: Floats, raw: Mask) -> None:
        """Blend the frame into the background, pixel by pixel.

        Pixels that match the background follow it at ``frame_alpha``. Pixels that differ are
        left alone, so a slowly moving object leaves no ghost behind, unless they have differed
        for ``BACKGROUND_HOLD_FRAMES`` frames in a row: then it is something that stopped (a
        parked car, a moved chair) and it is taken in quickly. Frigate holds the background
        for the whole frame after any motion; per pixel, slow steady motion ends when it ends.
        """
        if self._calibrating:
            scene.background += (blurred - scene.background) * np.float32(CALIBRATION_ALPHA)
            scene.stale[:] = 0
            return
        np.add(scene.stale, 1, out=scene.stale, where=raw)
        scene.stale[~raw] = 0
        np.minimum(scene.stale, BACKGROUND_HOLD_FRAMES, out=scene.stale)
        alpha = np.where(raw, np.where(scene.stale >= BACKGROUND_HOLD_FRAMES, np.float32(CALIBRATION_ALPHA),
                                       np.float32(0.0)), np.float32(self.params.frame_alpha))
        scene.background += (blurred - scene.background) * alpha
