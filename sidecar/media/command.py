"""Build the ffmpeg argv for one camera run, with ffmpeg-python's ``.compile()``.

ffmpeg-python 0.2.0 is used only to assemble the command line; its quirks are worked around
here and pinned by tests on the argv:

* ``run_async`` is a blocking ``subprocess.Popen``: never used; the supervisor runs the argv
  with ``asyncio.create_subprocess_exec``.
* It sorts keyword options alphabetically: harmless, because every option we pass is keyed by
  name (ffmpeg does not care about the order of options of one input or output) and the stream
  order is fixed by the ``-map`` selectors, which it keeps in order.
* ``global_args`` land after the output name: instead the global options are passed in the
  ``cmd`` prefix (``compile(cmd=[ffmpeg, ...globals])``) so they come first.
* ``video_size=(w, h)`` crashes on Python >= 3.10 (``collections.Iterable``): sizes are always
  written as ``"WxH"`` strings.

What every command has, whatever the profile (HKSV needs it; a profile cannot remove it):
``-f mp4 -movflags frag_keyframe+empty_moov+default_base_moof+skip_sidx+skip_trailer pipe:1``,
video first (track 1), audio AAC second or absent. H.265 video (an HEVC encoder, or copy of a
source known to send H.265) is tagged ``-tag:v hvc1``: ffmpeg's default sample entry is ``hev1``,
which a hub refuses (docs/h265.md); with ``hvc1`` the parameter sets live in ``hvcC``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import ffmpeg

from .frames import DetectOutput
from .profiles import Profile
from .settings import RecordingSettings
from .sources import Source

__all__ = ["MOVFLAGS", "AudioMode", "FfmpegCommand", "build_command"]

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_sidx+skip_trailer"
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning")


class AudioMode(enum.Enum):
    SOURCE = "source"  # encode the source's first audio stream (mapped optionally: "0:a:0?")
    SILENT = "silent"  # the source has none: a generated silent track (anullsrc)
    NONE = "none"  # recording audio is off: no audio track at all


@dataclass(frozen=True, slots=True)
class FfmpegCommand:
    """A ready-to-run argv and what it was built from (shown on the status page)."""

    argv: tuple[str, ...]
    profile: Profile
    settings: RecordingSettings
    audio: AudioMode
    #: Settings the profile does not honour (copy mode: everything but audio).
    ignored: tuple[str, ...]


def build_command(
    source: Source,
    profile: Profile,
    settings: RecordingSettings,
    *,
    source_has_audio: bool | None = None,
    min_frag_duration_us: int | None = None,
    ffmpeg_bin: str = "ffmpeg",
    loglevel: str = "warning",
    detect: DetectOutput | None = None,
    detect_target: str | None = None,
    source_hevc: bool = False,
) -> FfmpegCommand:
    """The argv for one run of ``source`` through ``profile`` at ``settings``.

    Args:
        source_has_audio: what the source is known to deliver; ``None`` maps its audio
            optionally (``0:a:0?``), which costs nothing when it has none, and the pipeline
            switches to a silent track once the init segment shows no audio.
        min_frag_duration_us: merge short GOPs (copy mode) into longer fragments.
        detect, detect_target: a second output with small gray frames for the motion detector
            (``pipe:<fd>``, see :class:`~sidecar.media.frames.FramePipe`). It decodes the
            camera's video; the recording output stays as it is (``copy`` stays ``copy``).
        source_hevc: the source is known to send H.265, so copy mode tags it ``hvc1`` (ffmpeg
            refuses that tag on H.264, so it is only added when the source's codec is known).
    """
    if profile.is_copy and source.must_encode:
        raise ValueError(f"source {source.describe()!r} has no H.264 to copy; use a transcoding profile")
    inputs = source.inputs()
    streams = []
    for index, spec in enumerate(inputs):
        opts: dict[str, str | None] = dict(spec.options)
        if index == 0:
            # The profile's input options (hardware decoding...) apply to the camera input; the
            # source's own options (timeouts, looping) win on a clash.
            opts = {**profile.render_input(settings), **opts}
        streams.append(ffmpeg.input(spec.url, **opts))

    if settings.audio:
        known = source.known_audio if source_has_audio is None else source_has_audio
        audio = AudioMode.SILENT if known is False else AudioMode.SOURCE
    else:
        audio = AudioMode.NONE

    mapped = [streams[0]["v:0"]]
    if audio is AudioMode.SOURCE:
        # The demo's tone is its second input; a camera's audio is in the first.
        mapped.append(streams[1]["a:0"] if len(streams) > 1 else streams[0]["a:0?"])
    elif audio is AudioMode.SILENT:
        layout = "mono" if settings.audio_channels == 1 else "stereo"
        silent = ffmpeg.input(
            f"anullsrc=channel_layout={layout}:sample_rate={settings.audio_sample_rate}", f="lavfi"
        )
        mapped.append(silent["a:0"])

    out: dict[str, str | None] = {}
    if profile.is_copy:
        out["c:v"] = "copy"
    else:
        vf, vopts = profile.render_video(settings)
        out["c:v"] = profile.video_codec
        if vf:
            out["filter:v"] = vf
        out.update(vopts)
    if profile.encodes_hevc or (profile.is_copy and source_hevc):
        out["tag:v"] = "hvc1"
    if audio is AudioMode.NONE:
        out["an"] = None
    else:
        out["c:a"] = profile.audio_codec
        out.update(profile.render_audio(settings))
    # Output is bounded by the video: the generated silent track never ends on its own.
    if audio is AudioMode.SILENT:
        out["shortest"] = None
    out["max_muxing_queue_size"] = "1024"
    out["f"] = "mp4"
    out["movflags"] = MOVFLAGS
    if min_frag_duration_us:
        out["min_frag_duration"] = str(int(min_frag_duration_us))

    node = ffmpeg.output(*mapped, "pipe:1", **out)
    if detect is not None and detect_target is not None:
        options = detect.output_options()
        if "hwaccel_output_format" in profile.render_input(settings):
            # Hardware decoding leaves frames on the GPU: bring them back before scaling to gray.
            options["filter:v"] = f"hwdownload,format=nv12,{options['filter:v']}"
        node = ffmpeg.merge_outputs(node, ffmpeg.output(streams[0]["v:0"], detect_target, **options))
    prefix = [ffmpeg_bin, *GLOBAL_ARGS]
    if loglevel != "warning":
        prefix[prefix.index("warning")] = loglevel
    argv = tuple(str(a) for a in node.compile(cmd=prefix))
    return FfmpegCommand(argv, profile, settings, audio, profile.unhonoured())
