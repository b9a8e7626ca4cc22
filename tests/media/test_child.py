"""Children start off the event loop (a spawner thread) and are watched from it: pipes, exit,
signals, and a spawner that lives exactly as long as a child it started."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading

import psutil
import pytest

from sidecar.media.child import PipeSource, start_child
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


async def test_direct_stdout_is_read_into_the_consumers_buffers_and_closed_at_eof() -> None:
    """A PipeSource reads into exactly the buffer the consumer hands out, stops when told and
    goes on where it stopped, and at EOF closes the pipe and returns."""
    payload = bytes(range(256)) * 4096  # 1 MiB, more than a pipe holds: several reads
    child = await start_child(["sh", "-c", f"head -c {len(payload)} /dev/stdin"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=None, direct_stdout=True)
    assert isinstance(child.stdout, PipeSource) and child.stdin is not None
    child.stdin.write(payload)
    child.stdin.close()
    out = bytearray(len(payload))
    pos = 0
    calls: list[int] = []

    def get_buffer() -> memoryview:
        return memoryview(out)[pos : pos + 1000 if not calls else len(out)]  # the first read: 1000 bytes at most

    def updated(n: int) -> bool:
        nonlocal pos
        pos += n
        calls.append(n)
        return len(calls) == 1  # stop after the first read

    await asyncio.wait_for(child.stdout.pump(get_buffer, updated), 10)
    assert calls == [1000] and not child.stdout.at_eof
    await asyncio.wait_for(child.stdout.pump(get_buffer, updated), 10)
    assert bytes(out) == payload and child.stdout.at_eof and len(calls) > 2
    assert await child.stdout.read(10) == b""
    assert await asyncio.wait_for(child.wait(), 10) == 0


async def test_an_error_in_the_consumer_ends_the_pump_and_reaches_its_caller() -> None:
    child = await start_child(["sh", "-c", "echo hello; sleep 30"], stdin=None, stdout=subprocess.PIPE,
                              stderr=None, direct_stdout=True)
    assert isinstance(child.stdout, PipeSource)
    buf = memoryview(bytearray(100))

    def updated(n: int) -> bool:
        raise RuntimeError(bytes(buf[:n]).decode())

    with pytest.raises(RuntimeError, match="hello"):
        await asyncio.wait_for(child.stdout.pump(lambda: buf, updated), 10)
    child.stdout.close()  # idempotent; the pipe is ours to close when nobody reads it
    child.stdout.close()
    child.kill()
    assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
