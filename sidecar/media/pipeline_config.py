"""What one camera's media pipeline is told: the source, the profile and the timings.

A module of its own so the pipeline's sans-IO parts (:mod:`.stream_policy`) read the same
configuration as the asyncio adapter (:mod:`.pipeline`) without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .frames import DetectOutput
from .profiles import Profile
from .settings import RecordingSettings
from .sources import Source

__all__ = ["PipelineConfig"]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything one camera's pipeline needs. Timing fields are seconds.

    Attributes:
        profile: name of the encoding profile (``copy``, ``libx264``, a hardware or user one).
        transcode_fallback: in copy mode, switch to ``fallback_profile`` when the camera's
            fragments exceed 4 s (the warning is logged either way).
        record_codec: what the recordings carry: ``h264`` (an H.265 camera is not copied) or
            ``hevc`` (an H.265 camera is copied, tagged ``hvc1``; docs/h265.md), whose transcode
            fallback is ``hevc_fallback_profile``.
        merge_short_gops: in copy mode, merge 1-2 s GOPs into ~4 s fragments with
            ``-min_frag_duration`` (one extra restart once the GOP has been measured).
        backoff_initial_s, backoff_max_s, backoff_jitter: the restart schedule (restart.py).
        reachability_poll_s: while the camera refuses connections, try a TCP connect this often
            and restart at once when it accepts (0 disables).
        silence_timeout_s: kill ffmpeg when no keyframe (fragment) came for this long...
        startup_timeout_s: ...or, before the first output of a run, this long.
        stop_timeout_s: SIGTERM grace before SIGKILL.
    """

    source: Source
    profile: str = "copy"
    settings: RecordingSettings = field(default_factory=RecordingSettings)
    name: str = "camera"
    fallback_profile: str = "libx264"
    transcode_fallback: bool = False
    record_codec: Literal["h264", "hevc"] = "h264"
    hevc_fallback_profile: str = "libx265"
    merge_short_gops: bool = True
    ffmpeg_bin: str = "ffmpeg"
    # The ffmpeg a run of a copy profile uses (the App's ``copy_ffmpeg``, e.g. the image's build
    # for copying); a transcoding run, a fallback from copy included, and a pipeline that feeds
    # the detector (``detect``: it decodes and scales frames) always use ``ffmpeg_bin``.
    copy_ffmpeg_bin: str | None = None
    profiles: Mapping[str, Profile] | None = None  # None: load_profiles()
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    backoff_jitter: float = 0.2
    reachability_poll_s: float = 2.0
    silence_timeout_s: float = 10.0
    startup_timeout_s: float = 20.0
    stop_timeout_s: float = 3.0
    prebuffer_serve_ms: int = 8000  # the longest prebuffer request served in full (Prebuffer.serve_ms)
    prebuffer_max_bytes: int = 32 * 1024 * 1024
    stderr_burst: int = 10  # stderr lines logged at once before rate limiting...
    stderr_refill_s: float = 6.0  # ...then one more line per this many seconds
    #: A second output with small gray frames for the motion detector (media/frames.py),
    #: handed to :attr:`MediaPipeline.on_frame`. The recording output is unchanged by it.
    detect: DetectOutput | None = None
