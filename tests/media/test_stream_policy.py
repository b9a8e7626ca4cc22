"""The stream policy (sans-IO): synthetic init segments and fragments in, notices and restarts out.

No ffmpeg here: each rule (profile fallback, silent audio, GOP merging, GOP warnings) is fed what
an ffmpeg run would have produced, and the answer is checked, down to the next command line.
"""

from __future__ import annotations

import dataclasses

import pytest

from sidecar.media import (
    AudioMode,
    InitSegment,
    Notice,
    PipelineConfig,
    RecordingSettings,
    Restart,
    RestartCause,
    StreamPolicy,
    load_profiles,
    parse_source,
)
from sidecar.media.stream_policy import Action

from .fakes import VIDEO, make_fragment, make_init

PROFILES = load_profiles()
RTSP = parse_source("rtsp://127.0.0.1:8554/cam")


def policy(**kw: object) -> StreamPolicy:
    p = StreamPolicy(PipelineConfig(source=RTSP, **kw), PROFILES)  # type: ignore[arg-type]
    p.start_run()
    return p


def fragments(p: StreamPolicy, durations: list[float], **kw: object) -> list[Action]:
    """Feed one run's fragments back to back; all the actions they drew."""
    actions: list[Action] = []
    t = 0.0
    for i, d in enumerate(durations):
        actions += p.on_fragment(make_fragment(i + 1, start_s=t, duration_s=d, **kw))  # type: ignore[arg-type]
        t += d
    return actions


def restarts(actions: list[Action]) -> list[Restart]:
    return [a for a in actions if isinstance(a, Restart)]


def notices(actions: list[Action]) -> list[Notice]:
    return [a for a in actions if isinstance(a, Notice)]


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(KeyError, match="no-such"):
        StreamPolicy(PipelineConfig(source=RTSP, profile="no-such"), PROFILES)


def test_a_source_without_h264_never_runs_copy() -> None:
    p = StreamPolicy(PipelineConfig(source=parse_source("demo"), profile="copy"), PROFILES)
    assert p.profile_name == "libx264" and not p.start_run().profile.is_copy


def test_four_second_keyframes_in_copy_mode_need_nothing() -> None:
    p = policy()
    assert p.on_init(make_init()) == []
    assert fragments(p, [4.0] * 4) == []
    assert p.warning is None and p.source_has_audio is True


def test_no_audio_track_restarts_with_a_silent_one() -> None:
    p = policy()
    assert p.command is not None and p.command.audio is AudioMode.SOURCE
    actions = p.on_init(make_init(audio=False))
    [restart] = restarts(actions)
    assert restart.cause is RestartCause.SILENT_AUDIO
    assert restart.command.audio is AudioMode.SILENT and "anullsrc" in " ".join(restart.command.argv)
    assert notices(actions) == [Notice("the source has no audio; restarting with a silent track")]
    assert p.start_run().audio is AudioMode.SILENT  # the next run is what the action said
    assert p.on_init(make_init(audio=False)) == []


def test_no_audio_track_is_fine_when_recording_audio_is_off() -> None:
    p = policy(settings=RecordingSettings(audio=False))
    assert p.on_init(make_init(audio=False)) == []
    assert fragments(p, [4.0] * 4, audio_samples=0) == []


def test_announced_audio_without_samples_gets_a_silent_track_after_three_fragments() -> None:
    p = policy()
    p.on_init(make_init())
    assert fragments(p, [4.0, 4.0], audio_samples=0) == []
    assert fragments(p, [4.0], audio_samples=125) == []  # a sample resets the count
    assert fragments(p, [4.0, 4.0], audio_samples=0) == []
    actions = fragments(p, [4.0], audio_samples=0)
    [restart] = restarts(actions)
    assert restart.cause is RestartCause.SILENT_AUDIO and restart.command.audio is AudioMode.SILENT
    assert notices(actions)[0].warning and p.source_has_audio is False
    assert fragments(p, [4.0] * 3, audio_samples=0) == []  # asked once; the restart is pending


def test_a_codec_homekit_cannot_record_is_named_and_transcoded_when_allowed() -> None:
    hevc = InitSegment(b"ftyp-moov", (dataclasses.replace(VIDEO, codec="hvc1"),))
    p = policy(settings=RecordingSettings(audio=False))
    [notice] = notices(p.on_init(hevc))
    assert notice.warning and "hvc1" in notice.text and p.warning == notice.text
    assert p.profile.is_copy  # only a warning without transcode_fallback

    p = policy(settings=RecordingSettings(audio=False), transcode_fallback=True)
    [restart] = restarts(p.on_init(hevc))
    assert restart.cause is RestartCause.TRANSCODE and restart.command.profile.name == "libx264"
    assert p.profile_name == "libx264"


def test_long_fragments_warn_once_and_fall_back_when_allowed() -> None:
    p = policy()
    p.on_init(make_init())
    first = fragments(p, [10.0, 10.0])
    assert [n.warning for n in notices(first)] == [True] and "I-frame" in notices(first)[0].text
    assert restarts(first) == [] and "I-frame" in (p.warning or "")
    assert fragments(p, [10.0]) == []  # the same verdict is not logged again
    p.on_init(make_init())  # a new run whose camera was fixed
    assert fragments(p, [4.0, 4.0]) == [] and p.warning is None

    p = policy(transcode_fallback=True)
    p.on_init(make_init())
    actions = fragments(p, [10.0, 10.0])
    assert [n.text for n in notices(actions)][1] == "falling back to the libx264 profile"
    [restart] = restarts(actions)
    assert restart.cause is RestartCause.TRANSCODE and restart.reason == "copy mode unusable (too-long): transcoding"
    assert not p.profile.is_copy and fragments(p, [10.0]) == []  # transcoding: no GOP rules


def test_fragments_off_keyframes_are_a_warning() -> None:
    p = policy()
    p.on_init(make_init())
    actions = fragments(p, [4.0, 4.0], keyframe=False)
    assert "keyframes" in notices(actions)[0].text and restarts(actions) == []


def test_short_gops_are_merged_once() -> None:
    p = policy()
    p.on_init(make_init())
    actions = fragments(p, [2.0, 2.0])
    [restart] = restarts(actions)
    assert restart.cause is RestartCause.MERGE_GOPS
    argv = restart.command.argv
    assert argv[argv.index("-min_frag_duration") + 1] == "3000000"
    assert "every 2.00 s" in notices(actions)[0].text
    p.start_run()
    p.on_init(make_init())
    assert fragments(p, [2.0] * 4) == []  # measured and merged: no second restart

    assert restarts(fragments(policy(merge_short_gops=False), [2.0] * 4)) == []


def test_fragment_without_init_draws_no_audio_rule() -> None:
    p = policy()
    assert p.on_fragment(make_fragment(1, start_s=0.0, audio_samples=0)) == []


def test_reconfigure_restarts_only_when_the_command_changes() -> None:
    p = policy()
    same, actions = p.reconfigure(RecordingSettings(width=1920, height=1080))
    assert not same.restarted and "resolution" in same.ignored
    assert "copy mode keeps the camera's stream" in notices(actions)[0].text
    off, _ = p.reconfigure(RecordingSettings(audio=False))
    assert off.restarted and p.start_run().audio is AudioMode.NONE

    x264 = policy(profile="libx264")
    changed, actions = x264.reconfigure(RecordingSettings(width=640, height=360))
    assert changed.restarted and "libx264 encodes 640x360" in changed.message and actions == []
