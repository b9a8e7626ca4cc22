"""Sans-IO measurement of what the stream really delivers: keyframe interval, fragment length,
frame rate and bitrate.

HKSV wants fragments of at most 4 s that start on a keyframe. With ``-c:v copy`` the fragment
length is the camera's keyframe (IDR) interval, which only the camera's settings control, so we
measure it and say plainly what to change (docs/field-lessons.md #5). Short GOPs (1-2 s) are fine but
wasteful of fragments; they can be merged into 4 s fragments with ``-min_frag_duration``, and
:meth:`KeyframeMonitor.suggested_min_frag_duration_us` computes the value.

The first fragment of every run is ignored: from live RTSP it may be cut short or carry odd
timestamps (docs/field-lessons.md #4).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

from .segments import Fragment, InitSegment

__all__ = ["GopVerdict", "KeyframeMonitor", "StreamMeasurement"]

HKSV_FRAGMENT_LIMIT_S = 4.0


class GopVerdict(enum.Enum):
    UNKNOWN = "unknown"  # not enough fragments yet
    OK = "ok"  # fragments ≤ 4 s (+ one frame), each starting on a keyframe
    TOO_LONG = "too-long"  # fragments exceed 4 s: the camera's I-frame interval is too long
    SHORT = "short"  # keyframes every ≤ 2 s and fragments that short: merge them
    NOT_KEYFRAME_ALIGNED = "not-keyframe-aligned"  # fragments that do not start on a keyframe


@dataclass(frozen=True, slots=True)
class StreamMeasurement:
    """Recent figures, over the last ``window`` fragments (``None`` until measured)."""

    keyframe_interval_s: float | None
    max_fragment_s: float | None
    fps: float | None
    bitrate_kbps: float | None
    fragments: int


class KeyframeMonitor:
    """Feed it every fragment of a run; read :attr:`measurement` and :attr:`verdict`.

    Args:
        limit_s: the longest acceptable fragment (HKSV: 4 s); one frame of slack is added.
        window: fragments kept for the figures.
        min_fragments: fragments (after the ignored first) needed before a verdict.
    """

    def __init__(self, *, limit_s: float = HKSV_FRAGMENT_LIMIT_S, window: int = 8, min_fragments: int = 1) -> None:
        self.limit_s = limit_s
        self.window = window
        self.min_fragments = min_fragments
        self._video_track: int | None = None
        self._seen = 0
        self._durations: deque[float] = deque(maxlen=window)
        self._sizes: deque[int] = deque(maxlen=window)
        self._samples: deque[int] = deque(maxlen=window)
        self._intervals: deque[float] = deque(maxlen=window * 4)
        self._aligned: deque[bool] = deque(maxlen=window)
        self._last_key: float | None = None
        # Both are worked out from the deques above, which only observe() and reset() change,
        # and read several times per fragment (the policy, the probe, the status page): kept
        # until the next change.
        self._measurement: StreamMeasurement | None = None
        self._verdict: GopVerdict | None = None

    def reset(self, init: InitSegment | None = None) -> None:
        """Start over for a new run (its timestamps restart at 0)."""
        video = init.video if init is not None else None
        self._video_track = video.track_id if video is not None else None
        self._seen = 0
        self._durations.clear()
        self._sizes.clear()
        self._samples.clear()
        self._intervals.clear()
        self._aligned.clear()
        self._last_key = None
        self._measurement = self._verdict = None

    def observe(self, fragment: Fragment) -> None:
        """Account for one fragment, in stream order."""
        self._measurement = self._verdict = None
        self._seen += 1
        if self._seen == 1:
            if fragment.keyframe_times_s:
                self._last_key = fragment.keyframe_times_s[-1]
            return
        for t in fragment.keyframe_times_s:
            if self._last_key is not None and t > self._last_key:
                self._intervals.append(t - self._last_key)
            self._last_key = t
        self._durations.append(fragment.duration_s)
        self._sizes.append(fragment.size)
        primary = fragment.tracks[0] if fragment.tracks else None
        self._samples.append(primary.sample_count if primary is not None else 0)
        self._aligned.append(fragment.keyframe)

    @property
    def measurement(self) -> StreamMeasurement:
        if self._measurement is not None:
            return self._measurement
        total = sum(self._durations)
        self._measurement = StreamMeasurement(
            keyframe_interval_s=max(self._intervals) if self._intervals else None,
            max_fragment_s=max(self._durations) if self._durations else None,
            fps=(sum(self._samples) / total) if total > 0 and self._video_track is not None else None,
            bitrate_kbps=(sum(self._sizes) * 8 / total / 1000) if total > 0 else None,
            fragments=len(self._durations),
        )
        return self._measurement

    @property
    def frame_s(self) -> float:
        """One frame's duration (the tolerance on fragment length); 1/15 s until measured."""
        fps = self.measurement.fps
        return 1.0 / fps if fps else 1.0 / 15

    @property
    def verdict(self) -> GopVerdict:
        if self._verdict is None:
            self._verdict = self._judge()
        return self._verdict

    def _judge(self) -> GopVerdict:
        if len(self._durations) < self.min_fragments:
            return GopVerdict.UNKNOWN
        if not all(self._aligned):
            return GopVerdict.NOT_KEYFRAME_ALIGNED
        slack = self.frame_s + 1e-3
        if max(self._durations) > self.limit_s + slack:
            return GopVerdict.TOO_LONG
        gop = self.measurement.keyframe_interval_s
        if gop is not None and gop <= self.limit_s / 2 + slack and max(self._durations) <= self.limit_s / 2 + slack:
            return GopVerdict.SHORT
        return GopVerdict.OK

    def suggested_min_frag_duration_us(self) -> int | None:
        """``-min_frag_duration`` that merges short GOPs into fragments of at most 4 s.

        ffmpeg closes a fragment at the first keyframe once the fragment is at least this long.
        Aiming half a GOP below the target keeps timestamp jitter from pushing the cut one GOP
        later (a 3.999 s fragment under a 4.0 s minimum would grow to 6 s).
        """
        gop = self.measurement.keyframe_interval_s
        if self.verdict is not GopVerdict.SHORT or gop is None or gop <= 0:
            return None
        per_fragment = max(1, math.floor(self.limit_s / gop + 0.02))
        if per_fragment < 2:
            return None
        return int((per_fragment - 0.5) * gop * 1_000_000)

    def advice(self) -> str | None:
        """A log line for the user, or ``None`` when all is well or unknown."""
        verdict = self.verdict
        m = self.measurement
        if verdict is GopVerdict.TOO_LONG:
            return (
                f"fragments last up to {m.max_fragment_s:.2f} s (keyframe interval "
                f"{m.keyframe_interval_s or 0:.2f} s) but HomeKit needs at most 4 s: set the camera's "
                "I-frame (keyframe/GOP) interval to 4 s, i.e. frame rate x 4 frames, "
                "or use a transcoding profile"
            )
        if verdict is GopVerdict.NOT_KEYFRAME_ALIGNED:
            return "fragments do not start on keyframes; HomeKit will reject them: use a transcoding profile"
        return None
