"""What a source delivers, read from an fMP4 init segment (and, for fps, a few fragments).

In copy mode the pipeline's own init segment describes the camera's stream exactly, so the
probe is free. For a transcoding pipeline, :func:`probe_source` runs a short copy-mode ffmpeg
of its own that exits as soon as it has the init segment and one fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from .command import MOVFLAGS
from .fmp4 import Fmp4Error, Fmp4Reader, Fragment, InitSegment
from .sources import Source, SourceKind

__all__ = ["SourceProbe", "probe_from_init", "probe_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceProbe:
    """The source's video and audio, as the camera layer needs them to advertise and to decide
    whether copy mode can work (H.264, keyframe interval ≤ 4 s)."""

    codec: str  # sample entry four-cc ("avc1" = H.264, "hvc1"/"hev1" = H.265), or "rawvideo"
    width: int
    height: int
    fps: float | None
    h264_profile: str | None  # "baseline" / "main" / "high" / "profile_idc=N"
    h264_level: str | None  # "3.1", "4.0", ...
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    keyframe_interval_s: float | None = None

    @property
    def is_h264(self) -> bool:
        return self.codec in ("avc1", "avc3")


def probe_from_init(
    init: InitSegment,
    *,
    has_audio: bool | None = None,
    fps: float | None = None,
    keyframe_interval_s: float | None = None,
) -> SourceProbe:
    """Describe ``init``. ``has_audio`` overrides the init's audio presence (a silent track the
    pipeline added is not the source's audio)."""
    video = init.video
    audio = init.audio
    source_audio = audio is not None if has_audio is None else has_audio
    return SourceProbe(
        codec=video.codec if video else "none",
        width=video.width if video else 0,
        height=video.height if video else 0,
        fps=fps,
        h264_profile=video.profile_name if video and video.profile_idc else None,
        h264_level=video.level if video and video.level_idc else None,
        has_audio=source_audio,
        audio_codec=audio.codec if audio and source_audio else None,
        audio_sample_rate=audio.sample_rate if audio and source_audio else None,
        audio_channels=audio.channels if audio and source_audio else None,
        keyframe_interval_s=keyframe_interval_s,
    )


async def probe_source(source: Source, *, ffmpeg_bin: str = "ffmpeg", timeout_s: float = 15.0) -> SourceProbe:
    """Run a short copy-mode ffmpeg on ``source`` and describe what it delivers.

    Reads until the init segment and the first complete fragment (so the frame rate is known),
    then stops ffmpeg. Raises ``TimeoutError`` if that takes longer than ``timeout_s`` and
    :class:`Fmp4Error` if the output is unreadable.
    """
    if source.kind is SourceKind.DEMO:
        w, h = source.demo_size
        return SourceProbe("rawvideo", w, h, float(source.demo_fps), None, None, True)
    spec = source.inputs()[0]
    argv = [ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]
    argv += spec.argv()
    argv += ["-map", "0:v:0", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "aac",
             "-f", "mp4", "-movflags", MOVFLAGS, "pipe:1"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    reader = Fmp4Reader()
    init: InitSegment | None = None
    fragment: Fragment | None = None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout_s):
            while fragment is None:
                chunk = await proc.stdout.read(1 << 16)
                if not chunk:
                    break
                for event in reader.feed(chunk):
                    if isinstance(event, InitSegment):
                        init = event
                    elif fragment is None:
                        fragment = event
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
        # Drain what is left so the pipe closes, then reap.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.stdout.read(), 5.0)
        await proc.wait()
    if init is None:
        raise Fmp4Error(f"{source.describe()}: no init segment (ffmpeg exit code {proc.returncode})")
    primary = fragment.tracks[0] if fragment is not None and fragment.tracks else None
    fps = primary.sample_count / fragment.duration_s if primary and fragment and fragment.duration_s > 0 else None
    return probe_from_init(init, fps=fps)
