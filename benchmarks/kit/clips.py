"""The synthetic camera clip the pipeline benchmarks feed: ffmpeg's moving test pattern in H.264
(or H.265) at a fixed bitrate with keyframes at exact intervals (no scene-cut keyframes, no
B-frames, closed GOPs), the way a camera sends it, optionally with AAC audio."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_pattern_clip(path: Path, *, width: int, height: int, fps: int, seconds: float, kbps: int, gop_s: float,
                      audio: bool = False, preset: str = "ultrafast", h264_profile: str | None = None,
                      codec: str = "libx264") -> Path:
    """Write the clip to ``path`` (its suffix picks the container) and return ``path``.

    ``codec="libx265"`` makes the same clip in H.265 (sample entry ``hvc1``, what a hub that
    records H.265 needs), with the same keyframe and rate-control settings."""
    gop = str(round(gop_s * fps))
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=32000"]
    args += ["-t", str(seconds), "-c:v", codec, "-preset", preset]
    if h264_profile is not None:
        args += ["-profile:v", h264_profile]
    args += ["-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k"]
    if codec == "libx265":
        args += ["-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0:log-level=error",
                 "-tag:v", "hvc1", "-pix_fmt", "yuv420p"]
    else:
        args += ["-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "32k", "-ac", "1"]
    subprocess.run([*args, str(path)], check=True)
    return path
