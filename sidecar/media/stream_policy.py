"""Which ffmpeg command a camera needs, judged from what ffmpeg produces: a sans-IO core.

The pipeline (:mod:`.pipeline`) runs ffmpeg and feeds this object what each run produced: the
init segment, then every fragment. It answers with actions, in the order they apply:
:class:`Notice` (words for the user's log) and :class:`Restart` (run ffmpeg again; the action
carries the command the next run will use, and says which rule asked for it, so a rule about
restarts the sidecar makes on its own has one place to look). The rules:

* A source with no H.264 to copy (the demo pattern) never runs the copy profile.
* Audio: recording audio is on but the source has no audio track, or announces one and sends no
  samples for three fragments in a row: run again with a silent track, because an audio track
  without samples spoils the recording (docs/field-lessons.md #6).
* Copy mode, an H.265 camera and ``record_codec: hevc``: the camera's H.265 is kept, tagged
  ``hvc1`` (one restart when ffmpeg's first run wrote its default ``hev1``), and an init segment a
  hub would refuse is named in the log (docs/h265.md).
* Copy mode, video that is not H.264 (nor H.265 recorded as such), or fragments longer than 4 s or not starting on a
  keyframe: say what to change on the camera; with ``transcode_fallback``, switch to the
  fallback profile (docs/media.md §Copy mode: what the camera must do).
* Copy mode, keyframes every 1-2 s: merge them into ~4 s fragments with ``-min_frag_duration``
  (once, after the measuring run; docs/field-lessons.md #5).
* Copy mode with ``copy_ffmpeg`` (a build that can only copy, docs/scaling.md): a run that ended
  before its first segment because that build lacks what this camera needs (a protocol, a
  format, a filter: ffmpeg's own words in its stderr) makes the camera run the full ffmpeg from
  then on, with a warning that names the missing part (:meth:`StreamPolicy.run_ended`).

No clock: every rule counts fragments or reads the stream's own timestamps
(:class:`~.keyframes.KeyframeMonitor`), so the tests feed synthetic init segments and fragments.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .command import AudioMode, FfmpegCommand, build_command
from .hevc_recording import init_problems
from .keyframes import GopVerdict, KeyframeMonitor
from .pipeline_config import PipelineConfig
from .profiles import Profile
from .segments import Fragment, InitSegment
from .settings import RecordingSettings

__all__ = ["Action", "Notice", "ReconfigureResult", "Restart", "RestartCause", "StreamPolicy"]

#: Fragments in a row without audio samples before the source counts as sending no audio.
SILENT_FRAGMENTS = 3
#: The detector pipe in argv built between runs (each run's real pipe number differs).
DETECT_PLACEHOLDER = "pipe:detect"
#: What ffmpeg (5.1 to 9.0) prints when the build lacks a part the command needs, rather than
#: anything about the camera: an unknown protocol, input format, filter, bitstream filter, codec
#: or option. tests/docker/test_image.py checks the image's copy build says it in these words.
BUILD_LACKS = re.compile(
    r"Protocol not found|Unknown input format|No such filter|Unknown bitstream filter|Unrecognized option"
    r"|Option \S+ not found|Unknown (?:de|en)coder|(?:De|En)coder (?:\(codec \S+\) |\S+ )?not found",
    re.IGNORECASE)


class RestartCause(enum.Enum):
    """The rule that asked for another ffmpeg run."""

    SILENT_AUDIO = "silent-audio"  # the source has no audio, or sends none: a silent track
    TRANSCODE = "transcode"  # copy mode cannot serve HomeKit: the fallback profile
    MERGE_GOPS = "merge-gops"  # short GOPs: longer fragments with -min_frag_duration
    HVC1 = "hvc1"  # an H.265 camera copied as H.265: tag the sample entry hvc1, not hev1


@dataclass(frozen=True, slots=True)
class Restart:
    """Run ffmpeg again with ``command`` (its detector pipe a placeholder until the run starts)."""

    cause: RestartCause
    reason: str  # in words, for the log
    command: FfmpegCommand


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should read in the log."""

    text: str
    warning: bool = False  # else information


Action = Notice | Restart


@dataclass(frozen=True, slots=True)
class ReconfigureResult:
    """What :meth:`MediaPipeline.reconfigure <sidecar.media.pipeline.MediaPipeline.reconfigure>` did."""

    restarted: bool
    ignored: tuple[str, ...]  # settings the profile cannot honour (copy: the camera's own)
    message: str


class StreamPolicy:
    """The command for the next run, and the rules that change it (see the module doc).

    Args:
        config: the camera's pipeline configuration.
        profiles: the encoding profiles by name (loaded by the caller).

    Raises:
        KeyError: ``config.profile`` is not among ``profiles``.
    """

    def __init__(self, config: PipelineConfig, profiles: Mapping[str, Profile]) -> None:
        if config.profile not in profiles:
            raise KeyError(f"unknown ffmpeg profile {config.profile!r} (have {sorted(profiles)})")
        self.config = config
        self._profiles = profiles
        #: What the recordings carry; the camera may switch it to h264 (record_codec auto).
        self.record_codec = config.record_codec
        self.profile_name = config.profile
        if profiles[config.profile].is_copy and config.source.must_encode:
            self.profile_name = self.fallback_profile
        self.settings = config.settings
        self.source_has_audio: bool | None = config.source.known_audio
        self.min_frag_us: int | None = None
        self.monitor = KeyframeMonitor()
        self.warning: str | None = None  # what the user should change, while it applies
        self.command: FfmpegCommand | None = None  # the current run's
        self._init: InitSegment | None = None  # the current run's
        self._silent_fragments = 0
        self._warned_verdict: GopVerdict | None = None
        #: Learned from the first init segment: the camera sends H.265 (copy mode tags it hvc1).
        self.source_hevc = False
        #: ``copy_ffmpeg_bin`` could not read this camera: every run uses ``ffmpeg_bin``.
        self.copy_build_refused = False

    @property
    def fallback_profile(self) -> str:
        """The transcoding profile for this camera's codec choice."""
        if self.record_codec == "hevc":
            return self.config.hevc_fallback_profile
        return self.config.fallback_profile

    @property
    def ffmpeg_bin(self) -> str:
        """The ffmpeg for the profile in use: a copy profile may run a build that can only copy
        (``copy_ffmpeg_bin``), so a transcode fallback goes back to the full one, and so does a
        pipeline that also decodes frames for the built-in detector (``detect``)."""
        if (self.profile.is_copy and self.config.copy_ffmpeg_bin and self.config.detect is None
                and not self.copy_build_refused):
            return self.config.copy_ffmpeg_bin
        return self.config.ffmpeg_bin

    def run_ended(self, stderr: tuple[str, ...] | list[str], progressed: bool) -> list[Action]:
        """A run ended; ``stderr`` is its last lines (masked), ``progressed`` whether it produced
        any segment. A run of ``copy_ffmpeg_bin`` that produced none and whose ffmpeg said it
        lacks a part (:data:`BUILD_LACKS`) switches this camera to ``ffmpeg_bin`` for good: the
        answer is a warning to log, and the caller starts the next run at once (the source
        is not at fault, so no back-off). Anything else: no action."""
        if progressed or self.command is None or self.command.argv[0] != self.config.copy_ffmpeg_bin:
            return []
        said = next((line for line in reversed(stderr) if BUILD_LACKS.search(line)), None)
        if said is None:
            return []
        self.copy_build_refused = True
        return [Notice(f"copy_ffmpeg ({self.config.copy_ffmpeg_bin}) cannot read this camera ({said}); its "
                       f"recordings run {self.config.ffmpeg_bin} from now on (set copy_ffmpeg: "
                       f"{self.config.ffmpeg_bin} to start with it)", warning=True)]

    @property
    def profile(self) -> Profile:
        """The profile in use (it changes on a transcode fallback)."""
        return self._profiles[self.profile_name]

    def build(self, settings: RecordingSettings, detect_target: str = DETECT_PLACEHOLDER) -> FfmpegCommand:
        """The argv for ``settings`` as things stand; ``detect_target`` is the run's detector pipe
        (the default placeholder keeps argv comparable across runs)."""
        profile = self.profile
        return build_command(
            self.config.source,
            profile,
            settings,
            source_has_audio=self.source_has_audio,
            min_frag_duration_us=self.min_frag_us if profile.is_copy else None,
            ffmpeg_bin=self.ffmpeg_bin,
            detect=self.config.detect,
            detect_target=detect_target,
            source_hevc=self.source_hevc and self.record_codec == "hevc",
        )

    def start_run(self, detect_target: str = DETECT_PLACEHOLDER) -> FfmpegCommand:
        """A run begins: its command, which the rules of this run judge against."""
        self.command = self.build(self.settings, detect_target)
        self._init = None
        self._silent_fragments = 0
        return self.command

    def reconfigure(self, settings: RecordingSettings) -> tuple[ReconfigureResult, list[Action]]:
        """The hub selected ``settings``: restart only if the command line changes. A copy profile
        keeps the camera's video, so only audio on/off (and its format) can change."""
        old, new = self.build(self.settings), self.build(settings)
        self.settings = settings
        actions: list[Action] = []
        if self.profile.is_copy:
            note = (
                f"copy mode keeps the camera's stream (ignoring {', '.join(new.ignored)}); "
                "set resolution, frame rate and bitrate on the camera itself"
            )
            actions.append(Notice(note))
        else:
            note = f"{self.profile.name} encodes {settings.width}x{settings.height}@{settings.fps} " \
                   f"{settings.bitrate_kbps} kbps {settings.profile} {settings.level}"
        if old.argv == new.argv:
            return ReconfigureResult(False, new.ignored, f"no change needed; {note}"), actions
        return ReconfigureResult(True, new.ignored, f"restarting ffmpeg; {note}"), actions

    def set_record_codec(self, codec: Literal["h264", "hevc"]) -> list[Action]:
        """The camera switches what the recordings carry (``auto`` falling back to H.264): an
        H.265 camera copied, or an H.265 encoder, gives way to the H.264 fallback profile."""
        if codec == self.record_codec:
            return []
        self.record_codec = codec
        old = self.command
        if codec == "h264" and ((self.profile.is_copy and self.source_hevc) or self.profile.encodes_hevc):
            self.profile_name = self.config.fallback_profile
            return [Notice(f"recording H.264 from now on: the {self.profile_name} profile", warning=True),
                    self._restart(RestartCause.TRANSCODE, "recordings switch to H.264: transcoding")]
        new = self.build(self.settings)
        if old is not None and old.argv != new.argv:
            return [self._restart(RestartCause.TRANSCODE, f"recordings switch to {codec}")]
        return []

    # -- what ffmpeg produced ------------------------------------------------------------------

    def on_init(self, init: InitSegment) -> list[Action]:
        """The run's init segment: audio present or not, and in copy mode, the camera's codec."""
        self._init = init
        self.monitor.reset(init)
        actions: list[Action] = []
        if self.command is not None and self.command.audio is AudioMode.SOURCE:
            if self.source_has_audio is None:
                self.source_has_audio = init.has_audio
            if not init.has_audio and self.settings.audio:
                self.source_has_audio = False
                actions.append(Notice("the source has no audio; restarting with a silent track"))
                actions.append(self._restart(RestartCause.SILENT_AUDIO, "source has no audio: adding a silent track"))
        video = init.video
        if self.profile.is_copy and video is not None and video.is_hevc and self.record_codec == "hevc":
            return actions + self._check_hevc_copy(init)
        if self.profile.is_copy and (video is None or video.codec not in ("avc1", "avc3")):
            codec = video.codec if video is not None else "no video"
            self.warning = (f"the camera sends {codec}, but HomeKit records H.264 only: set the camera "
                            "to H.264 or use a transcoding profile")
            actions.append(Notice(self.warning, warning=True))
            if self._can_fall_back():
                self.profile_name = self.fallback_profile
                actions.append(self._restart(RestartCause.TRANSCODE, f"copy mode unusable ({codec}): transcoding"))
        return actions

    def on_fragment(self, fragment: Fragment) -> list[Action]:
        """One fragment of the run: its audio samples, and in copy mode, the measured GOP."""
        self.monitor.observe(fragment)
        actions = self._check_audio(fragment)
        if self.profile.is_copy:
            actions += self._check_gop()
        return actions

    # -- the rules -----------------------------------------------------------------------------

    def _restart(self, cause: RestartCause, reason: str) -> Restart:
        return Restart(cause, reason, self.build(self.settings))

    def _can_fall_back(self) -> bool:
        return self.config.transcode_fallback and self.fallback_profile in self._profiles

    def _check_hevc_copy(self, init: InitSegment) -> list[Action]:
        """An H.265 camera recorded as H.265: ``hvc1`` (one restart to tag it), and an init
        segment whose ``hvcC`` a hub could use."""
        if not self.source_hevc:
            self.source_hevc = True
            if self.command is not None and "hvc1" not in self.command.argv:
                return [self._restart(RestartCause.HVC1, "the camera sends H.265: tagging it hvc1 for HomeKit")]
        problems = init_problems(init)
        if problems:
            self.warning = "the H.265 init segment is not what HomeKit needs: " + "; ".join(problems)
            return [Notice(self.warning, warning=True)]
        return []

    def _check_audio(self, fragment: Fragment) -> list[Action]:
        """A source that announces audio but sends none would leave an empty audio track."""
        init, command = self._init, self.command
        if init is None or init.audio is None or command is None or command.audio is not AudioMode.SOURCE:
            return []
        track = fragment.track(init.audio.track_id)
        if track is not None and track.sample_count > 0:
            self._silent_fragments = 0
            return []
        self._silent_fragments += 1
        if self._silent_fragments < SILENT_FRAGMENTS or self.source_has_audio is False:
            return []
        self.source_has_audio = False
        return [Notice("the source announces audio but sends none; using a silent track", warning=True),
                self._restart(RestartCause.SILENT_AUDIO, "source sends no audio: adding a silent track")]

    def _check_gop(self) -> list[Action]:
        verdict = self.monitor.verdict
        actions: list[Action] = []
        if verdict in (GopVerdict.TOO_LONG, GopVerdict.NOT_KEYFRAME_ALIGNED):
            self.warning = self.monitor.advice()
            if self._warned_verdict is not verdict and self.warning is not None:
                self._warned_verdict = verdict
                actions.append(Notice(self.warning, warning=True))
            if self._can_fall_back():
                actions.append(Notice(f"falling back to the {self.fallback_profile} profile", warning=True))
                self.profile_name = self.fallback_profile
                reason = f"copy mode unusable ({verdict.value}): transcoding"
                actions.append(self._restart(RestartCause.TRANSCODE, reason))
        elif verdict is GopVerdict.SHORT and self.config.merge_short_gops and self.min_frag_us is None:
            suggestion = self.monitor.suggested_min_frag_duration_us()
            if suggestion:
                interval = self.monitor.measurement.keyframe_interval_s or 0
                actions.append(Notice(f"camera keyframes every {interval:.2f} s; merging them into ~4 s fragments "
                                      f"(-min_frag_duration {suggestion})"))
                self.min_frag_us = suggestion
                actions.append(self._restart(RestartCause.MERGE_GOPS, "merging short GOPs into 4 s fragments"))
        elif verdict is GopVerdict.OK:
            self.warning = None
        return actions
