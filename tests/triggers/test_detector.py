"""The motion detector's core on synthetic numpy frames and a fake clock (5 frames a second).

Each scene is a textured 178x100 picture with per-frame sensor noise; objects, lighting and
masks are painted in. Every test asserts the exact events (count, direction) and when they
happen, so a detector that fires late, twice, or on light alone fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.triggers.detector import DetectorParams, MotionDetector, MotionEvent, polygon_mask

H, W = 100, 178
FPS = 5.0
STEP = 1 / FPS


def texture(seed: int = 7) -> np.ndarray:
    """A busy but smooth scene: blobs of every size, 20-230 grey levels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    img = 125 + 40 * np.sin(x / 9 + 1) * np.cos(y / 7) + 25 * np.sin((x + 2 * y) / 17)
    img += 18 * np.sin(x / 3.1) * np.sin(y / 2.7)
    img += rng.normal(0, 6, (H, W))
    return np.clip(img, 20, 230)


@dataclass
class Box:
    """A rectangle of one grey level whose top-left corner moves with time."""

    w: int
    h: int
    level: float
    where: Callable[[float], tuple[float, float] | None]  # t -> (x, y), or None when absent


@dataclass
class Scene:
    seed: int = 7
    noise: float = 3.0
    boxes: list[Box] = field(default_factory=list)
    gain: Callable[[float], float] = lambda t: 1.0
    offset: Callable[[float], float] = lambda t: 0.0
    gamma: Callable[[float], float] = lambda t: 1.0
    base: np.ndarray | None = None
    swap_at: float | None = None  # the scene itself changes (IR mode): a different texture

    def __post_init__(self) -> None:
        self._bg = texture(self.seed) if self.base is None else self.base
        self._alt = 255 - texture(self.seed + 1) * 0.8
        self._rng = np.random.default_rng(self.seed + 100)

    def frame(self, t: float) -> np.ndarray:
        img = (self._alt if self.swap_at is not None and t >= self.swap_at else self._bg).copy()
        for box in self.boxes:
            pos = box.where(t)
            if pos is None:
                continue
            x, y = round(pos[0]), round(pos[1])
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + box.w, W), min(y + box.h, H)
            if x1 > x0 and y1 > y0:
                img[y0:y1, x0:x1] = box.level
        img = img * self.gain(t) + self.offset(t)
        if self.gamma(t) != 1.0:
            img = 255 * (np.clip(img, 0, 255) / 255) ** (1 / self.gamma(t))
        img += self._rng.normal(0, self.noise, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)


def run(scene: Scene, seconds: float, params: DetectorParams | None = None,
        start: float = 1000.0) -> tuple[list[tuple[float, bool]], MotionDetector]:
    """Feed ``seconds`` of the scene; events as (scene time, active)."""
    detector = MotionDetector(params or DetectorParams(off_delay=3.0))
    events: list[tuple[float, bool]] = []
    for n in range(round(seconds * FPS)):
        t = n * STEP
        for event in detector.feed(scene.frame(t), start + t):
            events.append((round(event.at - start, 3), event.active))
    return events, detector


def crossing(t0: float, t1: float, x0: float, x1: float, y: float) -> Callable[[float], tuple[float, float] | None]:
    def where(t: float) -> tuple[float, float] | None:
        if not t0 <= t < t1:
            return None
        return x0 + (x1 - x0) * (t - t0) / (t1 - t0), y

    return where


def test_small_object_two_percent_is_detected_quickly_and_clears_after_off_delay() -> None:
    # 18x20 = 360 px, 2 % of the picture, crossing from t=10 s to t=16 s.
    scene = Scene(boxes=[Box(18, 20, 60.0, crossing(10.0, 16.0, 20, 150, 40))])
    events, det = run(scene, 30.0)
    assert len(events) == 2
    (t_on, on), (t_off, off) = events
    assert on and not off
    assert 10.0 < t_on <= 10.0 + 2 * STEP + 1e-9  # ON at the 2nd motion frame: 0.4 s at most
    # The last motion frame is the object's last (15.8 s) or the ghost it leaves one frame later.
    assert 15.8 + 3.0 - 1e-9 <= t_off <= 16.0 + 3.0 + 1e-9
    assert det.stats.recalibrations == 0


def test_person_sized_object_gives_one_event_with_a_large_area() -> None:
    # 30x70 px: 12 % of the picture, walking in from the left edge and out on the right.
    scene = Scene(boxes=[Box(30, 70, 230.0, crossing(5.0, 13.0, -30, W, 20))])
    detector = MotionDetector(DetectorParams(off_delay=3.0))
    ons: list[MotionEvent] = []
    offs: list[MotionEvent] = []
    for n in range(round(25 * FPS)):
        for event in detector.feed(scene.frame(n * STEP), n * STEP):
            (ons if event.active else offs).append(event)
    assert len(ons) == 1 and len(offs) == 1
    assert 5.0 < ons[0].at <= 5.0 + 3 * STEP + 1e-9  # it enters from outside the picture
    assert ons[0].regions >= 1 and ons[0].area > 0.005
    assert 13.0 + 3.0 - STEP - 1e-9 <= offs[0].at <= 13.0 + 3.0 + 2 * STEP + 1e-9
    assert detector.stats.recalibrations == 0


def test_noise_alone_never_fires() -> None:
    # Two minutes of heavy sensor noise (sigma 6, twice what the others use).
    events, det = run(Scene(noise=6.0), 120.0)
    assert events == []
    assert det.stats.motion_frames == 0 and det.stats.recalibrations == 0


def test_lighting_ramp_is_not_motion() -> None:
    # Dusk in reverse over 20 s: +70 % gain and +25 levels, starting at 5 s.
    def ramp(t: float) -> float:
        return min(max((t - 5.0) / 20.0, 0.0), 1.0)

    scene = Scene(gain=lambda t: 0.55 + 0.45 * ramp(t), offset=lambda t: 25 * ramp(t))
    events, det = run(scene, 40.0)
    assert events == []
    assert det.stats.motion_frames == 0


def test_ramp_that_burns_out_the_highlights_and_back_is_not_motion() -> None:
    # Brighter and brighter until a fifth of the picture is clipped white, held, then back.
    def ramp(t: float) -> float:
        return min(max((t - 5.0) / 20.0, 0.0), 1.0) - min(max((t - 35.0) / 15.0, 0.0), 1.0)

    scene = Scene(gain=lambda t: 1.0 + 0.6 * ramp(t), offset=lambda t: 20 * ramp(t))
    assert (scene.frame(30.0) == 255).mean() > 0.2
    events, det = run(scene, 60.0)
    assert events == []
    assert det.stats.motion_frames == 0


def test_ir_flip_is_a_global_step_not_motion() -> None:
    # Night mode: the tone curve changes (gamma 1.8, not a straight line) between two frames.
    scene = Scene(gamma=lambda t: 1.8 if 8.0 <= t < 16.0 else 1.0,
                  boxes=[Box(18, 20, 60.0, crossing(22.0, 26.0, 20, 150, 40))])
    events, det = run(scene, 32.0)
    assert det.stats.recalibrations == 2  # into night mode and back
    assert len(events) == 2 and events[0][1] and 22.0 < events[0][0] <= 22.4 + 1e-9


def test_sudden_lighting_step_is_not_motion() -> None:
    # Lights on: the whole picture 50 % brighter and +20 levels between two frames.
    scene = Scene(gain=lambda t: 0.6 if t < 8.0 else 0.9, offset=lambda t: 0.0 if t < 8.0 else 20.0)
    events, det = run(scene, 20.0)
    assert events == []
    assert det.stats.motion_frames == 0


def test_global_scene_change_recalibrates_and_then_sees_motion_again() -> None:
    # The IR filter flips at 8 s (a different picture altogether); a person walks by at 15 s.
    scene = Scene(swap_at=8.0, boxes=[Box(30, 70, 20.0, crossing(15.0, 21.0, -30, W, 20))])
    events, det = run(scene, 30.0)
    assert det.stats.recalibrations == 1
    assert len(events) == 2
    (t_on, on), (t_off, off) = events
    assert on and not off
    assert 15.0 < t_on <= 15.0 + 3 * STEP + 1e-9  # nothing fired at the flip; the walk did
    assert 21.0 + 3.0 - STEP - 1e-9 <= t_off <= 21.0 + 3.0 + 2 * STEP + 1e-9


def test_masked_region_is_ignored_and_the_rest_still_watched() -> None:
    # A tree swaying in the top-left corner (masked) the whole time; a cat crosses at 20 s.
    def sway(t: float) -> tuple[float, float]:
        return 10 + 8 * np.sin(t * 3), 5 + 4 * np.cos(t * 2)

    tree_corner = ((0.0, 0.0), (0.35, 0.0), (0.35, 0.45), (0.0, 0.45))
    scene = Scene(boxes=[Box(20, 20, 30.0, sway), Box(18, 14, 220.0, crossing(20.0, 26.0, 60, 170, 70))])
    params = DetectorParams(off_delay=3.0, mask=(tree_corner,))
    events, _ = run(scene, 32.0, params)
    assert len(events) == 2
    assert events[0][1] and 20.0 < events[0][0] <= 20.4 + 1e-9
    # Without the mask the swaying tree is motion as soon as the background has settled
    # (the first 8 frames, 1.6 s, only build it).
    unmasked, _ = run(scene, 10.0)
    assert unmasked and unmasked[0] == (2.0, True)


def test_steady_slow_motion_stays_on_for_its_whole_duration() -> None:
    # 1 px per frame (5 px/s at 100 rows) for 30 s: steady, slow, never a big frame-to-frame step.
    scene = Scene(boxes=[Box(16, 20, 235.0, lambda t: (10 + 5 * (t - 5), 50) if 5 <= t < 35 else None)])
    events, _ = run(scene, 45.0)
    assert len(events) == 2
    (t_on, on), (t_off, off) = events
    assert on and 5.0 < t_on <= 5.4 + 1e-9
    assert not off and 35.0 + 3.0 - STEP - 1e-9 <= t_off <= 35.0 + 3.0 + 2 * STEP + 1e-9


def test_a_single_glitch_frame_does_not_fire() -> None:
    # One frame with a block artefact (a decoder hiccup), nothing before or after.
    glitch = Box(25, 25, 250.0, lambda t: (80, 40) if 6.0 <= t < 6.0 + STEP else None)
    events, det = run(Scene(boxes=[glitch]), 12.0)
    assert events == []
    assert det.stats.motion_frames == 1  # seen, but one frame is not motion_frames=2


def test_poll_turns_motion_off_when_frames_stop() -> None:
    scene = Scene(boxes=[Box(18, 20, 240.0, crossing(1.0, 60.0, 20, 150, 40))])
    detector = MotionDetector(DetectorParams(off_delay=5.0))
    for n in range(20):
        detector.feed(scene.frame(n * STEP), n * STEP)
    assert detector.active
    deadline = detector.next_deadline()
    assert deadline == pytest.approx(19 * STEP + 5.0)
    assert detector.poll(deadline - 0.01) == []
    assert detector.poll(deadline) == [MotionEvent(False, deadline)]
    assert detector.next_deadline() is None and detector.poll(deadline + 100) == []


def test_resolution_change_starts_a_fresh_background_without_firing() -> None:
    detector = MotionDetector(DetectorParams(off_delay=1.0))
    small = Scene()
    for n in range(10):
        assert detector.feed(small.frame(n * STEP), n * STEP) == []
    big = np.clip(np.kron(texture(3), np.ones((2, 2))), 0, 255).astype(np.uint8)
    for n in range(10, 20):
        assert detector.feed(big, n * STEP) == []


def test_regions_off_counts_all_changed_pixels() -> None:
    scene = Scene(boxes=[Box(18, 20, 60.0, crossing(3.0, 9.0, 20, 150, 40))])
    events, _ = run(scene, 14.0, DetectorParams(off_delay=2.0, regions=False))
    assert [a for _, a in events] == [True, False]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 0}, "threshold"),
    ({"contour_area": 0}, "contour_area"),
    ({"lightning_threshold": 1.5}, "lightning_threshold"),
    ({"frame_alpha": 1.0}, "frame_alpha"),
    ({"frame_height": 8}, "frame_height"),
    ({"motion_frames": 0}, "motion_frames"),
    ({"off_delay": -1}, "off_delay"),
    ({"mask": (((0.0, 0.0), (1.0, 0.0)),)}, "3 corners"),
    ({"mask": (((0.0, 0.0), (1.5, 0.0), (1.0, 1.0)),)}, "relative"),
])
def test_bad_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DetectorParams(**kwargs)  # type: ignore[arg-type]


def test_polygon_mask_is_relative_by_pixel_centre() -> None:
    rect = ((0.2, 0.2), (0.6, 0.2), (0.6, 0.8), (0.2, 0.8))
    mask = polygon_mask([rect], 10, 10)
    assert mask.sum() == 4 * 6 and mask[2, 2] and not mask[1, 2] and not mask[2, 6]
    assert polygon_mask([rect], 20, 20).sum() == 8 * 12  # the same region at any resolution
    # A concave L: the notch stays watched.
    ell = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))
    mask = polygon_mask([ell], 10, 10)
    assert mask.sum() == 75 and not mask[2, 7] and mask[7, 7] and mask[2, 2]


def test_bad_frames_are_refused() -> None:
    detector = MotionDetector()
    with pytest.raises(ValueError):
        detector.feed(np.zeros((0, 5), np.uint8), 0.0)
    with pytest.raises(ValueError):
        detector.feed(np.zeros((4, 4, 3), np.uint8), 0.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(0, 255), st.floats(0, 5)),
                min_size=1, max_size=12))
def test_any_frame_sequence_keeps_the_state_consistent(frames: list[tuple[int, int, int, float]]) -> None:
    detector = MotionDetector(DetectorParams(off_delay=1.0, motion_frames=1))
    now = 0.0
    for h, w, seed, dt in frames:
        now += dt
        frame = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
        for event in detector.feed(frame, now):
            assert event.at == now
        assert detector.active == (detector.next_deadline() is not None)
