"""The built-in detector on a real camera: real ffmpeg, a clip with known motion, a paired
aiohomekit controller switching the camera's modes.

What is shown: in "Detect Activity" mode (camera on, recording off) the camera runs its ffmpeg
for the detector and MotionDetected rises from the detector alone, while the recording output
stays ``copy``; switching the camera off stops the frames and motion ends; the substream path
(``detect_source``) does the same without the recording ffmpeg; a broken substream restarts
with its password masked; detector motion never rings the doorbell and never clears motion
another source raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.events import CameraEvent, DoorbellPressed, MotionChanged
from sidecar.media import PipelineState
from sidecar.media.detect_feed import DetectFeed
from sidecar.media.frames import DetectOutput, GrayFrame
from sidecar.media.sources import parse_source
from sidecar.triggers.detector import DetectorParams
from sidecar.triggers.detector_trigger import DetectorTrigger
from sidecar.web import WebServer
from tests.hub.characteristics import HOMEKIT_CAMERA_ACTIVE, MOTION_DETECTED
from tests.hub.database import iids_by_type
from tests.support.hap_client import aio_pair
from tests.support.motion_clip import make_motion_clip

PIN = "031-45-154"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 12 s, looped by the camera: the box crosses from 4 s to 8 s of every loop.
    return make_motion_clip(tmp_path_factory.mktemp("clip") / "yard.mp4")


class Changes:
    """Wakes waiters whenever something they watch may have changed (events, frames, HAP)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def poke(self, *_: object) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._event.clear()
                await self._event.wait()


def motion_events(events: list[CameraEvent]) -> list[tuple[bool, str]]:
    return [(e.active, e.source) for e in events if isinstance(e, MotionChanged)]


async def test_detect_activity_mode_raises_motion_from_the_detector_alone(tmp_path: Path, clip: Path) -> None:
    spec = CameraSpec(name="Yard", source=f"loop:{clip}", profile="copy", setup_code=PIN, doorbell=True,
                      detect=DetectOutput())
    camera = Camera(spec, tmp_path, host="127.0.0.1", port=0, advertiser=None)
    events: list[CameraEvent] = []
    changes = Changes()
    camera.events.subscribe(events.append)
    camera.events.subscribe(changes.poke)
    frames: list[float] = []
    camera.add_frame_observer(lambda frame, now: frames.append(now))
    camera.add_frame_observer(changes.poke)
    trigger = DetectorTrigger(camera, DetectorParams(off_delay=1.5))
    trigger.start()
    await camera.start()
    pairing = await aio_pair(camera.server.port, PIN)
    try:
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        seen: list[Any] = []
        pairing.dispatcher_connect(lambda ev: (seen.append(ev.get((1, ids[MOTION_DETECTED]))), changes.poke()))
        await pairing.subscribe([(1, ids[MOTION_DETECTED])])
        # Defaults: camera on, recording off ("Detect Activity"). ffmpeg runs for the detector.
        assert not camera.core.settings.recording_active and camera.core.settings.homekit_active
        await changes.until(lambda: any(v and v.get("value") is True for v in seen), 30)
        assert motion_events(events)[0] == (True, "detector")
        assert not any(isinstance(e, DoorbellPressed) for e in events)  # detector motion never rings
        # The detector's figures, as the camera's card and /api/status show them while tuning.
        web = WebServer(lambda: [camera], host="127.0.0.1", port=0)
        web.attach(camera, trigger)
        await web.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{web.port}/api/status") as resp:
                    figures = (await resp.json())["cameras"][0]["detector"]
                async with http.get(f"http://127.0.0.1:{web.port}/camera/yard") as resp:
                    page = await resp.text()
        finally:
            await web.stop()
        assert figures["frames"] > 0 and figures["triggers"] >= 1 and figures["dropped"] >= 0
        assert 0 < figures["last_trigger_area"] <= 1 and figures["last_trigger_regions"] >= 1
        assert figures["last_trigger_at"] > 0
        assert f"{figures['frames']} frames analysed" in page or "frames analysed" in page
        assert "% of the picture in" in page
        argv = camera.pipeline.status().argv
        assert argv[argv.index("-c:v") + 1] == "copy" and "yuv4mpegpipe" in argv
        assert camera.pipeline.prebuffer.duration_s > 0  # the recording output flows meanwhile
        # The box leaves at 8 s of the loop: OFF 1.5 s later, then ON again next loop (a 12 s
        # loop: at most one ON per loop; two loops fit in the window).
        await changes.until(lambda: (False, "detector") in motion_events(events), 15)
        # Camera off: the frames stop and so does ffmpeg (recording is off too).
        assert await pairing.put_characteristics([(1, ids[HOMEKIT_CAMERA_ACTIVE], 0)]) == {}
        await camera.pipeline.wait_for(lambda: camera.pipeline.state is PipelineState.STOPPED, timeout_s=10)
        count = len(frames)
        await asyncio.sleep(1.5)
        assert len(frames) == count
        assert not camera.services.motion.value
        ons = [e for e in motion_events(events) if e[0]]
        assert 1 <= len(ons) <= 3 and all(source == "detector" for _, source in ons)
        # A press still raises motion; still no ring from the detector's own motion.
        camera.ring_doorbell(source="http")
        assert motion_events(events)[-1] == (True, "doorbell")
        assert len([e for e in events if isinstance(e, DoorbellPressed)]) == 1
    finally:
        trigger.stop()
        await pairing.shutdown()
        await camera.stop()


async def test_substream_feeds_the_detector_without_the_recording_ffmpeg(tmp_path: Path, clip: Path) -> None:
    spec = CameraSpec(name="Side", source=f"loop:{clip}", profile="copy", detect=DetectOutput(fps=5),
                      detect_source=f"loop:{clip}")
    camera = Camera(spec, tmp_path, host="127.0.0.1", port=0, advertiser=None)
    events: list[CameraEvent] = []
    changes = Changes()
    camera.events.subscribe(events.append)
    camera.events.subscribe(changes.poke)
    sizes: list[tuple[int, int]] = []
    camera.add_frame_observer(lambda frame, now: sizes.append((frame.width, frame.height)))
    trigger = DetectorTrigger(camera, DetectorParams(off_delay=1.0))
    trigger.start()
    await camera.start()
    try:
        await changes.until(lambda: (True, "detector") in motion_events(events), 30)
        assert sizes and set(sizes) == {(178, 100)}
        assert not camera.media.running  # recording off: only the small detector ffmpeg runs
        assert camera.media.detect_feed is not None and camera.media.detect_feed.running
    finally:
        trigger.stop()
        await camera.stop()
    assert camera.media.detect_feed is not None and not camera.media.detect_feed.running


async def test_a_broken_substream_restarts_with_its_password_masked(caplog: pytest.LogCaptureFixture) -> None:
    frames: list[GrayFrame] = []
    changes = Changes()
    feed = DetectFeed(parse_source("rtsp://admin:s3cr3t-pw@127.0.0.1:9/sub"), lambda f, now: frames.append(f),
                      name="Broken", backoff_initial_s=0.1, backoff_max_s=0.2)
    with caplog.at_level(logging.DEBUG, logger="sidecar.media.detect_feed"):
        handler = logging.Handler()
        handler.emit = changes.poke  # type: ignore[method-assign]
        logging.getLogger("sidecar.media.detect_feed").addHandler(handler)
        await feed.start()
        try:
            await changes.until(lambda: feed.runs >= 3, 30)
        finally:
            await feed.stop()
            logging.getLogger("sidecar.media.detect_feed").removeHandler(handler)
    assert not feed.running and frames == []
    assert feed.last_error is not None and "s3cr3t-pw" not in feed.last_error
    assert "s3cr3t-pw" not in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "detector ffmpeg stopped" in warnings[0].getMessage()  # one line per outage


async def test_detector_off_never_clears_motion_another_source_raised(tmp_path: Path) -> None:
    camera = Camera(CameraSpec(name="Combo", source="demo", profile="libx264"), tmp_path, host="127.0.0.1", port=0,
                    advertiser=None)
    camera.set_motion(True, source="detector")
    camera.trigger_motion(source="http")  # HTTP motion during detector motion
    camera.set_motion(False, source="detector")
    assert camera.services.motion.value is True  # the HTTP trigger's own timeout still holds it
    camera.set_motion(False, source="http")  # an explicit reset wins
    assert camera.services.motion.value is False
    camera.set_motion(True, source="detector")
    camera.set_motion(False, source="detector")
    assert camera.services.motion.value is False
    await camera.stop()
