"""Fixtures more than one test package uses, registered once (``pytest_plugins`` in
tests/conftest.py): the sidecar as a real process, the RTSP test camera, a real mosquitto."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.rtsp_camera import CameraFactory, RtspCamera, have_gst_rtsp
from tests.support.sidecar_process import SidecarProcess, launch


@pytest.fixture
async def sidecar(tmp_path: Path) -> AsyncIterator[object]:
    started: list[SidecarProcess] = []

    async def start(*args: str) -> SidecarProcess:
        sp = SidecarProcess(await launch(tmp_path / "state", *args))
        started.append(sp)
        return sp

    yield start
    for sp in started:
        await sp.terminate()


@pytest.fixture
async def rtsp_camera(tmp_path: Path) -> AsyncIterator[CameraFactory]:
    """A factory: ``cam = await rtsp_camera(gop=60, audio=True)``; every camera is killed and
    reaped at teardown."""
    if not have_gst_rtsp():
        pytest.skip("GStreamer RTSP server not installed (bash .ci/setup --test)")
    cameras: list[RtspCamera] = []

    async def make(**options: object) -> RtspCamera:
        cam = RtspCamera(tmp_path / f"camera{len(cameras)}.log", **options)  # type: ignore[arg-type]
        cameras.append(cam)
        await cam.start()
        return cam

    try:
        yield make
    finally:
        for cam in cameras:
            await cam.kill()


@pytest.fixture(scope="session")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 s H.264 640x360@15 + AAC clip with 4 s keyframes: looped, it is a copy-mode camera.
    Made once per test session."""
    path = tmp_path_factory.mktemp("camera_clip") / "camera.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=32000", "-t", "12", "-map", "0:v", "-map", "1:a",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "32000", "-ac", "1", str(path)],
        check=True, timeout=60,
    )
    return path


@pytest.fixture(scope="session")
def h265_camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of 1920x1080@15 H.265 with an IDR every 4 s (closed GOP), for the RTSP camera's
    ``h265_file``: encoded once per test session, because live x265 at 1080p would take a core.
    Asks for the GStreamer RTSP server first, here outside the event loop (the answer is cached)."""
    if not have_gst_rtsp():
        pytest.skip("GStreamer RTSP server not installed (bash .ci/setup --test)")
    out = tmp_path_factory.mktemp("h265") / "camera.mkv"
    subprocess.run(
        ["nice", "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=15", "-t", "30",
         "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "1500k", "-x265-params",
         "keyint=60:min-keyint=60:scenecut=0:bframes=0:open-gop=0:repeat-headers=1:log-level=error",
         "-f", "matroska", str(out)],
        check=True, timeout=300,
    )
    return out


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
async def executor_joined() -> AsyncIterator[None]:
    """aiomqtt runs paho's blocking connect in the loop's default executor; join that thread at the
    end (set up first, so it is torn down last), or the suite's thread-leak guard sees it."""
    yield
    await asyncio.get_running_loop().shutdown_default_executor()
