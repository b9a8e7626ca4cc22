"""Media test fixtures: a real GStreamer RTSP camera on loopback, sample fMP4 files, and
helpers that check fragments with the real ffmpeg/ffprobe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from sidecar.media import MOVFLAGS, Fragment, InitSegment, MediaPipeline

CAMERA_SCRIPT = Path(__file__).with_name("rtsp_camera.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def _have_gst_rtsp() -> bool:
    try:
        subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer"],
            check=True, capture_output=True, timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


class RtspCamera:
    """The GStreamer RTSP server subprocess (see rtsp_camera.py), controllable by the test."""

    def __init__(self, log_path: Path, *, port: int = 0, fps: int = 15, gop: int = 60,
                 width: int = 320, height: int = 240, audio: bool = True, user: str | None = None,
                 password: str | None = None) -> None:
        self.port = port
        self.fps, self.gop, self.width, self.height, self.audio = fps, gop, width, height, audio
        self.user, self.password = user, password  # RTSP basic auth, if set
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


@pytest.fixture
async def rtsp_camera(tmp_path: Path) -> AsyncIterator[CameraFactory]:
    """A factory: ``cam = await rtsp_camera(gop=60, audio=True)``; every camera is killed and
    reaped at teardown."""
    if not _have_gst_rtsp():
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
def sample_fmp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """13 s of 320x240@15 H.264 + AAC 32 kHz mono as HKSV-style fMP4 (4 fragments)."""
    out = tmp_path_factory.mktemp("media") / "sample.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "13",
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
         "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ar", "32000", "-ac", "1", "-f", "mp4", "-movflags", MOVFLAGS, str(out)],
        check=True, timeout=60,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def ffmpeg_available() -> Iterator[None]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg not installed (bash .ci/setup)")
    yield


async def run_tool(*argv: str, stdin: bytes | None = None, timeout_s: float = 60) -> tuple[int, bytes, bytes]:
    """Run a command without blocking the loop; returns (rc, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


async def check_decodes(path: Path, init: InitSegment, fragments: list[Fragment]) -> dict[str, object]:
    """Write init + fragments to ``path``; assert ffmpeg decodes them without a single error and
    that the decoded video frame count matches the samples; return ffprobe's stream info."""
    with path.open("wb") as fh:
        fh.write(init.data)
        for fragment in fragments:
            fh.write(fragment.data)
    rc, _, err = await run_tool("ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-")
    assert rc == 0 and err == b"", err.decode(errors="replace")
    rc, out, err = await run_tool(
        "ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)
    )
    assert rc == 0, err
    info: dict[str, object] = json.loads(out)
    streams = info["streams"]
    assert isinstance(streams, list)
    video = next(s for s in streams if s["codec_type"] == "video")
    video_track = init.video
    assert video_track is not None
    expected = sum(
        t.sample_count for f in fragments for t in f.tracks if t.track_id == video_track.track_id
    )
    assert int(video["nb_read_frames"]) == expected
    return info


async def collect(pipeline: MediaPipeline, count: int, *, timeout_s: float = 40.0,
                  min_generation: int = 1) -> tuple[InitSegment, list[Fragment]]:
    """Subscribe (from the oldest keyframe fragment held) and gather ``count`` fragments of one
    generation, in order."""
    await pipeline.wait_for(
        lambda: pipeline.prebuffer.generation >= min_generation
        and pipeline.fragments_since(60_000) is not None,
        timeout_s,
    )
    init: InitSegment | None = None
    fragments: list[Fragment] = []
    async with asyncio.timeout(timeout_s), pipeline.subscribe(60_000, max_pending=64) as sub:
        async for item in sub:
            if isinstance(item, InitSegment):
                init = item
            else:
                fragments.append(item)
            if len(fragments) >= count:
                break
    assert init is not None and len(fragments) == count, f"subscription ended: {sub.close_reason}"
    return init, fragments


def audio_stream(info: dict[str, object]) -> dict[str, object] | None:
    streams = info["streams"]
    assert isinstance(streams, list)
    return next((s for s in streams if s["codec_type"] == "audio"), None)
