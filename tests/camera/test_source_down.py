"""A hub records from a camera whose source is down: it is answered at once, and the stream is
closed with reason 5 within 5 s, with the cause in words (issue 9)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.events import RecordingEnded
from tests.hub.characteristics import DATA_STREAM_SETUP
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import enable_recording, recording_selection
from tests.support.hap_client import PIN, aio_pair
from tests.support.live_view import wait_until

SELECTION = recording_selection(width=1920, height=1080, fps=30, bitrate_kbps=2000, audio_kbps=32)


async def test_a_down_source_refuses_with_reason_5_within_5_s_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    capture = DeriveCapture.install(monkeypatch)
    url = "rtsp://admin:s3cret-pw@127.0.0.1:9/stream"  # nothing listens on port 9: connection refused
    camera = Camera(CameraSpec(name="Down Cam", source=url, profile="libx264", setup_code=PIN), tmp_path,
                    host="127.0.0.1", port=0, advertiser=None)
    ended: list[RecordingEnded] = []
    camera.events.subscribe(lambda e: isinstance(e, RecordingEnded) and ended.append(e))  # type: ignore[func-returns-value]
    caplog.set_level(logging.INFO)
    await camera.start()
    pairing = await aio_pair(camera.server.port, PIN)
    try:
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        await enable_recording(pairing, ids, SELECTION)
        client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
        try:
            await client.hello()
            opened_at = time.monotonic()
            assert (await client.open(1)).body == {"status": 0}  # never refused up front
            frags, closed = await client.collect(1, within=10)
            waited = time.monotonic() - opened_at
        finally:
            await client.aclose()
        assert frags == [] and closed is not None and closed.body == {"streamId": 1, "reason": 5}
        assert 4.5 <= waited <= 6.5  # the 5 s start deadline (a hub gives up at about 5-8 s)
        await wait_until(lambda: bool(ended), 5, "RecordingEnded")
        (event,) = ended
        assert (event.reason, event.reason_code, event.closed_by) == ("UNEXPECTED_FAILURE", 5, "accessory")
        assert event.detail.startswith("ffmpeg ") and event.bytes_sent == 0 and event.first_byte_s is None
        lines = [r.getMessage() for r in caplog.records if "closing recording stream 1" in r.getMessage()]
        assert len(lines) == 1 and event.detail in lines[0]
        assert "connection refused" in event.detail.lower() and "s3cret-pw" not in lines[0] + event.detail
    finally:
        await pairing.shutdown()
        await camera.stop()
