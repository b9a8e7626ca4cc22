"""Snapshots with real ffmpeg: from a prebuffered fragment, from a source, from an HTTP URL."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from sidecar.camera.snapshot import SnapshotError, jpeg_from_fmp4, jpeg_from_input, jpeg_from_url
from sidecar.media import Fmp4Reader, Fragment, InitSegment


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the JPEG's SOF0 marker (no image library needed)."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC2):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + length
    raise AssertionError("no SOF marker")


@pytest.fixture(scope="module")
def fmp4(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    out = tmp_path_factory.mktemp("snap") / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=15", "-t", "8", "-c:v", "libx264", "-g", "60", "-bf", "0",
                    "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", str(out)], check=True)
    reader = Fmp4Reader()
    init = b""
    frags: list[bytes] = []
    for event in reader.feed(out.read_bytes()):
        if isinstance(event, InitSegment):
            init = bytes(event.data)
        elif isinstance(event, Fragment):
            frags.append(bytes(event.data))
    assert init and len(frags) >= 2
    return init, frags[-1]


async def test_from_prebuffered_fragment(fmp4: tuple[bytes, bytes]) -> None:
    init, fragment = fmp4
    jpeg = await jpeg_from_fmp4(init, fragment, 320, 180)
    assert jpeg.startswith(b"\xff\xd8") and jpeg_size(jpeg) == (320, 180)
    # A different aspect ratio fits inside the requested box.
    assert jpeg_size(await jpeg_from_fmp4(init, fragment, 320, 240)) == (320, 180)


async def test_garbage_is_an_error_not_a_crash() -> None:
    with pytest.raises(SnapshotError):
        await jpeg_from_fmp4(b"not", b"mp4", 320, 180)


async def test_from_source_and_timeout(tmp_path: Path) -> None:
    jpeg = await jpeg_from_input(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=5"], 640, 360)
    assert jpeg_size(jpeg) == (640, 360)
    fifo = tmp_path / "never"
    import os

    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a source that never sends a byte
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await jpeg_from_input(["-f", "h264", "-i", str(fifo)], 640, 360)
    finally:
        os.close(writer)


async def test_a_refusing_camera_is_an_error_in_words_with_the_password_masked() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"rtsp://admin:Snap-Secret-1@127.0.0.1:{port}/live"
    with pytest.raises(SnapshotError) as err:
        await jpeg_from_input(["-rtsp_transport", "tcp", "-i", url], 640, 360)
    assert str(err.value) == "ffmpeg could not make a JPEG: connection refused"


@pytest.fixture
async def nvr() -> AsyncIterator[str]:
    async def latest(request: web.Request) -> web.Response:
        if request.match_info["cam"] == "broken":
            return web.Response(status=500)
        if request.match_info["cam"] == "html":
            return web.Response(text="<html>")
        return web.Response(body=b"\xff\xd8fake-jpeg\xff\xd9", content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/api/{cam}/latest.jpg", latest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_from_url(nvr: str) -> None:
    assert (await jpeg_from_url(f"{nvr}/api/front/latest.jpg")).startswith(b"\xff\xd8")
    for cam in ("broken", "html"):
        with pytest.raises(SnapshotError):
            await jpeg_from_url(f"{nvr}/api/{cam}/latest.jpg")
    with pytest.raises(SnapshotError):
        await jpeg_from_url("http://127.0.0.1:9/none.jpg")
