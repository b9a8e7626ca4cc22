"""The GStreamer RTSP test camera (real RTSP on 127.0.0.1) as a subprocess the test controls:
started, stalled (SIGSTOP), resumed and killed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

CAMERA_SCRIPT = Path(__file__).with_name("rtsp_camera_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


@functools.cache
def have_gst_rtsp() -> bool:
    """Whether the GStreamer RTSP server imports (asked once per test run: the first import scans
    GStreamer's plugin registry, which takes many seconds on a loaded machine, so the timeout is
    generous; under CI=true a skip for its absence fails the run)."""
    try:
        subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer"],
            check=True, capture_output=True, timeout=90,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


class RtspCamera:
    """The GStreamer RTSP server subprocess (see rtsp_camera_server.py), controllable by the test."""

    def __init__(self, log_path: Path, *, port: int = 0, fps: int = 15, gop: int = 60,
                 width: int = 320, height: int = 240, audio: bool = True, user: str | None = None,
                 password: str | None = None, backchannel: Path | None = None,
                 h265_file: Path | None = None) -> None:
        self.port = port
        self.fps, self.gop, self.width, self.height, self.audio = fps, gop, width, height, audio
        self.user, self.password = user, password  # RTSP basic auth, if set
        self.backchannel = backchannel  # an ONVIF speaker track, written to this file (mu-law)
        self.h265_file = h265_file  # serve this pre-encoded H.265 clip (size, fps and GOP are its own)
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    async def start(self) -> None:
        args = [SYSTEM_PYTHON, str(CAMERA_SCRIPT), "--port", str(self.port), "--fps", str(self.fps),
                "--gop", str(self.gop), "--width", str(self.width), "--height", str(self.height)]
        if not self.audio:
            args.append("--no-audio")
        if self.backchannel is not None:
            args += ["--backchannel", str(self.backchannel)]
        if self.h265_file is not None:
            args += ["--h265-file", str(self.h265_file)]
        if self.user:
            args += ["--user", self.user, "--password", self.password or ""]
        with self.log_path.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=err
            )
        assert self.proc.stdout is not None
        async with asyncio.timeout(15):
            line = await self.proc.stdout.readline()
        if not line.startswith(b"READY"):
            await self.kill()
            raise RuntimeError(f"RTSP camera did not start: {line!r}; see {self.log_path}")
        self.port = int(line.split()[1])

    def pause(self) -> None:
        """Stall the camera (SIGSTOP): TCP stays up, nothing more is sent."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    async def kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        if proc.stdout is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.stdout.read(), 5)
        await proc.wait()
        self.proc = None


CameraFactory = Callable[..., Awaitable[RtspCamera]]
