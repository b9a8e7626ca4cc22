"""The README's first command, as a process: the demo starts, pairs, raises motion, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.hap_client import aio_pair


async def test_demo_pairs_and_stops_cleanly(sidecar: Any) -> None:
    proc = await sidecar("--demo", "--demo-motion-every", "0.5", "--setup-code", "031-45-154")
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    pairing = await aio_pair(port, "031-45-154")
    try:
        accessories = await pairing.list_accessories_and_characteristics()
        motion = next(c for s in accessories[0]["services"] for c in s["characteristics"]
                      if c["type"] == "00000022-0000-1000-8000-0026BB765291")
        got = asyncio.Event()
        pairing.dispatcher_connect(lambda ev: ev and got.set())
        await pairing.subscribe([(1, motion["iid"])])
        await asyncio.wait_for(got.wait(), 10)
    finally:
        await pairing.shutdown()
    started = time.monotonic()
    assert await proc.terminate() == 0
    assert time.monotonic() - started < 5.0


async def test_paired_state_survives_restart(sidecar: Any) -> None:
    proc = await sidecar("--demo", "--setup-code", "031-45-154", "--hap-port", "0")
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    pairing = await aio_pair(port, "031-45-154")
    await pairing.shutdown()
    assert await proc.terminate() == 0
    again = await sidecar("--demo")
    await again.wait_for_line(r"Demo Camera: paired")


async def test_one_broken_camera_does_not_stop_the_others(sidecar: Any) -> None:
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        proc = await sidecar("--camera", "Broken=demo", "--demo", "--hap-port", str(taken))
        await proc.wait_for_line(r"Broken: not started")
        await proc.wait_for_line(r"Demo Camera: scan this code")
    finally:
        blocker.close()
