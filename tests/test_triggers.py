"""HTTP triggers (homebridge-camera-ffmpeg's URLs) against a real camera object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.triggers import TriggerServer


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Camera, str]]:
    camera = Camera(CameraSpec(name="Front Door", source="demo", profile="libx264", doorbell=True,
                                 motion_timeout_s=0.2), tmp_path, host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    server = TriggerServer(lambda: [camera], host="127.0.0.1", port=0)
    await server.start()
    try:
        yield camera, f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()
        await camera.stop()


async def test_motion_reset_doorbell_and_errors(setup: tuple[Camera, str]) -> None:
    camera, base = setup
    motion, press = camera.services.motion, camera.services.doorbell_press
    assert press is not None
    presses: list[object] = []
    press.add_listener(lambda char, value, origin: presses.append(value))
    async with aiohttp.ClientSession() as http:
        async def get(path: str) -> tuple[int, dict[str, object]]:
            async with http.get(base + path) as resp:
                return resp.status, await resp.json()

        assert await get("/motion?Front%20Door") == (200, {"error": False, "message": "Motion switched on."})
        assert motion.value is True
        assert await get("/motion/reset?front door=") == (200, {"error": False, "message": "Motion switched off."})
        assert motion.value is False
        status, body = await get("/doorbell?camera=Front+Door")
        assert status == 200 and presses == [0] and motion.value is True  # a press raises motion too
        status, body = await get("/motion?Back%20Door")
        assert (status, body["error"], body["message"]) == (500, True, 'Camera "Back Door" not found.')
        status, body = await get("/motion")
        assert (status, body["message"]) == (500, "Malformed URL.")
        status, body = await get("/reboot?Front%20Door")
        assert status == 500 and body["error"] is True
    # motion_timeout_s (0.2 s here) clears the doorbell's motion by itself.
    cleared = asyncio.Event()
    motion.add_listener(lambda char, value, origin: value is False and cleared.set())
    await asyncio.wait_for(cleared.wait(), 5)
