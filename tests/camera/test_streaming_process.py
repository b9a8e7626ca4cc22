"""LiveStreamProcess: a live ffmpeg ends when it exits, stalls or is stopped, and is always reaped.

A small Python script stands in for ffmpeg: it speaks ffmpeg's ``-progress`` format and then
misbehaves in the way under test (hangs, exits, ignores SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from sidecar.media import LiveStreamProcess
from tests.support.processes import gone

PROGRESS = "import sys, time, signal\n" \
           "def block(n):\n" \
           "    print(f'frame={n}\\nout_time_us={n * 66666}\\nprogress=continue', flush=True)\n"


def fake(body: str) -> list[str]:
    return [sys.executable, "-c", PROGRESS + body]


async def test_frames_that_stop_moving_are_a_stall() -> None:
    proc = LiveStreamProcess(fake("block(1); block(2)\nwhile True: block(2); time.sleep(0.1)"),
                             stall_timeout_s=0.5)
    reason = await asyncio.wait_for(proc.run(), 10)
    assert reason.startswith("stalled") and proc.frames == 2 and proc.first_frame.is_set()
    assert gone(proc.pid)


async def test_no_frames_at_all_is_a_failed_start() -> None:
    proc = LiveStreamProcess(fake("print('SDP:'); print('v=0', flush=True); time.sleep(60)"), startup_timeout_s=0.5)
    reason = await asyncio.wait_for(proc.run(), 10)
    assert reason.startswith("stalled") and not proc.first_frame.is_set()
    assert gone(proc.pid)


async def test_an_exit_ends_the_run_with_ffmpegs_last_words() -> None:
    proc = LiveStreamProcess(fake("block(1); print('Connection refused', file=sys.stderr); sys.exit(1)"))
    reason = await asyncio.wait_for(proc.run(), 10)
    assert reason == "connection refused"  # the cause in words, from ffmpeg's stderr
    # Not ``== 1``: for a child that exits at once, asyncio's ThreadedChildWatcher sometimes
    # finds it already reaped and reports 255 (seen after other tests ran in the same process).
    assert proc.returncode in (1, 255) and gone(proc.pid)


async def test_stop_kills_what_ignores_sigterm() -> None:
    proc = LiveStreamProcess(fake("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                  "n = 0\nwhile True:\n    n += 1; block(n); time.sleep(0.05)"),
                             stop_timeout_s=0.3)
    task = asyncio.ensure_future(proc.run())
    await asyncio.wait_for(proc.first_frame.wait(), 10)
    proc.request_stop("the controller ended it")
    assert await asyncio.wait_for(task, 10) == "the controller ended it"
    assert proc.returncode == -9 and gone(proc.pid)


async def test_cancelling_the_runner_still_reaps() -> None:
    proc = LiveStreamProcess(fake("n = 0\nwhile True:\n    n += 1; block(n); time.sleep(0.05)"))
    task = asyncio.ensure_future(proc.run())
    await asyncio.wait_for(proc.first_frame.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert proc.returncode is not None and gone(proc.pid)


async def test_a_missing_binary_is_a_reason_not_an_exception() -> None:
    proc = LiveStreamProcess(["/nonexistent/ffmpeg"])
    assert (await proc.run()).startswith("ffmpeg not found: '/nonexistent/ffmpeg'")
