"""Run the real ``hksv-sidecar`` console script (not ``main()`` in-process), as a user does: its
output, its exit code, and the checks every bad-input test makes (no traceback, one
``hksv-sidecar: <setting>: ...`` line, exit 2)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

COMMAND = str(Path(sys.executable).with_name("hksv-sidecar"))
BASE = ("--bind", "127.0.0.1", "--no-mdns")
STARTED = r"scan this code|: paired \(HAP port"


@dataclass
class Outcome:
    code: int
    output: str

    def assert_clean(self) -> None:
        assert "Traceback" not in self.output, self.output
        assert "Error:" not in self.output.replace("ERROR", ""), self.output  # no bare exception repr


async def run(*args: str, until: str | None = None, timeout: float = 30.0) -> Outcome:
    """Run the command; with ``until``, SIGTERM it once a line matches (it must still be running)."""
    proc = await asyncio.create_subprocess_exec(
        COMMAND, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while raw := await proc.stdout.readline():
                lines.append(raw.decode(errors="replace"))
                if until is not None and re.search(until, lines[-1]):
                    proc.send_signal(signal.SIGTERM)
                    until = None
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return Outcome(code, "".join(lines))


def expect_refusal(outcome: Outcome, message: str) -> None:
    """Exit 2 with one ``hksv-sidecar: <setting>: ...`` line that matches ``message``."""
    outcome.assert_clean()
    assert outcome.code == 2, outcome.output
    last = outcome.output.strip().splitlines()[-1]
    assert last.startswith("hksv-sidecar: "), outcome.output
    assert re.search(message, last), last
