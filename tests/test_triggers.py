"""HTTP triggers (homebridge-camera-ffmpeg's URLs) on the web server's port, against real cameras."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.camera import Camera, CameraSpec
from sidecar.triggers import parse_trigger_query
from sidecar.web import WebServer

TOKEN = "s3cret-token"


async def _start(tmp_path: Path, token: str | None) -> tuple[list[Camera], WebServer]:
    door = Camera(CameraSpec(name="Front Door", source="demo", profile="libx264", doorbell=True,
                               motion_timeout_s=0.2), tmp_path, host="127.0.0.1", port=0, advertiser=None)
    yard = Camera(CameraSpec(name="Yard", source="demo", profile="libx264"), tmp_path, host="127.0.0.1", port=0,
                  advertiser=None)
    # motion: [detector] (no http): HTTP may not raise or clear its motion, but its doorbell still rings.
    shed = Camera(CameraSpec(name="Shed", source="demo", profile="libx264", doorbell=True, http_motion=False),
                  tmp_path, host="127.0.0.1", port=0, advertiser=None)
    cameras = [door, yard, shed]
    for camera in cameras:
        await camera.start()
    server = WebServer(lambda: cameras, host="127.0.0.1", port=0, trigger_token=token)
    for camera in cameras:
        server.attach(camera)
    await server.start()
    return cameras, server


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[list[Camera], str]]:
    cameras, server = await _start(tmp_path, None)
    try:
        yield cameras, f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()
        for camera in cameras:
            await camera.stop()


async def test_motion_reset_doorbell_and_errors(setup: tuple[list[Camera], str]) -> None:
    (camera, yard, shed), base = setup
    motion, press = camera.services.motion, camera.services.doorbell_press
    assert press is not None
    presses: list[object] = []
    press.add_listener(lambda char, value, origin: presses.append(value))
    async with aiohttp.ClientSession() as http:
        async def call(path: str, method: str = "GET") -> tuple[int, dict[str, object]]:
            async with http.request(method, base + path) as resp:
                if method == "HEAD" or resp.content_type != "application/json":
                    return resp.status, {}
                return resp.status, await resp.json()

        assert await call("/motion?Front%20Door") == (200, {"error": False, "message": "Motion switched on."})
        assert motion.value is True
        assert await call("/motion/reset?front door=") == (200, {"error": False, "message": "Motion switched off."})
        assert motion.value is False
        status, body = await call("/doorbell?camera=Front+Door")
        assert status == 200 and presses == [0] and motion.value is True  # a press raises motion too
        status, body = await call("/motion?Back%20Door")
        assert (status, body["error"], body["message"]) == (500, True, 'Camera "Back Door" not found.')
        status, body = await call("/motion")
        assert (status, body["message"]) == (500, "Malformed URL.")
        status, body = await call("/reboot?Front%20Door")
        assert status == 404

        # Only GET triggers: HEAD, POST and DELETE change nothing and answer 405.
        yard_motion = yard.services.motion
        for method in ("HEAD", "POST", "DELETE", "PUT"):
            status, _ = await call("/motion?Yard", method)
            assert status == 405, method
        assert yard_motion.value is False
        # A camera without a doorbell refuses /doorbell and raises no motion.
        status, body = await call("/doorbell?Yard")
        assert status == 500 and body["error"] is True and "has no doorbell" in str(body["message"])
        assert yard_motion.value is False
        # A camera whose motion: list has no http refuses /motion and /motion/reset; the doorbell rings.
        shed_motion = shed.services.motion
        for path in ("/motion?Shed", "/motion/reset?Shed"):
            status, body = await call(path)
            assert (status, body["message"]) == (403, 'HTTP motion is off for camera "Shed" (add http to its '
                                                      'motion: list).'), path
        assert shed_motion.value is False
        status, body = await call("/doorbell?Shed")
        assert status == 200 and shed_motion.value is True
    # motion_timeout_s (0.2 s here) clears the doorbell's motion by itself.
    cleared = asyncio.Event()
    motion.add_listener(lambda char, value, origin: value is False and cleared.set())
    await asyncio.wait_for(cleared.wait(), 5)


async def test_trigger_token(tmp_path: Path) -> None:
    cameras, server = await _start(tmp_path, TOKEN)
    base = f"http://127.0.0.1:{server.port}"
    motion = cameras[1].services.motion
    try:
        async with aiohttp.ClientSession() as http:
            for query in ("Yard", "Yard&token=wrong-token", "camera=Yard&token="):
                async with http.get(f"{base}/motion?{query}") as resp:
                    assert resp.status == 403 and (await resp.json())["message"] == "Missing or wrong token."
            assert motion.value is False
            async with http.get(f"{base}/motion?Yard&token={TOKEN}") as resp:
                assert resp.status == 200
            assert motion.value is True
    finally:
        await server.stop()
        for camera in cameras:
            await camera.stop()


def test_parse_trigger_query_forms() -> None:
    assert parse_trigger_query("Front%20Door") == ("Front Door", None)
    assert parse_trigger_query("Front%20Door=&token=abc") == ("Front Door", "abc")
    assert parse_trigger_query("token=abc&camera=Yard") == ("Yard", "abc")
    assert parse_trigger_query("camera=Front+Door") == ("Front Door", None)
    assert parse_trigger_query("") == ("", None)


@given(st.text(max_size=300))
def test_parse_trigger_query_never_raises(query: str) -> None:
    name, token = parse_trigger_query(query)
    assert isinstance(name, str) and (token is None or isinstance(token, str))


@given(st.binary(max_size=300))
def test_parse_trigger_query_on_raw_bytes(raw: bytes) -> None:
    parse_trigger_query(raw.decode("latin-1"))
