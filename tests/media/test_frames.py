"""Detector frames: the y4m reader on real ffmpeg output, fuzzed, and the pass_fds pipe that
drops frames rather than ever holding ffmpeg back."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.media import MOVFLAGS
from sidecar.media.frames import FramePipe, GrayFrame, Y4mError, Y4mReader, read_frames

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]


def _ffmpeg(*args: str) -> bytes:
    return subprocess.run([*FFMPEG, *args], check=True, capture_output=True, timeout=60).stdout


@pytest.fixture(scope="module")
def y4m_gray() -> bytes:
    return _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=10", "-t", "2", "-vf", "scale=-2:100,format=gray",
                   "-f", "yuv4mpegpipe", "-")


@pytest.fixture(scope="module")
def raw_gray() -> bytes:
    return _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=10", "-t", "2", "-vf", "scale=-2:100,format=gray",
                   "-f", "rawvideo", "-")


def test_reads_ffmpeg_gray_frames_exactly(y4m_gray: bytes, raw_gray: bytes) -> None:
    reader = Y4mReader()
    frames = reader.feed(y4m_gray)
    assert reader.size == (178, 100)
    assert len(frames) == 20
    assert b"".join(f.data for f in frames) == raw_gray
    assert all((f.width, f.height) == (178, 100) for f in frames)


def test_byte_by_byte_is_the_same_as_at_once(y4m_gray: bytes) -> None:
    reader = Y4mReader()
    frames: list[GrayFrame] = []
    view = memoryview(y4m_gray)
    for i in range(0, len(view), 997):
        frames.extend(reader.feed(view[i:i + 997]))
    assert frames == Y4mReader().feed(y4m_gray)


def test_colour_input_keeps_only_the_luma_plane(raw_gray: bytes) -> None:
    colour = _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=10", "-t", "2", "-vf", "scale=-2:100",
                     "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-")
    frames = Y4mReader().feed(colour)
    assert len(frames) == 20
    # Same luma as the gray conversion, give or take the range conversion of format=gray.
    gray = raw_gray[:178 * 100]
    diffs = [abs(a - b) for a, b in zip(frames[0].data, gray, strict=True)]
    assert sum(diffs) / len(diffs) < 20


@pytest.mark.parametrize(("data", "message"), [
    (b"GIF89a" + b"\0" * 600, "not a YUV4MPEG2"),
    (b"YUV4MPEG2 W0 H100 Cmono\n", "out of range"),
    (b"YUV4MPEG2 W5000 H100 Cmono\n", "out of range"),
    (b"YUV4MPEG2 Wx H100 Cmono\n", "bad size"),
    (b"YUV4MPEG2 W10 H10 C420p10\n", "not supported"),
    (b"YUV4MPEG2 W4 H2 Cmono\nFRAMX\n" + b"\0" * 8, "expected FRAME"),
    (b"YUV4MPEG2 " + b"A" * 600, "header too long"),
    (b"YUV4MPEG2 W4 H2 Cmono\nFRAME" + b" " * 600, "frame header too long"),
])
def test_bad_streams_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(Y4mError, match=message):
        Y4mReader().feed(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.integers(1, 64))
def test_fuzz_never_crashes_and_stays_bounded(data: bytes, step: int) -> None:
    reader = Y4mReader()
    stream = b"YUV4MPEG2 W8 H4 Cmono\n" + data if data[:1] == b"F" else data
    try:
        for i in range(0, len(stream), step):
            for frame in reader.feed(stream[i:i + step]):
                assert len(frame.data) == frame.width * frame.height == 32
    except Y4mError:
        pass


async def _two_output_ffmpeg(pipe: FramePipe, seconds: float, *, raw: bool = False) -> tuple[int, int, bytes]:
    """One ffmpeg, as the camera's: fMP4 on stdout, detector frames on the passed pipe."""
    argv = [*FFMPEG, "-re", "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={seconds}",
            "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "mp4", "-movflags", MOVFLAGS,
            "pipe:1",
            "-map", "0:v", "-vf", "scale=-2:100,format=gray", "-f", "rawvideo" if raw else "yuv4mpegpipe",
            pipe.target]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                pass_fds=pipe.pass_fds)
    pipe.start()
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await pipe.close()
    assert proc.returncode == 0, err.decode()
    return proc.returncode, len(out), err


async def test_a_slow_detector_drops_frames_and_never_holds_ffmpeg_back() -> None:
    delivered: list[float] = []
    skipped: list[int] = []

    def slow_consumer(frame: GrayFrame, now: float) -> None:
        assert (frame.width, frame.height) == (178, 100)
        delivered.append(now)
        skipped.append(frame.skipped)
        time.sleep(0.15)  # a detector at ~6 frames a second, fed 25

    pipe = FramePipe(slow_consumer, name="test")
    started = time.monotonic()
    _, mp4_bytes, _ = await _two_output_ffmpeg(pipe, 3.0)
    elapsed = time.monotonic() - started
    assert pipe.frames == 75  # every frame ffmpeg wrote was read from the pipe...
    assert pipe.dropped > 0 and len(delivered) == pipe.frames - pipe.dropped  # ...the newest handed on
    assert sum(skipped) == pipe.dropped  # each frame tells the consumer how many it missed before it
    assert len(delivered) <= 3.0 / 0.15 + 5
    assert mp4_bytes > 10_000
    # ffmpeg ran at its own (-re) pace: a blocked pipe would have paced it at the detector's
    # 0.15 s per frame, 11 s for 75 frames.
    assert elapsed < 9.0


async def test_unreadable_frames_pause_detection_but_ffmpeg_still_runs() -> None:
    delivered: list[GrayFrame] = []
    pipe = FramePipe(lambda frame, now: delivered.append(frame), name="test")
    rc, mp4_bytes, _ = await _two_output_ffmpeg(pipe, 1.0, raw=True)
    assert rc == 0 and mp4_bytes > 1000
    assert delivered == [] and pipe.error is not None and "YUV4MPEG2" in pipe.error


async def test_a_pipe_closed_before_ffmpeg_starts_leaks_no_fd() -> None:
    import os
    before = set(os.listdir("/proc/self/fd"))
    pipe = FramePipe(lambda frame, now: None)
    assert pipe.target.startswith("pipe:") and len(pipe.pass_fds) == 1
    await pipe.close()
    assert pipe.pass_fds == ()
    assert set(os.listdir("/proc/self/fd")) <= before


async def test_read_frames_from_a_stdout_stream(y4m_gray: bytes) -> None:
    proc = await asyncio.create_subprocess_exec(
        *FFMPEG, "-f", "lavfi", "-i", "testsrc2=s=320x180:r=10", "-t", "2", "-vf", "scale=-2:100,format=gray",
        "-f", "yuv4mpegpipe", "-", stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    seen: list[GrayFrame] = []
    counts = await read_frames(proc.stdout, lambda frame, now: seen.append(frame), chunk=4096)
    await proc.wait()
    assert counts["frames"] == 20 and counts["bytes"] == len(y4m_gray)
    last = Y4mReader().feed(y4m_gray)[-1]
    assert (seen[-1].width, seen[-1].height, seen[-1].data) == (last.width, last.height, last.data)
    assert sum(f.skipped for f in seen) == counts["dropped"]
    assert len(seen) == counts["frames"] - counts["dropped"]
