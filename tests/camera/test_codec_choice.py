"""record_codec on the camera core (sans-IO, fake clock): ``auto`` goes back to H.264 after two
H.265 recordings in a row that hubs end abnormally, says why, and nothing else moves it; the
media pipeline's policy then transcodes an H.265 camera to H.264 (docs/h265.md)."""

from __future__ import annotations

from typing import Any

from sidecar import tlv8
from sidecar.camera import CameraSpec
from sidecar.camera.core import CameraCore, Emit, SetRecordCodec
from sidecar.camera.events import RecordingEnded
from sidecar.camera.recording.codec_choice import CodecChoice
from sidecar.camera.recording.configuration import encode_selection, selected_video_codec
from sidecar.media import (
    InitSegment,
    PipelineConfig,
    Restart,
    RestartCause,
    StreamPolicy,
    VideoTrack,
    load_profiles,
    parse_source,
)
from tests.support.camera_rig import SELECTION


def ended(reason: str = "UNEXPECTED_FAILURE", by: str = "hub", codec: str | None = "hvc1",
          stream_id: int = 1) -> RecordingEnded:
    return RecordingEnded(camera="Cam", stream_id=stream_id, reason=reason, reason_code=None, closed_by=by,
                          detail="the hub closed it", video_codec=codec)


def core(record_codec: str) -> CameraCore:
    spec: Any = CameraSpec(name="Cam", source="rtsp://127.0.0.1/x", record_codec=record_codec)  # type: ignore[arg-type]
    c = CameraCore(spec, {}, copy=True, paired=True)
    c.startup()
    return c


def test_auto_falls_back_after_two_failed_hevc_recordings_in_a_row() -> None:
    c = core("auto")
    assert c.codec.pipeline_codec == "hevc" and c.codec.describe() == "auto"
    first = ended(stream_id=1)
    assert c.recording_ended(first) == [Emit(first)]
    actions = c.recording_ended(ended(stream_id=2, reason="CANCELLED"))
    (switch,) = [a for a in actions if isinstance(a, SetRecordCodec)]
    assert switch.codec == "h264" and "2 H.265 recordings in a row" in switch.reason and "tvOS 27" in switch.reason
    assert c.codec.pipeline_codec == "h264" and c.codec.describe().startswith("h264 (auto fell back:")
    # Once fallen back, it stays put.
    assert not [a for a in c.recording_ended(ended(stream_id=3)) if isinstance(a, SetRecordCodec)]


def test_a_normal_recording_in_between_resets_the_count() -> None:
    choice = CodecChoice("auto")
    assert choice.recording_ended(ended()) is None
    assert choice.recording_ended(ended(reason="NORMAL")) is None and choice.failures == 0
    assert choice.recording_ended(ended()) is None
    assert choice.recording_ended(ended()) is not None


def test_what_does_not_count() -> None:
    choice = CodecChoice("auto")
    for event in (ended(by="accessory"), ended(codec="avc1"), ended(codec=None), ended(by="accessory")):
        assert choice.recording_ended(event) is None
    assert choice.failures == 0
    assert choice.recording_ended(ended(by="connection")) is None and choice.failures == 1  # the hub vanished


def test_hevc_and_h264_settings_never_switch() -> None:
    for setting in ("hevc", "h264"):
        c = core(setting)
        for n in range(4):
            assert not [a for a in c.recording_ended(ended(stream_id=n)) if isinstance(a, SetRecordCodec)]
        assert c.codec.pipeline_codec == ("hevc" if setting == "hevc" else "h264")


def test_the_policy_transcodes_an_hevc_camera_once_told_h264() -> None:
    profiles = load_profiles()
    policy = StreamPolicy(PipelineConfig(source=parse_source("rtsp://127.0.0.1/x"), record_codec="hevc"), profiles)
    policy.start_run()
    hev1 = InitSegment(b"", (VideoTrack(1, "vide", 90000, "hev1", 0, 0, 1920, 1080),))
    policy.on_init(hev1)  # learns the camera sends H.265 (and asks to tag it hvc1)
    actions = policy.set_record_codec("h264")
    restart = next(a for a in actions if isinstance(a, Restart))
    assert restart.cause is RestartCause.TRANSCODE and policy.profile_name == "libx264"
    assert "-tag:v" not in restart.command.argv and "libx264" in restart.command.argv
    assert policy.set_record_codec("h264") == []


def test_the_codec_a_hub_selected_is_read_for_the_log() -> None:
    written = encode_selection(SELECTION)
    assert selected_video_codec(written) == 0
    assert selected_video_codec(tlv8.encode([(2, tlv8.encode([(1, 1)]))])) == 1
    assert selected_video_codec(b"\x02\x05garbage") is None and selected_video_codec(b"") is None
