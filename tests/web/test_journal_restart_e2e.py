"""The event journal across a restart of the real sidecar process: a full journal (more motions
than it keeps) is written to the state directory with mode 0600, and after a restart the API and
the camera page show the same events, newest first, with their verdicts."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sidecar.web.journal import MAX_ENTRIES

pytestmark = pytest.mark.slow
SLUG = "demo-camera"


async def _events(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with http.get(f"{base}/api/events?camera={SLUG}") as resp:
        assert resp.status == 200
        data = await resp.json()
    entries: list[dict[str, Any]] = data["cameras"]["Demo Camera"]
    return entries


async def _start(sidecar: Any) -> tuple[Any, str]:
    proc = await sidecar("--demo", "--demo-motion-every", "100000", "--http-port", "0")
    port = int((await proc.wait_for_line(r"status page: http://[\d.]+:(\d+)/", timeout=40)).group(1))
    return proc, f"http://127.0.0.1:{port}"


async def test_a_restart_with_a_full_journal_shows_the_old_events(sidecar: Any, tmp_path: Path) -> None:
    proc, base = await _start(sidecar)
    async with aiohttp.ClientSession() as http:
        for _ in range(MAX_ENTRIES + 10):
            for path in ("/motion?Demo%20Camera", "/motion/reset?Demo%20Camera"):
                async with http.get(base + path) as resp:
                    assert resp.status == 200
        before = await _events(http, base)
    assert len(before) == MAX_ENTRIES and all(e["kind"] == "motion" and e["source"] == "http" for e in before)
    assert await proc.terminate() == 0

    journal = tmp_path / "state" / "events.json"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert len(json.loads(journal.read_bytes())["cameras"]["Demo Camera"]) == MAX_ENTRIES

    proc, base = await _start(sidecar)
    await proc.wait_for_line(rf"event journal: {MAX_ENTRIES} event\(s\) from before the restart")
    async with aiohttp.ClientSession() as http:
        after = await _events(http, base)
        async with http.get(f"{base}/camera/{SLUG}") as resp:
            page = await resp.text()
        async with http.get(f"{base}/api/status") as resp:
            status = await resp.json()
    keys = ("id", "kind", "at", "source", "ended_at", "recordings")
    assert [{k: e[k] for k in keys} for e in after] == [{k: e[k] for k in keys} for e in before]
    assert page.count("<li") >= MAX_ENTRIES and page.count("source: http") == MAX_ENTRIES
    demo = next(c for c in status["cameras"] if c["slug"] == SLUG)
    assert demo["last_motion"]["at"] == before[0]["at"]
