"""The one ffmpeg runner with real ffmpeg: causes in words, masked stderr, extra pipes,
ffmpeg-python argv, children that die with their parent, and reaping on every path."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import ffmpeg as ffmpeg_python
import psutil
import pytest

from sidecar.media import (
    MOVFLAGS,
    EndKind,
    FfmpegRun,
    Fmp4Reader,
    Fragment,
    InitSegment,
    MediaPipeline,
    PipelineConfig,
    ProbeError,
    RecordingSettings,
    Source,
    parse_source,
    probe_source,
)
from sidecar.media.child import PipeSource
from tests.support.ports import free_port as closed_port
from tests.support.processes import gone
from tests.support.rtsp_camera import CameraFactory

PASSWORD = "Pa55-w0rd-xyzzy"
SMALL = RecordingSettings(width=320, height=240, fps=15, bitrate_kbps=300, profile="high", level="3.1")


def to_fmp4(*inputs: str) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", *inputs, "-t", "1",
            "-f", "mp4", "-movflags", MOVFLAGS, "pipe:1"]


async def test_causes_in_words_from_real_ffmpeg(tmp_path: Path) -> None:
    ffv1 = tmp_path / "ffv1.mkv"
    done = await FfmpegRun(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=d=1:s=160x120", "-c:v", "ffv1",
                            str(ffv1)], name="make").run()
    assert done.ok
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{closed_port()}/stream"
    cases = [
        (to_fmp4("-rtsp_transport", "tcp", "-timeout", "2000000", "-i", url), "connection refused"),
        (to_fmp4("-i", str(tmp_path / "missing.mp4")), "no such file"),
        (to_fmp4("-i", str(ffv1), "-c:v", "copy"), "codec not supported"),
        (to_fmp4("-f", "lavfi", "-i", "testsrc2", "-c:v", "h264_no_such_encoder"),
         "codec not supported: this ffmpeg lacks the encoder"),
    ]
    for argv, reason in cases:
        result = await FfmpegRun(argv, name="t").run()
        assert (result.end, result.reason, result.exit_code) == (EndKind.EXITED, reason, 1), result
        assert result.stderr and not any(PASSWORD in line for line in result.stderr)
    assert any("admin:***@127.0.0.1" in line for line in (await FfmpegRun(cases[0][0], name="t").run()).stderr)


@pytest.mark.slow
async def test_wrong_password_is_401_in_words_and_the_probe_says_so(rtsp_camera: CameraFactory) -> None:
    cam = await rtsp_camera(user="admin", password=PASSWORD, audio=False)
    wrong = f"rtsp://admin:{PASSWORD}-not@127.0.0.1:{cam.port}/cam"
    with pytest.raises(ProbeError) as err:
        await probe_source(parse_source(wrong), timeout_s=10)
    message = str(err.value)
    assert message == f"rtsp://admin:***@127.0.0.1:{cam.port}/cam: 401 unauthorized: check the user and password"
    # The right password works through the same runner.
    right = f"rtsp://admin:{PASSWORD}@127.0.0.1:{cam.port}/cam"
    probe = await probe_source(parse_source(right), timeout_s=20)
    assert probe.is_h264 and (probe.width, probe.height) == (320, 240)


async def test_probe_of_a_refusing_camera_names_the_cause() -> None:
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{closed_port()}/stream"
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"^rtsp://admin:\*\*\*@127\.0\.0\.1:\d+/stream: connection refused$"):
        await probe_source(parse_source(url), timeout_s=10)
    assert time.monotonic() - started < 5  # refused is known at once, not after the timeout


async def test_second_output_on_an_extra_pipe(tmp_path: Path) -> None:
    """What the motion detector needs: fMP4 on stdout and small gray frames on another fd."""
    read_fd, write_fd = os.pipe()
    frames = bytearray()
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-f", "lavfi", "-t", "2", "-i",
            "testsrc2=size=320x240:rate=15",
            "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-f", "mp4", "-movflags", MOVFLAGS,
            "pipe:1",
            "-map", "0:v", "-vf", "fps=5,scale=32:18,format=gray", "-f", "rawvideo", f"pipe:{write_fd}"]
    reader = Fmp4Reader()
    events: list[object] = []

    async def consume(stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
        while chunk := await stdout.read(1 << 16):
            events.extend(reader.feed(chunk))
            run.progress()
        return None

    def spawned(pid: int) -> None:
        nonlocal write_fd
        os.close(write_fd)  # ours; ffmpeg has its own copy, so EOF comes when ffmpeg exits
        write_fd = -1

    run = FfmpegRun(argv, name="two-outputs", consume=consume, pass_fds=(write_fd,), on_spawn=spawned,
                    startup_timeout_s=20)
    loop = asyncio.get_running_loop()
    task = loop.create_task(run.run())
    try:
        await asyncio.wait_for(run.spawned.wait(), 10)
        assert write_fd == -1
        pipe_reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(pipe_reader),
                                                    os.fdopen(read_fd, "rb", buffering=0))
        try:
            while chunk := await asyncio.wait_for(pipe_reader.read(1 << 16), 20):
                frames.extend(chunk)
        finally:
            transport.close()
        result = await asyncio.wait_for(task, 20)
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert result.ok, result
    assert len(frames) == 10 * 32 * 18  # 2 s at 5 fps, 32x18 gray
    assert isinstance(events[0], InitSegment) and len(events) >= 2


async def test_a_direct_consumer_reads_stdout_in_place_and_a_verdict_still_drains_and_reaps() -> None:
    """``consume_direct``: stdout comes as a PipeSource; when the consumer has its verdict,
    ffmpeg is stopped, what it still writes is drained (or it would block), it is reaped, and
    the pipe is closed."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re", "-f", "lavfi", "-i",
            "testsrc2=size=160x120:rate=10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5",
            "-f", "mp4", "-movflags", MOVFLAGS, "pipe:1"]
    reader = Fmp4Reader()
    events: list[object] = []
    sources: list[PipeSource] = []

    async def consume(stdout: PipeSource, run: FfmpegRun) -> str | None:
        sources.append(stdout)

        def updated(n: int) -> bool:
            events.extend(reader.buffer_updated(n))
            run.progress()
            return len(events) >= 3  # the init segment and two fragments: enough

        await stdout.pump(reader.get_buffer, updated)
        return "seen enough"

    run = FfmpegRun(argv, name="direct", consume_direct=consume, startup_timeout_s=20)
    result = await asyncio.wait_for(run.run(), 30)
    assert (result.end, result.reason) == (EndKind.CONSUMER, "seen enough") and gone(run.pid)
    assert isinstance(events[0], InitSegment) and all(isinstance(e, Fragment) for e in events[1:])
    assert sources[0].at_eof  # closed: no descriptor left behind


async def test_ffmpeg_python_compile_is_accepted() -> None:
    stream = (ffmpeg_python.input("testsrc2=size=160x120:rate=10", f="lavfi", t=1)
              .output("pipe:1", format="mp4", vcodec="libx264", movflags=MOVFLAGS, g=10)
              .global_args("-hide_banner", "-nostdin", "-loglevel", "warning"))
    run = FfmpegRun(stream, name="compiled")
    assert run.argv[0] == "ffmpeg" and "pipe:1" in run.argv
    result = await run.run()
    assert result.ok and result.progressed, result


async def test_stop_and_cancel_always_reap() -> None:
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
            "-f", "null", "-"]
    run = FfmpegRun(argv, name="stop")
    task = asyncio.ensure_future(run.run())
    await asyncio.wait_for(run.spawned.wait(), 10)
    run.request_stop("the test is done")
    result = await asyncio.wait_for(task, 10)
    assert (result.end, result.reason) == (EndKind.STOPPED, "the test is done") and gone(run.pid)

    run = FfmpegRun(argv, name="cancel")
    task = asyncio.ensure_future(run.run())
    await asyncio.wait_for(run.spawned.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert run.returncode is not None and gone(run.pid)


CHILD = """
import asyncio, sys
from sidecar.media import FfmpegRun

async def main():
    run = FfmpegRun(["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                     "-f", "null", "-"], name="orphan")
    task = asyncio.ensure_future(run.run())
    await run.spawned.wait()
    print(run.pid, flush=True)
    await task

asyncio.run(main())
"""


async def test_ffmpeg_dies_with_a_sigkilled_parent() -> None:
    """The sidecar SIGKILLed: its ffmpeg must not live on as an orphan (issue 10: 1-5 s)."""
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, stdout=asyncio.subprocess.PIPE,
                                                  cwd=Path(__file__).parents[2])
    assert parent.stdout is not None
    try:
        line = await asyncio.wait_for(parent.stdout.readline(), 20)
        pid = int(line)
        child = psutil.Process(pid)
        assert child.ppid() == parent.pid
        async with asyncio.timeout(10):  # setpriv sets the flag, then execs ffmpeg (same pid)
            while child.name() != "ffmpeg":  # noqa: ASYNC110 (another process's exec: no event)
                await asyncio.sleep(0.01)
    finally:
        parent.send_signal(signal.SIGKILL)
        await parent.wait()
    killed = time.monotonic()
    while not gone(pid) and time.monotonic() - killed < 5:  # noqa: ASYNC110 (not our child: no event to wait on)
        await asyncio.sleep(0.01)
    took = time.monotonic() - killed
    print(f"ffmpeg gone {took * 1000:.0f} ms after its parent was SIGKILLed")
    assert gone(pid) and took < 1.0


async def test_no_keyframe_is_the_watchdogs_words(tmp_path: Path, sample_fmp4: bytes) -> None:
    # Stands in for a camera that sent its stream header and then nothing.
    init = next(e for e in Fmp4Reader().feed(sample_fmp4) if isinstance(e, InitSegment))
    (tmp_path / "init.mp4").write_bytes(bytes(init.data))
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'init.mp4'}\nexec sleep 600\n")
    fake.chmod(0o755)
    pipeline = MediaPipeline(PipelineConfig(
        source=Source(f"rtsp://admin:{PASSWORD}@127.0.0.1:9/x"), profile="copy", settings=SMALL, name="nokey",
        ffmpeg_bin=str(fake), silence_timeout_s=0.5, backoff_initial_s=5.0))
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.status().last_error is not None, 10)
        status = pipeline.status()
        assert status.last_error == "no keyframe for 0.5 s"
        assert PASSWORD not in repr(status) and "admin:***@127.0.0.1:9" in status.source
    finally:
        await pipeline.stop()
