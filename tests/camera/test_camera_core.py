"""The camera's HKSV rules on CameraCore alone: in memory, a fake clock, no ffmpeg, no sockets.

Each test feeds the core what a hub, a probe, the HAP server or a trigger would, and checks the
actions it answers with (and what it persisted in the state's ``app`` dict).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sidecar.camera import CameraSpec
from sidecar.camera.core import (
    Action,
    CameraCore,
    CloseRecording,
    Emit,
    Persist,
    Reconfigure,
    ReleaseRestart,
    SetCharacteristic,
    SetLiveEnabled,
    UpdatePipeline,
)
from sidecar.camera.events import DoorbellPressed, MotionChanged, PairingChanged, RecordingEnded, RecordingOpened
from sidecar.camera.recording.configuration import encode_selection
from sidecar.camera.recording.session import Close, RecordingSession
from sidecar.hap import HapError, HapStatus, PairingNotice
from sidecar.hds import CloseReason
from sidecar.hds.datasend import STREAM_TYPE, TARGET, decide_open
from sidecar.media import PipelineEvent, RecordingSettings, SourceProbe
from sidecar.media.frames import DetectOutput
from tests.support.camera_rig import SELECTION

T0 = 1000.0  # the fake clock's start (monotonic seconds)
DEMO = SourceProbe("avc1", 640, 360, 15.0, "main", "3.1", has_audio=True)


def make_core(app: dict[str, Any] | None = None, *, paired: bool = True, copy: bool = False,
              **spec: Any) -> CameraCore:
    options: dict[str, Any] = {"name": "Core Cam", "source": "demo", "profile": "copy" if copy else "libx264"}
    options.update(spec)
    core = CameraCore(CameraSpec(**options), {} if app is None else app, copy=copy, paired=paired)
    core.startup()
    return core


def chars(actions: list[Action]) -> dict[str, Any]:
    return {a.name: a.value for a in actions if isinstance(a, SetCharacteristic)}


def closes(actions: list[Action]) -> list[CloseRecording]:
    return [a for a in actions if isinstance(a, CloseRecording)]


def recording_core() -> CameraCore:
    """Recording on, a selection, and a hub's recording (stream 7) in progress."""
    core = make_core()
    core.write("selection", encode_selection(SELECTION))
    core.write("recording_active", 1)
    core.recording_opened(7)
    return core


# -- reason 1 when the camera (or recording) is switched off ----------------------------------------
def test_camera_switched_off_during_a_recording_closes_it_with_not_allowed() -> None:
    core = recording_core()
    actions = core.write("homekit_active", 0)
    assert closes(actions) == [CloseRecording(CloseReason.NOT_ALLOWED, "the camera was switched off")]
    assert actions[0] == Persist() and actions[-1] == UpdatePipeline()
    # Carried into the recording's own rules, the hub is told reason 1, not CANCELLED (3).
    session = RecordingSession(7, T0, prebuffer_ms=SELECTION.prebuffer_ms)
    (close,) = closes(actions)
    answer = session.closed_by_camera(close.reason, close.detail, T0 + 1)
    assert Close(CloseReason.NOT_ALLOWED, "the camera was switched off") in answer
    assert int(session.ended_event("Core Cam", T0 + 1).reason_code or 0) == 1


def test_recording_switched_off_or_a_factory_reset_closes_with_not_allowed_too() -> None:
    core = recording_core()
    assert closes(core.write("recording_active", 0)) == [
        CloseRecording(CloseReason.NOT_ALLOWED, "recording was switched off")]
    core = recording_core()
    assert closes(core.factory_reset()) == [CloseRecording(CloseReason.NOT_ALLOWED, "the accessory was reset")]


def test_switching_off_with_no_recording_or_writing_the_same_value_closes_nothing() -> None:
    core = make_core()
    assert closes(core.write("homekit_active", 0)) == []
    core = recording_core()
    assert core.write("homekit_active", 1) == []  # unchanged: nothing at all
    ended = RecordingEnded(camera="Core Cam", stream_id=7, reason="NORMAL", reason_code=0, closed_by="hub")
    assert core.recording_ended(ended) == [Emit(ended)]
    assert core.recording is None and closes(core.write("homekit_active", 0)) == []


# -- the recording gate and busy ------------------------------------------------------------------
def _open(core: CameraCore, stream_running: bool = False) -> CloseReason:
    body = {"target": TARGET, "type": STREAM_TYPE, "streamId": 1}
    return decide_open(body, core, stream_running).status


def test_the_recording_gate_refuses_until_everything_is_set_and_while_busy() -> None:
    core = make_core()
    assert _open(core) == CloseReason.NOT_ALLOWED  # recording Active = 0
    core.write("recording_active", 1)
    core.write("homekit_active", 0)
    assert _open(core) == CloseReason.NOT_ALLOWED  # HomeKitCameraActive = 0
    core.write("homekit_active", 1)
    assert _open(core) == CloseReason.INVALID_CONFIGURATION  # no selection yet
    core.write("selection", encode_selection(SELECTION))
    assert _open(core) == CloseReason.NORMAL
    actions = core.recording_opened(1)
    assert core.recording == 1 and core.recordings == 1
    assert [type(a.event) for a in actions if isinstance(a, Emit)] == [RecordingOpened]
    assert _open(core, stream_running=True) == CloseReason.BUSY  # one recording at a time


# -- operating modes and the four camera states -----------------------------------------------------
def test_operating_mode_writes_persist_and_move_the_characteristics_that_follow_them() -> None:
    app: dict[str, Any] = {}
    core = make_core(app)
    actions = core.write("homekit_active", 0)
    assert chars(actions) == {"motion_status_active": False} and SetLiveEnabled(False) in actions
    assert app["camera"]["homekit_active"] == 0
    assert core.write("rtp_active", 0) == [Persist(), SetLiveEnabled(False)]
    actions = core.write("homekit_active", 1)
    assert chars(actions) == {"motion_status_active": True} and SetLiveEnabled(False) in actions  # rtp still off
    assert core.write("rtp_active", 1) == [Persist(), SetLiveEnabled(True)]
    assert core.write("event_snapshots", 0) == [Persist()] and core.write("periodic_snapshots", 0) == [Persist()]
    assert core.write("recording_audio_active", 1) == [Persist(), Reconfigure()]
    assert core.recording_settings().audio is True
    # A restart (a new core on the same state) comes back exactly as it was.
    again = CameraCore(core.spec, app, copy=False, paired=True)
    first = chars(again.startup())
    assert (first["event_snapshots"], first["periodic_snapshots"], first["recording_audio_active"]) == (0, 0, 1)


@pytest.mark.parametrize(("homekit", "rtp", "recording", "state"), [
    (0, 1, 1, "off"), (1, 0, 1, "detect activity"), (1, 1, 0, "stream"), (1, 1, 1, "stream and allow recording")])
def test_the_four_camera_states(homekit: int, rtp: int, recording: int, state: str) -> None:
    core = make_core()
    core.write("recording_active", recording)
    core.write("rtp_active", rtp)
    core.write("homekit_active", homekit)
    assert core.settings.mode_name == state


def test_a_factory_reset_brings_back_the_defaults_and_forgets_the_selection() -> None:
    app: dict[str, Any] = {}
    core = make_core(app)
    core.write("selection", encode_selection(SELECTION))
    core.write("event_snapshots", 0)
    actions = core.factory_reset()
    assert actions[0] == Persist() and actions[-1] == UpdatePipeline()
    assert chars(actions)["event_snapshots"] == 1 and core.selection is None
    assert app["camera"]["selection"] == "" and app["camera"]["event_snapshots"] == 1


# -- the selection: validated and persisted ---------------------------------------------------------
def test_a_selection_is_validated_persisted_and_survives_a_restart() -> None:
    app: dict[str, Any] = {}
    core = make_core(app)
    with pytest.raises(HapError) as bad:
        core.write("selection", b"\x01\x00")
    assert bad.value.status == HapStatus.INVALID_VALUE
    with pytest.raises(HapError):
        core.offer.read_selection()  # nothing selected yet
    raw = encode_selection(SELECTION)
    assert core.write("selection", raw) == [Persist(), Reconfigure()]
    assert core.write("selection", raw) == []  # the same again: no restart of ffmpeg
    assert core.offer.read_selection() == raw and core.recording_settings().width == SELECTION.width
    again = make_core(app)
    assert again.selection == SELECTION


def test_the_prebuffer_a_recording_is_sent_is_the_selected_one_and_4_s_without_one() -> None:
    """What the camera keeps in memory follows this, not the most it advertises (8 s here)."""
    app: dict[str, Any] = {}
    core = make_core(app, prebuffer_ms=8000)
    assert core.offer.supported.prebuffer_ms == 8000 and core.prebuffer_ms == 4000  # nothing selected yet
    core.write("selection", encode_selection(dataclasses.replace(SELECTION, prebuffer_ms=6000)))
    assert core.prebuffer_ms == 6000
    assert make_core(app, prebuffer_ms=8000).prebuffer_ms == 6000  # the stored selection, after a restart
    core.factory_reset()
    assert core.prebuffer_ms == 4000


def test_what_the_source_delivers_is_advertised_and_a_change_drops_the_selection() -> None:
    app: dict[str, Any] = {}
    core = make_core(app)
    core.write("selection", encode_selection(SELECTION))
    actions = core.probed(DEMO, copy=False)
    assert Persist() in actions and set(chars(actions)) == {"supported_camera", "supported_video", "supported_audio"}
    assert app["probe"]["width"] == 640
    assert core.probed(DEMO, copy=False) == []  # the same source: nothing to say
    assert app["camera"]["selection"] == ""  # made against what we advertised before
    again = make_core(app)
    assert again.selection is None and again.offer.supported.config_hash() == core.offer.supported.config_hash()


def test_a_jittery_frame_rate_is_the_known_one() -> None:
    app: dict[str, Any] = {}
    core = make_core(app, copy=True)
    core.probed(DEMO, copy=True)
    assert core.probed(dataclasses.replace(DEMO, fps=17.4), copy=True) == []
    assert app["probe"]["fps"] == 15.0
    assert chars(core.probed(dataclasses.replace(DEMO, fps=30.0), copy=True))


def wanted(core: CameraCore) -> bool:
    return core.pipeline_wanted


# -- keep-warm ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("copy", "keep_warm", "mode"), [
    (True, "auto", "always"), (False, "auto", "recording"), (True, "recording", "recording"),
    (False, "always", "always")])
def test_keep_warm(copy: bool, keep_warm: str, mode: str) -> None:
    core = make_core(paired=False, copy=copy, keep_warm=keep_warm)
    assert core.keep_warm_mode() == mode
    assert not wanted(core)  # no hub to record for yet
    actions = core.pairing(PairingNotice("added", b"controller-1", True, paired=True))
    assert actions[-1] == UpdatePipeline() and isinstance(actions[0], Emit)
    assert isinstance(actions[0].event, PairingChanged) and actions[0].event.added
    assert wanted(core) is (mode == "always")
    assert core.write("recording_active", 1)[-1] == UpdatePipeline()
    assert wanted(core)
    core.write("homekit_active", 0)
    assert not wanted(core) and not core.detect_feed_wanted  # the camera is off
    core.write("homekit_active", 1)
    core.pairing(PairingNotice("removed", b"controller-1", True, paired=False))
    assert not wanted(core)


def test_the_built_in_detector_keeps_ffmpeg_running_whenever_the_camera_is_on() -> None:
    core = make_core(paired=False, detect=DetectOutput())
    assert core.pipeline_wanted  # "Detect Activity", even unpaired and with recording off
    core.write("homekit_active", 0)
    assert not core.pipeline_wanted


def test_copy_mode_records_the_camera_s_video_whatever_the_selection() -> None:
    core = make_core(copy=True)
    core.write("selection", encode_selection(SELECTION))
    assert core.recording_settings() == RecordingSettings(audio=False)  # the camera's own size and rate
    # A transcode fallback (the pipeline tells, with its next event) makes the selection count.
    core.pipeline_event(_pipeline_event(), copy=False)
    assert core.recording_settings().width == SELECTION.width
    assert core.keep_warm_mode() == "recording"


def _pipeline_event() -> PipelineEvent:
    return PipelineEvent(state="restarting", error=None, exit_code=1, restart_in_s=1.0)


# -- snapshots ----------------------------------------------------------------------------------------
def test_snapshot_permission_follows_the_operating_modes() -> None:
    core = make_core()
    assert core.snapshot_refusal(None) is None and core.snapshot_refusal(1) is None
    core.write("event_snapshots", 0)
    assert core.snapshot_refusal(None) == HapStatus.INSUFFICIENT_PRIVILEGES
    assert core.snapshot_refusal(1) == HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    core.write("event_snapshots", 1)
    core.write("periodic_snapshots", 0)
    assert core.snapshot_refusal(0) == HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    core.write("periodic_snapshots", 1)
    core.write("homekit_active", 0)
    assert core.snapshot_refusal(1) == HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    core.write("homekit_active", 1)
    core.write("rtp_active", 0)
    assert core.snapshot_refusal(None) == HapStatus.NOT_ALLOWED_IN_CURRENT_STATE


# -- motion on a fake clock ---------------------------------------------------------------------------
def test_a_trigger_s_motion_clears_itself_at_its_deadline() -> None:
    core = make_core()
    actions = core.set_motion(True, "http", T0, auto_reset_s=30.0)
    assert chars(actions) == {"motion": True} and core.next_deadline() == T0 + 30.0
    assert isinstance(actions[-1], Emit) and actions[-1].event == MotionChanged(
        camera="Core Cam", active=True, source="http", at=actions[-1].event.at)
    assert core.timer(T0 + 29.9) == []
    cleared = core.timer(T0 + 30.0)
    assert chars(cleared) == {"motion": False} and core.next_deadline() is None
    assert isinstance(cleared[-1], Emit) and isinstance(cleared[-1].event, MotionChanged)
    assert cleared[-1].event.source == "timeout"


def test_a_new_trigger_moves_the_deadline_and_an_explicit_clear_drops_it() -> None:
    core = make_core()
    core.set_motion(True, "http", T0, auto_reset_s=30.0)
    assert core.set_motion(True, "mqtt", T0 + 20, auto_reset_s=30.0) == []  # already raised: no event
    assert core.next_deadline() == T0 + 50.0
    assert chars(core.set_motion(False, "web", T0 + 21)) == {"motion": False}
    assert core.next_deadline() is None and core.timer(T0 + 60) == []


def test_the_detector_s_clear_does_not_end_motion_another_source_raised() -> None:
    core = make_core()
    core.set_motion(True, "detector", T0)
    core.set_motion(True, "http", T0 + 1, auto_reset_s=30.0)
    assert core.set_motion(False, "detector", T0 + 2) == [] and core.motion.active
    assert core.next_deadline() == T0 + 31.0  # the trigger's own timeout still holds
    assert chars(core.timer(T0 + 31.0)) == {"motion": False}


def test_a_doorbell_press_is_the_press_event_and_motion() -> None:
    core = make_core(doorbell=True, motion_timeout_s=10.0)
    actions = core.ring("http", T0)
    assert [a for a in actions if isinstance(a, SetCharacteristic)] == [
        SetCharacteristic("doorbell_press", 0), SetCharacteristic("motion", True)]
    assert [type(a.event) for a in actions if isinstance(a, Emit)] == [DoorbellPressed, MotionChanged]
    assert core.next_deadline() == T0 + 10.0
    assert chars(make_core().ring("http", T0)) == {"motion": True}  # no doorbell: motion only


# -- no ffmpeg restart of the sidecar's own ends a recording ---------------------------------------
SIDECAR_RESTARTS = [
    "merging short GOPs into 4 s fragments",  # RestartCause.MERGE_GOPS
    "source has no audio: adding a silent track",  # RestartCause.SILENT_AUDIO
    "copy mode unusable (too-long): transcoding",  # RestartCause.TRANSCODE
    "reconfigured",  # a new selection that changes ffmpeg's command line
]


@pytest.mark.parametrize("reason", SIDECAR_RESTARTS)
def test_a_restart_the_sidecar_wants_waits_for_the_recording_in_flight(reason: str) -> None:
    core = recording_core()
    assert core.restart_wanted(reason) is False  # a hub is recording: the restart waits
    ended = RecordingEnded(camera="Core Cam", stream_id=7, reason="NORMAL", reason_code=0, closed_by="hub")
    assert core.recording_ended(ended) == [Emit(ended), ReleaseRestart(reason)]
    assert core.restart_held is None
    assert core.restart_wanted(reason) is True  # nobody records now: at once


@pytest.mark.parametrize("reason", SIDECAR_RESTARTS)
def test_a_restart_the_sidecar_wants_goes_ahead_when_nobody_records(reason: str) -> None:
    core = make_core()
    assert core.restart_wanted(reason) is True
    ended = RecordingEnded(camera="Core Cam", stream_id=3, reason="NORMAL", reason_code=0, closed_by="hub")
    assert core.recording_ended(ended) == [Emit(ended)]  # nothing was held


def test_restarts_held_by_one_recording_are_released_once_together() -> None:
    core = recording_core()
    assert not core.restart_wanted("merging short GOPs into 4 s fragments")
    assert not core.restart_wanted("reconfigured")
    other = RecordingEnded(camera="Core Cam", stream_id=99, reason="BUSY", reason_code=2, closed_by="accessory")
    assert core.recording_ended(other) == [Emit(other)]  # not the recording in flight: still held
    ended = RecordingEnded(camera="Core Cam", stream_id=7, reason="TIMEOUT", reason_code=4, closed_by="connection")
    assert core.recording_ended(ended) == [
        Emit(ended), ReleaseRestart("merging short GOPs into 4 s fragments; reconfigured")]


@pytest.mark.parametrize("record_codec", ["hevc", "auto"])
def test_advertise_hevc_offers_codec_1_and_takes_a_hub_s_h265_selection(record_codec: str) -> None:
    app: dict[str, Any] = {}
    core = make_core(app, record_codec=record_codec, advertise_hevc=True)
    assert core.offer.supported.video_codecs == (0, 1)
    h265 = dataclasses.replace(SELECTION, video_codec=1)
    assert core.write("selection", encode_selection(h265)) == [Persist(), Reconfigure()]
    assert make_core(app, record_codec=record_codec, advertise_hevc=True).selection == h265  # persisted


def test_without_advertise_hevc_codec_1_stays_refused_even_for_hevc_recordings() -> None:
    core = make_core(record_codec="hevc")
    assert core.offer.supported.video_codecs == (0,)
    with pytest.raises(HapError) as refused:
        core.write("selection", encode_selection(dataclasses.replace(SELECTION, video_codec=1)))
    assert refused.value.status == HapStatus.INVALID_VALUE
