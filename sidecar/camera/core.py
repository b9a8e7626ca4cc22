"""One camera's HKSV rules, decided without I/O: :class:`CameraCore`.

It is fed what happens to the camera: characteristic writes from hubs, probe results,
pairing notices, the recording ffmpeg's state, recordings opening and ending, motion, and
``now``. It answers with actions for the adapter (:class:`~sidecar.camera.camera.Camera`) to
carry out, in order, and :meth:`CameraCore.next_deadline` says when to call
:meth:`CameraCore.timer`. The rules, all here:

* **Operating modes.** HomeKitCameraActive, the recording and streaming switches and the
  snapshot switches are kept in the state file (a restart never turns recording off);
  MotionSensor StatusActive follows HomeKitCameraActive; live view is allowed while the
  camera and streaming are both on. The four camera states of the Home app are
  :attr:`CameraSettings.mode_name`.
* **Recording gate** (asked by HDS before it accepts an ``open``): recording on and the camera
  on, else NOT_ALLOWED (1); one recording at a time (BUSY, 2, is decided by HDS from the stream
  it runs); a selection, else INVALID_CONFIGURATION (9).
* **Switched off.** HomeKitCameraActive or recording Active going to 0 (or a factory reset)
  during a recording closes it with NOT_ALLOWED (1) (docs/protocol.md §dataSend reasons).
* **Selection** validated and persisted by :class:`~sidecar.camera.recording.offer.RecordingOffer`;
  a new one (or recording audio switched) reconfigures the pipeline.
* **Keep-warm.** ffmpeg runs while the camera is on and, unless kept warm, recording is on;
  never for an unpaired camera, except that the built-in detector's frames come from it.
* **Snapshots** follow the operating modes (:func:`~sidecar.camera.settings.snapshot_refusal`).
* **Motion** from any source, with a trigger's auto-reset as a deadline.
* **No restart of the sidecar's own ends a recording.** An ffmpeg restart the sidecar wants for
  itself (merging short GOPs, a silent audio track, the transcode fallback, a new selection)
  would give the next run a new init segment, which a clip in flight cannot take. While a hub
  is recording, such a restart waits; the recording's end releases it
  (:class:`ReleaseRestart`). Only the user's own "restart ffmpeg" does not wait.
* **Recording codec** (``record_codec``): under ``auto``, two H.265 recordings in a row that hubs
  end abnormally switch the pipeline to H.264 (:class:`~sidecar.camera.recording.codec_choice.CodecChoice`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..hap import HapStatus, PairingNotice
from ..hds import CloseReason
from ..media import PipelineEvent, RecordingSettings, SourceProbe
from .events import (
    CameraEvent,
    DoorbellPressed,
    MotionChanged,
    MotionSource,
    PairingChanged,
    PipelineChanged,
    RecordingEnded,
    RecordingOpened,
    SetupCodeRejected,
)
from .motion import MotionState
from .recording.codec_choice import CodecChoice
from .recording.configuration import MIN_PREBUFFER_MS, RecordingSelection
from .recording.offer import RecordingOffer
from .settings import CameraSettings, snapshot_refusal
from .spec import CameraSpec
from .status import short_controller_id

__all__ = [
    "Action",
    "CameraCore",
    "CloseRecording",
    "Emit",
    "Persist",
    "Reconfigure",
    "ReleaseRestart",
    "SetCharacteristic",
    "SetLiveEnabled",
    "SetRecordCodec",
    "UpdatePipeline",
    "keep_warm_mode",
    "recording_settings",
]

log = logging.getLogger(__name__)


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SetCharacteristic:
    """Give the characteristic named as in :class:`~sidecar.camera.services.CameraServices` a
    value; ``notify``: tell subscribed hubs (False while the accessory's values are first set)."""

    name: str
    value: Any
    notify: bool = True


@dataclass(frozen=True, slots=True)
class Persist:
    """The accessory's state (settings, selection, probe) changed: save the state file."""


@dataclass(frozen=True, slots=True)
class UpdatePipeline:
    """Whether ffmpeg (and a separate detector feed) should run may have changed: run it exactly
    when :attr:`CameraCore.pipeline_wanted` (and the feed when :attr:`CameraCore.detect_feed_wanted`)."""


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """The recording settings changed: give the pipeline :meth:`CameraCore.recording_settings`."""


@dataclass(frozen=True, slots=True)
class CloseRecording:
    """Close the recording in progress with ``reason``; ``detail`` says why in words."""

    reason: CloseReason
    detail: str


@dataclass(frozen=True, slots=True)
class ReleaseRestart:
    """The recording that held an ffmpeg restart ended: carry the restart out now."""

    reason: str


@dataclass(frozen=True, slots=True)
class SetLiveEnabled:
    """Whether live view may run (sessions end when it may not)."""

    enabled: bool


@dataclass(frozen=True, slots=True)
class Emit:
    """Tell the camera's observers (status page, MQTT, the parent process)."""

    event: CameraEvent


@dataclass(frozen=True, slots=True)
class SetRecordCodec:
    """Tell the pipeline what the recordings carry from now on (``auto`` falling back to H.264)."""

    codec: str  # "h264" or "hevc"
    reason: str


Action = (SetCharacteristic | Persist | UpdatePipeline | Reconfigure | CloseRecording | SetLiveEnabled | Emit
          | ReleaseRestart | SetRecordCodec)


# -- policies as functions ------------------------------------------------------------------------
def keep_warm_mode(keep_warm: str, copy: bool) -> str:
    """``always`` (ffmpeg runs whenever the camera is on) or ``recording`` (only while recording
    is on too); ``auto`` is ``always`` for copy mode, ``recording`` otherwise."""
    if keep_warm != "auto":
        return keep_warm
    return "always" if copy else "recording"


def recording_settings(selection: RecordingSelection | None, *, audio: bool, copy: bool) -> RecordingSettings:
    """What the recording ffmpeg encodes for ``selection`` (iframes at most 4 s apart)."""
    if selection is None or copy:
        # Copy mode's output never depends on the selection (the camera's video, our fixed
        # AAC): a selection write then restarts nothing.
        return RecordingSettings(audio=audio)
    return RecordingSettings(
        width=selection.width, height=selection.height, fps=selection.fps, bitrate_kbps=selection.bitrate_kbps,
        profile=selection.profile.ffmpeg, level=selection.level.ffmpeg,
        iframe_interval_ms=min(selection.iframe_ms, 4000), audio=audio,
        audio_bitrate_kbps=max(16, min(selection.audio_bitrate_kbps or 64, 128)),
        audio_sample_rate=selection.sample_rate.hz, audio_channels=selection.audio_channels)


def advertise(offer: RecordingOffer) -> list[Action]:
    """The recording configurations we support, as the characteristics that advertise them."""
    supported = offer.supported
    return [SetCharacteristic("supported_camera", supported.camera_tlv()),
            SetCharacteristic("supported_video", supported.video_tlv()),
            SetCharacteristic("supported_audio", supported.audio_tlv())]


def settings_to_characteristics(spec: CameraSpec, st: CameraSettings) -> list[Action]:
    """The stored operating modes as the characteristics' first values (no notifications)."""
    values: dict[str, Any] = {
        "recording_active": st.recording_active, "recording_audio_active": st.recording_audio_active,
        "homekit_active": st.homekit_active, "event_snapshots": st.event_snapshots,
        "periodic_snapshots": st.periodic_snapshots, "rtp_active": st.rtp_active,
        "motion_status_active": bool(st.homekit_active)}
    actions: list[Action] = [SetCharacteristic(name, value, notify=False) for name, value in values.items()]
    actions.append(SetLiveEnabled(bool(st.rtp_active and st.homekit_active)))
    if spec.operating_mode_indicator:
        actions.append(SetCharacteristic("indicator", st.indicator, notify=False))
    if spec.night_vision:
        actions.append(SetCharacteristic("night_vision", st.night_vision, notify=False))
    return actions


_FLAGS = ("indicator", "night_vision")  # stored as bool; the other writes as the hub sent them


class CameraCore:
    """The rules of one camera (see the module docstring). Sans-IO: feed it, act on the answer."""

    def __init__(self, spec: CameraSpec, app: dict[str, Any], *, copy: bool, paired: bool) -> None:
        self.spec = spec
        self.name = spec.name
        self.app = app  # the accessory state's application part: settings and probe live here
        self.copy = copy  # the pipeline's profile copies the camera's video
        self.paired = paired
        self.settings = CameraSettings.load(app)
        self.offer = RecordingOffer(spec.name, app, self.settings, copy=copy, prebuffer_ms=spec.prebuffer_ms,
                                    hevc=spec.record_codec != "h264", advertise_hevc=spec.advertise_hevc,
                                    doorbell=spec.doorbell)
        self.motion = MotionState()
        self.recording: int | None = None  # the stream id of the recording in progress
        self.recordings = 0
        self.restart_held: str | None = None  # why an ffmpeg restart waits for the recording's end
        self.codec = CodecChoice(spec.record_codec)

    @property
    def selection(self) -> RecordingSelection | None:
        return self.offer.selection

    @property
    def prebuffer_ms(self) -> int:
        """The prebuffer every recording is sent: the hub's selection, or, while none is stored,
        the least a hub may select. The camera keeps only what a request for it reaches in
        memory, not the most it advertises: hubs select 4000 ms (docs/scaling.md, "The prebuffer
        ring")."""
        sel = self.selection
        return sel.prebuffer_ms if sel is not None else MIN_PREBUFFER_MS

    # -- start ----------------------------------------------------------------------------------
    def startup(self) -> list[Action]:
        """The accessory's first values: the stored selection, what we advertise, the settings."""
        actions: list[Action] = [Persist()] if self.offer.load_selection() else []
        return actions + advertise(self.offer) + settings_to_characteristics(self.spec, self.settings)

    # -- characteristic writes --------------------------------------------------------------------
    def write(self, name: str, value: Any) -> list[Action]:
        """A hub wrote the characteristic ``name`` (as in CameraServices). A selection that is
        not one we offered raises HapError(-70410), which HAP answers with."""
        if name == "selection":
            if not self.offer.select(value):
                return []
            sel = self.offer.selection
            assert sel is not None
            log.info("%s: hub selected %dx%d@%d %d kbps, prebuffer %d ms, audio %s", self.name, sel.width,
                     sel.height, sel.fps, sel.bitrate_kbps, sel.prebuffer_ms,
                     "on" if self.settings.recording_audio_active else "off")
            return [Persist(), Reconfigure()]
        if name in ("event_snapshots", "periodic_snapshots") or name in _FLAGS:
            return self._update(**{name: bool(value) if name in _FLAGS else value})
        if name == "rtp_active":
            return [*self._update(rtp_active=value), SetLiveEnabled(bool(value and self.settings.homekit_active))]
        if getattr(self.settings, name) == value:
            return []
        actions = self._update(**{name: value})
        if name == "recording_audio_active":
            return [*actions, Reconfigure()]
        if name == "recording_active":
            log.info("%s: recording %s (%s)", self.name, "on" if value else "off", self.settings.mode_name)
            what = "recording was switched off"
        else:  # homekit_active
            actions += [SetCharacteristic("motion_status_active", bool(value)),
                        SetLiveEnabled(bool(value and self.settings.rtp_active))]
            what = "the camera was switched off"
        if not value and self.recording is not None:
            actions.append(CloseRecording(CloseReason.NOT_ALLOWED, what))
        return [*actions, UpdatePipeline()]

    def _update(self, **changes: Any) -> list[Action]:
        for key, value in changes.items():
            setattr(self.settings, key, value)
        self.settings.store(self.app)
        return [Persist()]

    def factory_reset(self) -> list[Action]:
        """The last admin was removed: settings back to their defaults, no selection."""
        self.settings.factory_reset()
        self.offer.forget_selection()
        self.settings.store(self.app)
        actions: list[Action] = [Persist(), *settings_to_characteristics(self.spec, self.settings)]
        if self.recording is not None:
            actions.append(CloseRecording(CloseReason.NOT_ALLOWED, "the accessory was reset"))
        return [*actions, UpdatePipeline()]

    # -- probes, pairings, the pipeline -----------------------------------------------------------
    def probed(self, probe: SourceProbe, *, copy: bool) -> list[Action]:
        """The source was probed: advertise what it delivers (the selection goes if that changed).
        ``copy``: whether the pipeline's profile copies now (a transcode fallback changes it)."""
        self.copy = self.offer.copy = copy
        save, changed = self.offer.probed(probe)
        return ([Persist()] if save else []) + (advertise(self.offer) if changed else [])

    def pairing(self, notice: PairingNotice) -> list[Action]:
        """A controller paired, was removed, or failed to prove itself."""
        self.paired = notice.paired
        who = short_controller_id(notice.controller_id)
        if notice.kind in ("added", "removed"):
            log.info("%s: pairing %s: controller %s (%s)", self.name, notice.kind, who,
                     "admin" if notice.admin else "not admin")
            return [Emit(PairingChanged(camera=self.name, paired=notice.paired, added=notice.kind == "added",
                                        controller=who, admin=notice.admin)),
                    UpdatePipeline()]  # keep-warm follows the pairing
        if notice.kind == "setup_failed":
            log.warning("%s: wrong setup code from a controller (%d failed attempt(s); HomeKit allows 100)",
                        self.name, notice.failed_attempts)
            return [Emit(SetupCodeRejected(camera=self.name, failed_attempts=notice.failed_attempts))]
        log.info("%s: pair-verify failed (an unknown or removed controller)", self.name)
        return []

    def pipeline_event(self, event: PipelineEvent, *, copy: bool) -> list[Action]:
        """The recording ffmpeg's state, for observers; ``copy`` as for :meth:`probed`."""
        self.copy = self.offer.copy = copy
        return [Emit(PipelineChanged(camera=self.name, state=event.state, error=event.error,
                                     exit_code=event.exit_code, restart_in_s=event.restart_in_s))]

    def keep_warm_mode(self) -> str:
        """``always`` or ``recording``: the spec's ``keep_warm`` with ``auto`` resolved."""
        return keep_warm_mode(self.spec.keep_warm, self.copy)

    @property
    def pipeline_wanted(self) -> bool:
        """ffmpeg runs while the camera is on and, unless kept warm, recording is on."""
        if not self.settings.homekit_active:
            return False
        if self.spec.detect is not None and self.spec.detect_source is None:
            return True  # the detector's frames come from this ffmpeg: "Detect Activity"
        if not self.paired:
            return False  # no hub yet to record for: no ffmpeg, no CPU, no connection to the camera
        return self.keep_warm_mode() == "always" or bool(self.settings.recording_active)

    @property
    def detect_feed_wanted(self) -> bool:
        """A separate detector ffmpeg (``detect_source``) runs whenever the camera is on."""
        return bool(self.settings.homekit_active)

    def recording_settings(self) -> RecordingSettings:
        return recording_settings(self.selection, audio=bool(self.settings.recording_audio_active), copy=self.copy)

    # -- recordings (the OpenGate HDS asks, then the stream's life) ---------------------------------
    def recording_active(self) -> bool:
        return bool(self.settings.recording_active)

    def camera_active(self) -> bool:
        return bool(self.settings.homekit_active)

    def has_selected_configuration(self) -> bool:
        return self.selection is not None

    def recording_opened(self, stream_id: int) -> list[Action]:
        """HDS accepted an open: this is the recording in progress."""
        self.recording = stream_id
        self.recordings += 1
        sel = self.selection
        chosen = None if sel is None else (f"{sel.width}x{sel.height}@{sel.fps} {sel.bitrate_kbps} kbps, "
                                           f"prebuffer {sel.prebuffer_ms} ms")
        return [Emit(RecordingOpened(camera=self.name, stream_id=stream_id, selection=chosen))]

    def recording_ended(self, event: RecordingEnded) -> list[Action]:
        if self.recording == event.stream_id:
            self.recording = None
        actions: list[Action] = [Emit(event)]
        fell_back = self.codec.recording_ended(event)
        if fell_back is not None:
            actions.append(SetRecordCodec("h264", fell_back))
        if self.recording is None and self.restart_held is not None:
            actions.append(ReleaseRestart(self.restart_held))
            self.restart_held = None
        return actions

    def restart_wanted(self, reason: str) -> bool:
        """The pipeline wants to restart ffmpeg for a reason of its own: True to go ahead now;
        False while a hub is recording, and the recording's end answers :class:`ReleaseRestart`."""
        if self.recording is None:
            return True
        self.restart_held = reason if self.restart_held is None else f"{self.restart_held}; {reason}"
        return False

    def snapshot_refusal(self, reason: int | None) -> HapStatus | None:
        """None when a snapshot may be taken now, else the HAP status to refuse it with."""
        return snapshot_refusal(self.settings, reason)

    # -- motion -----------------------------------------------------------------------------------
    def set_motion(self, active: bool, source: MotionSource, now: float,
                   auto_reset_s: float | None = None) -> list[Action]:
        """Raise or clear motion (hubs open a recording when they see it rise)."""
        changed = self.motion.set(active, source, now, auto_reset_s)
        if not changed:
            return []
        log.info("%s: motion %s (%s)", self.name, "detected" if active else "cleared", source)
        return [SetCharacteristic("motion", active),
                Emit(MotionChanged(camera=self.name, active=active, source=source))]

    def ring(self, source: MotionSource, now: float) -> list[Action]:
        """A doorbell press: the press event, and motion too (hubs never select the doorbell trigger)."""
        actions: list[Action] = []
        if self.spec.doorbell:
            actions += [SetCharacteristic("doorbell_press", 0), Emit(DoorbellPressed(camera=self.name, source=source))]
        return actions + self.set_motion(True, "doorbell", now, self.spec.motion_timeout_s or None)

    def next_deadline(self) -> float | None:
        """When :meth:`timer` must run next (monotonic seconds), or None."""
        return self.motion.reset_at

    def timer(self, now: float) -> list[Action]:
        """Run whatever deadline is due: a trigger's motion clears itself."""
        if self.motion.due(now):
            return self.set_motion(False, "timeout", now)
        return []
