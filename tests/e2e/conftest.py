"""Run the sidecar as a real process, the way a user or a parent process does."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class SidecarProcess:
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    def mark(self) -> int:
        """A position in the log; ``wait_for_line(..., after=mark)`` ignores earlier lines."""
        return len(self.lines)

    async def wait_for_line(self, pattern: str, timeout: float = 20.0, after: int = 0) -> re.Match[str]:
        regex = re.compile(pattern)
        for line in self.lines[after:]:
            if m := regex.search(line):
                return m
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError(f"sidecar exited before {pattern!r}:\n" + "".join(self.lines))
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if m := regex.search(line):
                    return m

    async def drain(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.lines.append(raw.decode(errors="replace"))

    async def terminate(self, timeout: float = 6.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        drain = asyncio.ensure_future(self.drain())
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            await drain


@pytest.fixture
async def sidecar(tmp_path: Path) -> AsyncIterator[object]:
    started: list[SidecarProcess] = []

    async def start(*args: str) -> SidecarProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sidecar", "--bind", "127.0.0.1", "--no-mdns", "--state-dir",
            str(tmp_path / "state"), *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        sp = SidecarProcess(proc)
        started.append(sp)
        return sp

    yield start
    for sp in started:
        await sp.terminate()


# The GStreamer RTSP test camera (real RTSP on 127.0.0.1), shared with the media tests.
from tests.media.conftest import rtsp_camera  # noqa: E402,F401
