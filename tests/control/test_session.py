"""The session in-process: camera events become protocol events, on a real App's cameras.

The producers of recording, pipeline and pairing events live in camera/ (and grow with other
work); here they are emitted on the real ``Camera.events`` bus, so what is checked is the
subscription the session makes when it starts a camera and the wire shape of each event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sidecar.camera.events import (
    DoorbellPressed,
    LiveSessionsChanged,
    PairingChanged,
    PipelineChanged,
    RecordingEnded,
    RecordingOpened,
)
from sidecar.control import BadLine, Command, ControlSession

from .conftest import demo_config


async def test_camera_events_reach_the_parent(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = []
    session = ControlSession(lambda raw: lines.append(json.loads(raw)), overrides={"state_dir": str(tmp_path)})
    await session.handle(Command("start", seq=0))
    assert lines == [{"id": "error", "data": {"message": "start: send a config first", "seq": 0}, "seq": 0}]
    await session.handle(Command("config", demo_config("Yard")))
    await session.handle(Command("start", seq=1))
    try:
        assert session.app is not None
        yard = session.app.cameras[0]
        start = len(lines)
        for event in (
            RecordingOpened(camera="Yard", stream_id=3, selection=None),
            RecordingEnded(camera="Yard", stream_id=3, reason="NORMAL", reason_code=0, closed_by="hub",
                           bytes_sent=123456),
            PipelineChanged(camera="Yard", state="running"),
            PipelineChanged(camera="Yard", state="restarting", exit_code=1, restart_in_s=4.0,
                            error="connection refused"),
            PipelineChanged(camera="Yard", state="failed", exit_code=1, restart_in_s=8.0,
                            error="rtsp://u:***@cam: 401 Unauthorized"),
            PipelineChanged(camera="Yard", state="stopping"),  # not a state a parent needs
            PipelineChanged(camera="Yard", state="stopped"),
            DoorbellPressed(camera="Yard", source="mqtt"),
            LiveSessionsChanged(camera="Yard", sessions=1),  # nothing for a parent
            PairingChanged(camera="Yard", paired=False, added=False),  # the last status said unpaired
        ):
            yard.events.emit(event)
        assert [(e["id"], e["data"]) for e in lines[start:]] == [
            ("recording", {"camera": "Yard", "streamId": 3, "state": "start"}),
            ("recording", {"camera": "Yard", "streamId": 3, "state": "end", "reason": "NORMAL", "bytes": 123456}),
            ("camera", {"camera": "Yard", "state": "streaming"}),
            ("ffmpeg", {"camera": "Yard", "exitCode": 1, "restartIn": 4.0}),
            ("ffmpeg", {"camera": "Yard", "exitCode": 1, "restartIn": 8.0}),
            ("camera", {"camera": "Yard", "state": "error", "error": "rtsp://u:***@cam: 401 Unauthorized"}),
            ("camera", {"camera": "Yard", "state": "idle"}),
            ("doorbell", {"camera": "Yard", "source": "mqtt"}),
        ]
        # a change of paired state is followed by a status (its content is the server's own state)
        yard.events.emit(PairingChanged(camera="Yard", paired=True, added=True))
        assert [e["id"] for e in lines[start + 8:]] == ["status"]
        assert lines[-1]["data"]["setupUri"] == yard.server.setup_uri
        await session.handle(BadLine("not JSON", seq=None))
        assert lines[-1] == {"id": "error", "data": {"message": "not JSON"}}
    finally:
        await session.close()
    assert lines[-1] == {"id": "camera", "data": {"camera": "Yard", "state": "stopped"}}
    # after close the session no longer listens: a late event from the camera is not sent
    count = len(lines)
    yard.events.emit(DoorbellPressed(camera="Yard", source="http"))
    assert len(lines) == count

