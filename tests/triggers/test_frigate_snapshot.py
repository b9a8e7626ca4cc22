"""A Frigate-backed camera's snapshot: the hub's size reaches a stand-in Frigate API as both ``h``
(Frigate <= 0.14) and ``height`` (0.15+), and the JPEG it returns is what the hub gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from sidecar.app import camera_spec
from sidecar.camera import Camera
from sidecar.config import build_config
from tests.support.hap_client import aio_pair

PIN = "031-45-154"


@pytest.fixture
async def frigate_api(tmp_path: Path) -> AsyncIterator[tuple[str, list[dict[str, str]], bytes]]:
    jpeg = tmp_path / "latest.jpg"
    ff = await asyncio.create_subprocess_exec("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x36",
                                              "-frames:v", "1", str(jpeg))
    assert await ff.wait() == 0
    body = jpeg.read_bytes()
    seen: list[dict[str, str]] = []

    async def latest(request: web.Request) -> web.Response:
        assert request.match_info["camera"] == "front_door"
        seen.append(dict(request.query))
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/api/{camera}/latest.jpg", latest)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen, body
    finally:
        await runner.cleanup()


async def test_hub_snapshot_comes_from_frigate_at_the_requested_height(
        frigate_api: tuple[str, list[dict[str, str]], bytes], tmp_path: Path) -> None:
    base, seen, body = frigate_api
    config = build_config({"mqtt": {"host": "127.0.0.1"}, "cameras": [{
        "name": "Front Door", "source": "demo", "profile": "libx264", "setup_code": PIN,
        "mqtt": {"preset": "frigate_reviews", "frigate_url": base}}]})
    camera = Camera(camera_spec(config.cameras[0]), tmp_path, host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    try:
        pairing = await aio_pair(camera.server.port, PIN)
        try:
            image = await pairing.image(1, 640, 360)
        finally:
            await pairing.shutdown()
    finally:
        await camera.stop()
    assert image == body
    assert seen == [{"h": "360", "height": "360"}]
