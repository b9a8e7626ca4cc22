"""The sidecar as a real process, the way a user or a parent process runs it: its log lines on
stderr, waited for with a timeout, and a SIGTERM (then SIGKILL) that always reaps it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.command import BASE

__all__ = ["SidecarProcess", "launch"]


async def launch(state_dir: Path, *args: str, loopback: bool = True, stdout: Any = asyncio.subprocess.DEVNULL,
                 env: dict[str, str] | None = None, **options: Any) -> asyncio.subprocess.Process:
    """``python -m sidecar`` with its state in ``state_dir``, bound to 127.0.0.1 with mDNS off
    (unless ``loopback`` is False: a parent process passes its own settings), output unbuffered so
    every log line arrives as it is written, stderr piped. ``options`` go to the subprocess."""
    options.setdefault("stderr", asyncio.subprocess.PIPE)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar", *(BASE if loopback else ()), "--state-dir", str(state_dir), *args,
        stdout=stdout, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, **options)


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
