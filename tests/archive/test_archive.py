"""The clip archive: retention rules (pure), and the writer thread on real files."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.archive import ClipArchive, StoredClip, plan_retention

DAY = 86400.0


def clip(name: str, age_days: float, size: int, now: float = 1e9) -> StoredClip:
    return StoredClip(Path(name), now - age_days * DAY, size)


def test_retention_by_age_then_size_oldest_first() -> None:
    now = 1e9
    clips = [clip("a", 9, 10), clip("b", 3, 50), clip("c", 2, 50), clip("d", 1, 50), clip("e", 0, 50)]
    doomed = plan_retention(clips, now=now, max_age_s=7 * DAY, max_bytes=120)
    assert [c.path.name for c in doomed] == ["a", "b", "c"]  # a is too old; b and c are the oldest beyond 120 B
    assert plan_retention(clips, now=now, max_age_s=30 * DAY, max_bytes=10_000) == []
    # The newest clip survives even when it alone is over the cap.
    assert [c.path.name for c in plan_retention([clip("big", 0, 500)], now=now, max_age_s=DAY, max_bytes=100)] == []


@given(st.lists(st.tuples(st.floats(0, 30), st.integers(0, 10_000)), max_size=40), st.integers(0, 50_000))
def test_retention_properties(specs: list[tuple[float, int]], cap: int) -> None:
    now = 1e9
    clips = [clip(f"c{i}", age, size) for i, (age, size) in enumerate(specs)]
    doomed = plan_retention(clips, now=now, max_age_s=7 * DAY, max_bytes=cap)
    kept = [c for c in clips if c not in doomed]
    assert all(now - c.mtime <= 7 * DAY for c in kept)
    assert len(kept) <= 1 or sum(c.size for c in kept) <= cap
    if kept and doomed:  # what goes (for size) is never newer than what stays
        young_doomed = [c for c in doomed if now - c.mtime <= 7 * DAY]
        assert all(d.mtime <= min(k.mtime for k in kept) for d in young_doomed)


async def _until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll the writer thread's visible state (it has no event to await)."""
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def leftovers(root: Path) -> list[Path]:
    return list(root.rglob("*.part"))


async def test_writer_keeps_exactly_what_was_sent_and_retention_deletes_the_oldest(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    old_dir = root / "door" / "2020-01-01"
    old_dir.mkdir(parents=True)
    old = [old_dir / f"12000{i}.mp4" for i in range(3)]
    for i, path in enumerate(old):
        path.write_bytes(b"x" * 400)
        os.utime(path, (time.time() - 3600 + i, time.time() - 3600 + i))  # an hour old, oldest first
    archive = ClipArchive(root, max_age_s=DAY, max_bytes=1500)
    archive.start()
    try:
        await _until(lambda: len(archive.clips("door")) == 3)
        writer = archive.begin("door")
        assert writer is not None
        parts = [b"init-segment", b"fragment-1" * 40, b"fragment-2" * 40]
        for part in parts:
            writer.write(part)
        writer.end()
        await _until(lambda: archive.written == 1)
        clips = archive.clips("door")
        newest = clips[0]
        assert newest.path.read_bytes() == b"".join(parts)
        assert newest.path.parent.name == time.strftime("%Y-%m-%d") and newest.name.endswith(".mp4")
        # 3 x 400 + 812 > 1500: the two oldest went, the rest fits.
        assert [p.exists() for p in old] == [False, False, True]
        assert sum(c.size for c in clips) <= 1500 and len(clips) == 2
        assert archive.clip_path("door", newest.date, newest.name) == newest.path
        assert archive.clip_path("door", "2020-01-01", "120000.mp4") is None
        assert not leftovers(root)
    finally:
        await archive.stop()


async def test_a_behind_writer_drops_clips_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = ClipArchive(tmp_path, max_age_s=DAY, max_bytes=10**9, queue_items=4)
    archive.start()
    try:
        with caplog.at_level(logging.WARNING):
            writers = [archive.begin("cam") for _ in range(20)]
            for w in writers:
                for _ in range(50):
                    if w is not None:
                        w.write(b"z" * 1000)
                if w is not None:
                    w.end()
        await _until(lambda: archive._queue.empty())
        await asyncio.sleep(0.1)
        assert archive.dropped >= 1
        assert caplog.text.count("not keeping up") == 1
        assert not leftovers(tmp_path)
        # Every clip kept is whole: its size is what was written for it.
        assert all(c.size == 50_000 for c in archive.clips("cam"))
    finally:
        await archive.stop()


FULL_DISK_SCRIPT = """
import asyncio, logging, sys
from pathlib import Path
from sidecar.archive import ArchiveSink, ClipArchive

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)

async def main():
    archive = ClipArchive(Path(sys.argv[1]), max_age_s=86400, max_bytes=10**9)
    archive.start()
    sink = ArchiveSink(archive, "door")
    for clip in range(3):  # three recordings into a 64 KiB disk
        sink.begin(clip, b"init" * 100)
        for _ in range(20):
            sink.write(b"f" * 8000)
            await asyncio.sleep(0)
        sink.end(None)
        for _ in range(200):
            if archive._queue.empty():
                break
            await asyncio.sleep(0.01)
    await archive.stop()
    print("disabled", archive.disabled, "written", archive.written)
    print("files", [p.name for p in Path(sys.argv[1]).rglob("*") if p.is_file()])

asyncio.run(main())
"""


def test_a_full_disk_stops_archiving_with_one_warning(tmp_path: Path) -> None:
    """A 64 KiB tmpfs in a private mount namespace: the first clip fills it, archiving stops with
    one warning, the partial file is removed, and nothing raises."""
    import subprocess
    import sys

    disk = tmp_path / "disk"
    disk.mkdir()
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" -c "$3" "$1"', "sh",
         str(disk), sys.executable, FULL_DISK_SCRIPT],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("archiving stopped") == 1 and "the disk is full" in out.stdout
    assert "disabled True written 0" in out.stdout and "files []" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
