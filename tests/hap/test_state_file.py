"""The state file is written off the event loop: in order, newest content last, nothing lost on drain."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from sidecar.atomic_file import atomic_write
from sidecar.hap.state_file import WriteBehind


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
