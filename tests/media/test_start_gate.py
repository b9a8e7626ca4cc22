"""Many pipelines starting together take turns: at most the gate's limit of ffmpeg are starting at
once, each gives its slot back at its init segment (or after the hold time), and a pipeline
stopped while it waits for a slot stops at once without starting ffmpeg."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from sidecar.media import MediaPipeline, PipelineConfig, RecordingSettings, Source
from sidecar.media.start_gate import _GATES, START_LIMIT, StartGate, start_gate
from tests.support.processes import ffmpeg_children

SETTINGS = RecordingSettings(width=320, height=240, fps=15, bitrate_kbps=300, audio=False)


async def test_the_gate_holds_at_most_its_limit_and_a_slot_comes_back_once() -> None:
    gate = StartGate(limit=2, hold_s=60)
    first, second = await gate.acquire(), await gate.acquire()
    third = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0.05)
    assert not third.done() and gate.starting == 2
    first()
    first()  # a second release gives nothing more back
    release_third = await asyncio.wait_for(third, 5)
    assert gate.starting == 2 and gate._free.locked()
    second()
    release_third()
    assert gate.starting == 0 and not gate._free.locked()


async def test_a_slot_not_given_back_comes_back_after_the_hold_time() -> None:
    gate = StartGate(limit=1, hold_s=0.5)
    t0 = time.monotonic()
    await gate.acquire()  # never released by its holder
    release = await asyncio.wait_for(gate.acquire(), 10)
    assert time.monotonic() - t0 >= 0.5
    release()
    assert gate.starting == 0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "4",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-bf", "0", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=60)
    return path


def ffmpeg_count() -> int:
    return len(ffmpeg_children())


async def test_many_pipelines_start_at_most_the_limit_at_once_and_all_start(clip: Path) -> None:
    n = START_LIMIT + 4
    pipelines = [MediaPipeline(PipelineConfig(source=Source(str(clip), loop=True, has_audio=False), profile="copy",
                                              settings=SETTINGS, name=f"cam{i}", startup_timeout_s=60))
                 for i in range(n)]
    gate = start_gate()
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, gate.starting)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    try:
        for p in pipelines:
            await p.start()
        await asyncio.gather(*(p.wait_for(lambda p=p: p.prebuffer.init is not None, 60) for p in pipelines))
    finally:
        watcher.cancel()
        await asyncio.gather(*(p.stop() for p in pipelines))
    assert peak == START_LIMIT  # the first START_LIMIT started together, the others waited
    assert gate.starting == 0


async def test_a_pipeline_stopped_while_waiting_for_a_slot_stops_at_once_without_ffmpeg(clip: Path) -> None:
    loop = asyncio.get_running_loop()
    _GATES[loop] = gate = StartGate(limit=1, hold_s=60)
    held = await gate.acquire()  # another camera is starting
    try:
        pipeline = MediaPipeline(PipelineConfig(source=Source(str(clip), loop=True, has_audio=False),
                                                profile="copy", settings=SETTINGS, name="waiting"))
        await pipeline.start()
        await asyncio.sleep(0.2)
        assert ffmpeg_count() == 0 and pipeline.prebuffer.init is None
        t0 = time.monotonic()
        await asyncio.wait_for(pipeline.stop(), 5)
        assert time.monotonic() - t0 < 1.0
        assert ffmpeg_count() == 0
    finally:
        held()
        del _GATES[loop]
