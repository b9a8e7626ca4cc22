"""What a source delivers, read from an fMP4 init segment (and, for fps, a few fragments).

In copy mode the pipeline's own init segment describes the camera's stream exactly, so the
probe is free. For a transcoding pipeline, :func:`probe_source` runs a short copy-mode ffmpeg
of its own that exits as soon as it has the init segment and one fragment. Its stderr is kept
(masked) so a failed probe says why: "connection refused", not "no init segment".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from .command import MOVFLAGS
from .fmp4 import Fmp4Reader
from .fmp4_boxes import Fmp4Error
from .runner import FfmpegRun
from .segments import Fragment, InitSegment
from .sources import Source, SourceKind

__all__ = ["ProbeError", "SourceProbe", "probe_from_init", "probe_source"]

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


class ProbeError(Exception):
    """The probe learned nothing; the message says why in words, the URL masked."""


async def probe_source(source: Source, *, ffmpeg_bin: str = "ffmpeg", timeout_s: float = 15.0) -> SourceProbe:
    """Run a short copy-mode ffmpeg on ``source`` and describe what it delivers.

    Reads until the init segment and the first complete fragment (so the frame rate is known),
    then stops ffmpeg. Raises :class:`ProbeError` with the cause from ffmpeg's stderr
    ("connection refused", "401 unauthorized: check the user and password") when there is no
    init segment within ``timeout_s``, and :class:`Fmp4Error` if the output is unreadable.
    """
    if source.kind is SourceKind.DEMO:
        w, h = source.demo_size
        return SourceProbe("rawvideo", w, h, float(source.demo_fps), None, None, True)
    spec = source.inputs()[0]
    argv = [ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]
    argv += spec.argv()
    argv += ["-map", "0:v:0", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "aac",
             "-f", "mp4", "-movflags", MOVFLAGS, "pipe:1"]
    reader = Fmp4Reader()
    init: InitSegment | None = None
    fragment: Fragment | None = None
    bad: Fmp4Error | None = None

    async def consume(stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
        nonlocal init, fragment, bad
        while chunk := await stdout.read(1 << 16):
            try:
                events = reader.feed(chunk)
            except Fmp4Error as exc:
                bad = exc
                return f"unreadable output: {exc}"
            for event in events:
                run.progress()
                if isinstance(event, InitSegment):
                    init = event
                else:
                    fragment = event
                    return "probe complete"
        return None

    run = FfmpegRun(argv, name=f"probe {source.describe()}", consume=consume, startup_timeout_s=timeout_s,
                    stall_timeout_s=timeout_s, startup_message="no video from the source within {s} s",
                    stall_message="no keyframe for {s} s", stop_timeout_s=2.0)
    result = await run.run()
    if bad is not None:
        raise bad
    if init is None:
        raise ProbeError(f"{source.describe()}: {result.reason}")
    primary = fragment.tracks[0] if fragment is not None and fragment.tracks else None
    fps = primary.sample_count / fragment.duration_s if primary and fragment and fragment.duration_s > 0 else None
    return probe_from_init(init, fps=fps)
