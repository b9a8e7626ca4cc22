"""The state file is written off the event loop: in order, newest content last, nothing lost on drain."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from sidecar.atomic_file import atomic_write
from sidecar.hap import AccessoryServer
from sidecar.hap.state_file import WriteBehind
from tests.support.accessories import build_test_accessory
from tests.support.hap_client import PIN, pair_off_loop


async def test_writes_land_in_order_never_overlap_and_the_newest_is_last(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    written: list[bytes] = []
    inside = threading.Lock()
    loop_thread = threading.get_ident()

    def slow_write(target: Path, data: bytes) -> None:
        assert threading.get_ident() != loop_thread  # never on the loop
        assert inside.acquire(blocking=False), "two writes of one file overlapped"
        try:
            time.sleep(0.01)
            atomic_write(target, data)
            written.append(data)
        finally:
            inside.release()

    writer = WriteBehind(path, asyncio.get_running_loop(), slow_write)
    for n in range(50):
        writer.write(b"%d" % n)
        if n % 7 == 0:
            await asyncio.sleep(0.003)
    await writer.drain()
    assert path.read_bytes() == b"49"
    numbers = [int(d) for d in written]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_write_handed_over_while_one_finishes_is_not_stranded(tmp_path: Path) -> None:
    path = tmp_path / "f"
    writer = WriteBehind(path, asyncio.get_running_loop())
    for n in range(200):
        writer.write(b"%d" % n)
        await asyncio.sleep(0)
    await writer.drain()
    assert path.read_bytes() == b"199"


async def test_a_failed_write_is_logged_without_its_content_and_later_writes_still_land(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "f"
    fail = [True]

    def write(target: Path, data: bytes) -> None:
        if fail[0]:
            raise PermissionError(13, "Permission denied")
        atomic_write(target, data)

    writer = WriteBehind(path, asyncio.get_running_loop(), write)
    with caplog.at_level(logging.ERROR):
        writer.write(b"secret-seed")
        await writer.drain()
    assert writer.failures == 1 and not path.exists()
    assert "Permission denied" in caplog.text and "secret-seed" not in caplog.text
    fail[0] = False
    writer.write(b"ok")
    await writer.drain()
    assert path.read_bytes() == b"ok"


async def test_pair_setup_m6_waits_until_the_new_pairing_is_on_disk(tmp_path: Path) -> None:
    """The hub must never hold an M6 for a pairing a crash could still lose: while the state
    file's write is held, pairing cannot finish; once written, it does, and the file has it."""
    test = build_test_accessory()
    server = AccessoryServer(test.accessory, tmp_path / "state.json", name="Test", host="127.0.0.1",
                             setup_code=PIN)
    loop = asyncio.get_running_loop()
    entered, release = asyncio.Event(), threading.Event()
    on_disk: list[int] = []

    def held_write(target: Path, data: bytes) -> None:
        if json.loads(data)["pairings"]:  # the write that keeps the new pairing
            loop.call_soon_threadsafe(entered.set)
            release.wait(30)
        atomic_write(target, data)
        on_disk.append(len(json.loads(data)["pairings"]))

    server._state_file = WriteBehind(server.state_path, loop, held_write)  # our own seam: a slow disk
    await server.start()
    try:
        pairing = asyncio.ensure_future(pair_off_loop(server.port, PIN))
        await asyncio.wait_for(entered.wait(), 30)
        with pytest.raises(TimeoutError):  # on loopback an answer sent now would be read well within 1 s
            await asyncio.wait_for(asyncio.shield(pairing), 1.0)
        assert not on_disk or on_disk[-1] == 0
        release.set()
        data = await asyncio.wait_for(pairing, 30)
        assert data["AccessoryPairingID"] and on_disk[-1] == 1
        assert len(json.loads((tmp_path / "state.json").read_bytes())["pairings"]) == 1
    finally:
        release.set()
        await server.stop()
