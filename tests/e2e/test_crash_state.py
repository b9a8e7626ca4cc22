"""SIGKILL of the real sidecar while it writes its state, again and again.

A hub (aiohomekit, paired once) keeps toggling settings that are persisted on every write, and
the sidecar is killed at a random moment of that. Every next start must load the state (it says
"paired"), leave no ``.<camera>.json.XXXXXXXX`` temp file behind (a full copy of the signing
seed), and the same hub must pair-verify and read without pairing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
from pathlib import Path

import pytest

from tests.hub.characteristics import EVENT_SNAPSHOTS_ACTIVE, HOMEKIT_CAMERA_ACTIVE, PERIODIC_SNAPSHOTS_ACTIVE
from tests.hub.database import iids_by_type
from tests.support.hap_client import aio_pair, second_session
from tests.support.ports import free_port
from tests.support.sidecar_process import launch

pytestmark = pytest.mark.slow

PIN = "031-45-154"
KILLS = 30
TEMP = re.compile(r"\.demo-camera\.json\.[a-z0-9_]{8}")


async def start(state: Path, port: int) -> asyncio.subprocess.Process:
    # Its own session, so the kill below also takes the probe ffmpeg it may have running
    # (what happens to children on a crash is the ffmpeg runner's business, not this test's).
    return await launch(state, "--demo", "--setup-code", PIN, "--hap-port", str(port), "--log-level", "warning",
                        start_new_session=True)


async def until_line(proc: asyncio.subprocess.Process, pattern: str, lines: list[str]) -> str:
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while raw := await proc.stderr.readline():
            line = raw.decode(errors="replace")
            lines.append(line)
            if re.search(pattern, line):
                return line
    raise AssertionError(f"sidecar ended before {pattern!r}:\n{''.join(lines)}")


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
    assert proc.stderr is not None
    await proc.stderr.read()


async def test_sigkill_while_writing_state_never_costs_the_pairing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    rng = random.Random(1234)
    lines: list[str] = []
    proc = await start(state, port)
    try:
        await until_line(proc, r"scan this code", lines)
        pairing = await aio_pair(port, PIN)
        data = pairing.pairing_data
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        await pairing.shutdown()
        # each write saves state
        toggles = [ids[EVENT_SNAPSHOTS_ACTIVE], ids[PERIODIC_SNAPSHOTS_ACTIVE], ids[HOMEKIT_CAMERA_ACTIVE]]
        writes = leftovers = 0
        for _ in range(KILLS):
            hubs = [second_session(data) for _ in range(3)]  # three hubs writing at once
            stop = asyncio.Event()

            async def write_until_stopped(hub: object, stop: asyncio.Event) -> None:
                nonlocal writes
                value = 0
                with contextlib.suppress(Exception):  # the sidecar dies under it
                    while not stop.is_set():
                        value ^= 1
                        await hub.put_characteristics([(1, iid, value) for iid in toggles])  # type: ignore[attr-defined]
                        writes += 1

            writers = [asyncio.create_task(write_until_stopped(h, stop)) for h in hubs]
            try:
                await asyncio.sleep(rng.uniform(0.1, 0.4))
                await kill(proc)  # mid-write or between writes: the hubs cannot tell which
            finally:
                stop.set()
                await asyncio.gather(*writers)
                for hub in hubs:
                    await hub.shutdown()
            leftovers += sum(1 for p in state.iterdir() if TEMP.fullmatch(p.name))
            lines.clear()
            proc = await start(state, port)
            await until_line(proc, r"Demo Camera: paired", lines)  # the state loaded
            assert not [p.name for p in state.iterdir() if TEMP.fullmatch(p.name)]
            hub = second_session(data)  # pair-verify with the keys from the first pairing
            try:
                values = await asyncio.wait_for(hub.get_characteristics([(1, toggles[0])]), 10)
                assert values[(1, toggles[0])]["value"] in (0, 1, False, True)
            finally:
                await hub.shutdown()
        print(f"\n{KILLS} SIGKILLs during {writes} persisted writes: {leftovers} temp files found after a "
              f"kill, 0 after each restart; the state loaded and pair-verify worked every time")
        assert not any("Traceback" in line for line in lines)
    finally:
        await kill(proc)
