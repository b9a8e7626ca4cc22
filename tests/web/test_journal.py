"""The event journal's correlation rules and its words, driven by events with explicit times."""

from __future__ import annotations

from sidecar.camera.events import (
    MotionChanged,
    PairingChanged,
    PipelineChanged,
    RecordingEnded,
    RecordingOpened,
    SetupCodeRejected,
)
from sidecar.web.journal import MAX_ENTRIES, NO_HUB, NO_HUB_WAIT_S, EventJournal, describe_end

CAM = "Door"
T0 = 1_700_000_000.0


def motion(at: float, active: bool = True, source: str = "http") -> MotionChanged:
    return MotionChanged(camera=CAM, at=at, active=active, source=source)


def opened(at: float, sid: int) -> RecordingOpened:
    return RecordingOpened(camera=CAM, at=at, stream_id=sid, selection="640x360@15 600 kbps, prebuffer 4000 ms")


def ended(at: float, sid: int, reason: str, by: str, **kw: object) -> RecordingEnded:
    return RecordingEnded(camera=CAM, at=at, stream_id=sid, reason=reason, reason_code=None, closed_by=by, **kw)


def journal(mode: str = "Stream & Allow Recording") -> EventJournal:
    j = EventJournal()
    j.add_camera(CAM, lambda: mode)
    return j


def test_motion_with_a_normal_recording() -> None:
    j = journal()
    for e in (motion(T0), opened(T0 + 1.2, 1), motion(T0 + 20, False),
              ended(T0 + 30, 1, "NORMAL", "hub", bytes_sent=123456, fragments_sent=8, first_byte_s=0.2)):
        j.observe(e)
    (entry,) = j.entries(CAM)
    assert entry.kind == "motion" and entry.source == "http" and entry.ended_at == T0 + 20
    assert [r.stream_id for r in entry.recordings] == [1]
    assert entry.verdict(T0 + 60) == "the hub closed normally"
    data = entry.to_json(T0 + 60)
    assert data["recordings"][0]["bytes_sent"] == 123456 and data["recordings"][0]["closed_by"] == "hub"


def test_close_reasons_in_words() -> None:
    assert describe_end("NORMAL", "hub") == "the hub closed normally"
    assert describe_end("NORMAL", "connection").startswith("the hub vanished")
    assert describe_end("CANCELLED", "connection").startswith("the hub vanished")
    assert describe_end("NOT_ALLOWED", "accessory").startswith("the camera was switched off")
    assert describe_end("TIMEOUT", "accessory") == "the hub stopped reading"
    assert describe_end("TIMEOUT", "hub").startswith("the hub gave up")
    assert describe_end("WEIRD", "hub") == "the hub closed it with reason WEIRD"
    assert describe_end("TIMEOUT", "accessory", "the hub read nothing for 10 s") == "the hub read nothing for 10 s"
    assert describe_end("NORMAL", "hub", "hub said: normal") == "the hub closed normally"
    assert describe_end("NORMAL", "connection", "the hub's connection went away").startswith("the hub vanished")
    assert describe_end("WEIRD", "hub", "the hub closed it (WEIRD)") == "the hub closed it (WEIRD)"


def test_motion_without_any_hub() -> None:
    j = journal()
    j.observe(motion(T0))
    (entry,) = j.entries(CAM)
    assert entry.verdict(T0 + 1) == "waiting for a hub to open a recording"
    assert entry.verdict(T0 + NO_HUB_WAIT_S + 1) == NO_HUB
    assert "Stream & Allow Recording" in NO_HUB and "same subnet" in NO_HUB


def test_motion_while_the_mode_forbids_recording_names_the_mode() -> None:
    j = journal(mode="Detect Activity")
    j.observe(motion(T0))
    verdict = j.entries(CAM)[0].verdict(T0 + 60)
    assert "Detect Activity" in verdict and verdict.startswith("no hub asked")


def test_late_open_after_motion_cleared_is_a_recording_of_its_own() -> None:
    j = journal()
    for e in (motion(T0), motion(T0 + 2, False), opened(T0 + 40, 7), ended(T0 + 50, 7, "NORMAL", "hub")):
        j.observe(e)
    newest, older = j.entries(CAM)
    assert newest.kind == "recording" and newest.recordings[0].stream_id == 7
    assert older.kind == "motion" and not older.recordings


def test_notes_and_bounds() -> None:
    j = journal()
    j.observe(PipelineChanged(camera=CAM, at=T0, state="backoff", error="connection refused", restart_in_s=4))
    j.observe(PairingChanged(camera=CAM, at=T0, paired=True, added=True, controller="ABCDEF12…", admin=True))
    j.observe(SetupCodeRejected(camera=CAM, at=T0, failed_attempts=3))
    assert j.restart_in(CAM, T0 + 1) == 3.0 and j.restart_in(CAM, T0 + 10) == 0.0
    texts = [e.verdict(T0) for e in j.entries(CAM)]
    assert texts == ["wrong setup code entered (3 failed attempt(s))",
                     "controller ABCDEF12… paired (admin)",
                     "ffmpeg backoff: connection refused (restarting in 4 s)"]
    assert not j.pipeline_failed(CAM)
    j.observe(PipelineChanged(camera=CAM, at=T0 + 4, state="failed", error="401 unauthorized", restart_in_s=60))
    assert j.pipeline_failed(CAM) and j.restart_in(CAM, T0 + 5) == 59.0
    j.observe(PipelineChanged(camera=CAM, at=T0 + 5, state="running"))
    assert j.restart_in(CAM, T0 + 6) is None and not j.pipeline_failed(CAM)
    for i in range(2 * MAX_ENTRIES + 50):
        j.observe(motion(T0 + i * 2, active=i % 2 == 0))
    assert len(j.entries(CAM)) == MAX_ENTRIES
    assert j.restart_in("Other", T0) is None
    assert len(j.entries(CAM, limit=5)) == 5


def test_end_without_open_is_kept() -> None:
    j = journal()
    j.observe(ended(T0 + 10, 3, "CANCELLED", "accessory", duration_s=4.0))
    (entry,) = j.entries(CAM)
    assert entry.kind == "recording" and entry.at == T0 + 6
    assert entry.verdict(T0 + 20).startswith("the sidecar cancelled it")
