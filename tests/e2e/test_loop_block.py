"""Nothing the sidecar does holds its event loop for more than 50 ms, even at its busiest: 16
cameras start in one sidecar (in this process, so its loop is the one measured), then 8 hubs
pair with 8 of them at once and all 8 record at once. The hubs run in a process of their own
(tests/hub/fleet.py): their aiohomekit pair-setup would otherwise weigh on the loop measured.

What is bounded is the CPU time the loop's thread spends in each callback (every handle and
task step), 50 ms: the work the sidecar itself puts on its loop. Wall time per callback is
what the suite's slow-callback guard watches; on a shared, loaded machine the kernel preempts
the process for longer than 50 ms at random, so that guard keeps its looser suite-wide bound
(``HKSV_TEST_BLOCK_LIMIT=0.05`` tightens it on an idle machine). The worst callback by either
measure, and the loop's worst lag (how late a 10 ms timer fires), are printed.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sidecar import App, CameraConfig, Config  # imported here, not in the loop measured

PIN = "031-45-154"
CAMERAS = 16
HUBS = 8
LIMIT_S = 0.050
pytestmark = pytest.mark.slow


@contextmanager
def callback_cpu_times(over: list[tuple[float, str]], worst: list[float]) -> Iterator[None]:
    """Measure the loop thread's CPU time (``worst[0]``) and wall time (``worst[1]``) in every
    callback (``Handle._run``), keeping those over the bound in CPU time."""
    original = asyncio.events.Handle._run

    def run(handle: asyncio.Handle) -> None:
        start, wall = time.thread_time(), time.perf_counter()
        try:
            original(handle)
        finally:
            spent = time.thread_time() - start
            worst[0] = max(worst[0], spent)
            worst[1] = max(worst[1], time.perf_counter() - wall)
            if spent > LIMIT_S:
                over.append((spent, repr(handle)[:300]))

    asyncio.events.Handle._run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]


async def lag_monitor(worst: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], time.perf_counter() - before - 0.01)


async def line(proc: asyncio.subprocess.Process, timeout: float) -> str:
    assert proc.stdout is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), timeout)
    return raw.decode().strip()


async def test_16_cameras_start_8_hubs_pair_and_record_at_once_with_no_callback_over_50_ms(
        tmp_path: Path, camera_clip: Path) -> None:
    over: list[tuple[float, str]] = []
    worst = [0.0, 0.0]
    # The test runner's own heap (every earlier test's objects) is not the sidecar's: collect it
    # and keep it out of the collector while measuring, so a full collection of the suite's
    # garbage (219 ms of CPU in one clean-clone run) is not charged to a sidecar callback.
    gc.collect()
    gc.freeze()
    try:
        with callback_cpu_times(over, worst):
            await asyncio.sleep(0)  # from the next step on, every step is measured
            await run_the_busy_minute(tmp_path, camera_clip)
    finally:
        gc.unfreeze()
    print(f"worst callback: {worst[0] * 1000:.0f} ms of CPU, {worst[1] * 1000:.0f} ms of wall time "
          f"(debug mode, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    assert not over, "callbacks over 50 ms of CPU:\n" + "\n".join(f"{t * 1000:.0f} ms {h}" for t, h in over)


async def run_the_busy_minute(tmp_path: Path, camera_clip: Path) -> None:
    worst = [0.0]
    stop = asyncio.Event()
    monitor = asyncio.ensure_future(lag_monitor(worst, stop))
    config = Config(state_dir=tmp_path / "state", bind="127.0.0.1", mdns=False, cameras=[
        CameraConfig(name=f"Cam {n:02d}", source=f"loop:{camera_clip}", profile="copy", setup_code=PIN)
        for n in range(CAMERAS)])
    app = App(config, out=io.StringIO())
    started = time.monotonic()
    await app.start()
    timings = {"start": time.monotonic() - started}
    hubs = None
    try:
        recorded = app.cameras[:HUBS]
        hubs = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.hub.fleet", "--pin", PIN, *(str(c.server.port) for c in recorded),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        mark = time.monotonic()
        assert await line(hubs, 60) == "PAIRED"
        timings["pair"] = time.monotonic() - mark
        assert await line(hubs, 60) == "ENABLED"
        await asyncio.gather(*(c.pipeline.wait_ready(4000) for c in recorded))
        assert hubs.stdin is not None
        hubs.stdin.write(b"RECORD\n")
        mark = time.monotonic()
        assert await line(hubs, 90) == "RECORDED"
        timings["record"] = time.monotonic() - mark
        sizes = json.loads(await line(hubs, 10))
        assert len(sizes) == HUBS and min(sizes) > 50_000
        assert await asyncio.wait_for(hubs.wait(), 20) == 0
    finally:
        if hubs is not None and hubs.returncode is None:
            hubs.kill()
            await hubs.wait()
        await app.stop()
        stop.set()
        await monitor
    print(f"\n{CAMERAS} cameras started in {timings['start']:.2f} s, {HUBS} hubs paired in {timings['pair']:.2f} s, "
          f"recorded at once in {timings['record']:.2f} s; worst loop lag {worst[0] * 1000:.0f} ms "
          f"(how late a 10 ms timer fired)")
