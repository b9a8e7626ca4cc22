"""Children start off the event loop (a spawner thread) and are watched from it: pipes, exit,
signals, and a spawner that lives exactly as long as a child it started."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading

import psutil
import pytest

from sidecar.media.child import start_child
from sidecar.media.process import death_signal_wrapper


def spawner_alive() -> bool:
    return any(t.name == "spawner" and t.is_alive() for t in threading.enumerate())


async def test_a_child_is_started_off_the_loop_its_pipes_are_streams_and_its_exit_is_seen() -> None:
    loop_thread = threading.get_ident()
    child = await start_child(["sh", "-c", "read line; echo got $line; echo oops >&2; exit 3"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    assert psutil.Process(child.pid).ppid() == psutil.Process().pid
    assert spawner_alive() and threading.get_ident() == loop_thread
    child.stdin.write(b"hello\n")
    await child.stdin.drain()
    assert await asyncio.wait_for(child.stdout.read(), 10) == b"got hello\n"
    assert await asyncio.wait_for(child.stderr.read(), 10) == b"oops\n"
    assert await asyncio.wait_for(child.wait(), 10) == 3
    assert child.returncode == 3
    child.stdin.close()
    with pytest.raises(ProcessLookupError):  # reaped: its pid may be someone else's now
        child.send_signal(signal.SIGTERM)


async def test_the_spawner_outlives_its_children_and_ends_after_the_last() -> None:
    # With the death-signal wrapper the child dies when the thread that started it ends: it
    # must stay alive as long as the spawner's children do.
    first = await start_child([*death_signal_wrapper(), "sleep", "30"], stdin=subprocess.DEVNULL,
                              stdout=None, stderr=None)
    second = await start_child([*death_signal_wrapper(), "sleep", "30"], stdin=subprocess.DEVNULL,
                               stdout=None, stderr=None)
    await asyncio.sleep(0.2)  # the spawner is idle now, and must not end
    assert first.returncode is None and psutil.Process(first.pid).status() != psutil.STATUS_ZOMBIE
    first.kill()
    assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
    await asyncio.sleep(0.2)
    assert second.returncode is None and spawner_alive()
    second.terminate()
    assert await asyncio.wait_for(second.wait(), 10) == -signal.SIGTERM
    async with asyncio.timeout(5):
        while spawner_alive():  # noqa: ASYNC110 (a thread, not an awaitable)
            await asyncio.sleep(0.01)


async def test_a_program_that_cannot_run_raises_and_leaves_no_thread_or_child() -> None:
    with pytest.raises(FileNotFoundError):
        await start_child(["/nonexistent/ffmpeg"], stdin=None, stdout=subprocess.PIPE, stderr=None)
    async with asyncio.timeout(5):
        while spawner_alive():  # noqa: ASYNC110 (a thread, not an awaitable)
            await asyncio.sleep(0.01)


async def test_a_start_cancelled_midway_leaves_no_child() -> None:
    task = asyncio.ensure_future(start_child(["sleep", "30"], stdin=None, stdout=subprocess.PIPE, stderr=None))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the suite's guard fails the test if the sleep (or the spawner) is still around at the end
