"""A parent process's view of ``hksv-sidecar --stdio-json``: write command lines, read event lines."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.sidecar_process import launch

SIDECAR = [sys.executable, "-m", "sidecar"]


def demo_config(name: str = "Demo Camera", code: str = "031-45-154", **extra: Any) -> dict[str, Any]:
    return {"bind": "127.0.0.1", "mdns": False, "cameras": [
        {"name": name, "source": "demo", "profile": "libx264", "setup_code": code, **extra}]}


class StdioChild:
    """The child and everything it said: events (stdout) and log lines (stderr)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.stdout_junk: list[bytes] = []  # anything on stdout that is not an event line
        self.stderr: list[str] = []
        self._new = asyncio.Event()
        self._new_log = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._read_events()), asyncio.ensure_future(self._read_logs())]

    async def _read_events(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            try:
                event = json.loads(raw)
                assert isinstance(event, dict) and set(event) <= {"id", "data", "seq"} and raw.endswith(b"\n")
                self.events.append(event)
            except (ValueError, AssertionError):
                self.stdout_junk.append(raw)
            self._new.set()

    async def _read_logs(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.stderr.append(raw.decode(errors="replace"))
            self._new_log.set()

    async def wait_log(self, text: str, timeout: float = 30.0) -> str:
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for line in self.stderr[seen:]:
                    if text in line:
                        return line
                seen = len(self.stderr)
                if self._tasks[1].done():
                    raise AssertionError(f"child ended before the log line {text!r}")
                self._new_log.clear()
                await self._new_log.wait()

    def send(self, obj: Any) -> None:
        assert self.proc.stdin is not None
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def mark(self) -> int:
        return len(self.events)

    async def wait_for(self, match: Callable[[dict[str, Any]], bool] | str, *, after: int = 0,
                       timeout: float = 30.0) -> dict[str, Any]:
        test = (lambda e: e["id"] == match) if isinstance(match, str) else match
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[after:]:
                    if test(event):
                        return event
                after = len(self.events)
                if self.proc.stdout is not None and self.proc.stdout.at_eof() and self._tasks[0].done():
                    raise AssertionError(f"child ended without the event; events: {self.events}\n"
                                         + "".join(self.stderr[-30:]))
                self._new.clear()
                await self._new.wait()

    async def reply(self, seq: int | str, timeout: float = 30.0) -> dict[str, Any]:
        """The final reply to the command with this seq (``ok``, ``pong``, ``error`` or ``bye``)."""
        return await self.wait_for(lambda e: e.get("seq") == seq and e["id"] in {"ok", "pong", "error", "bye"},
                                   timeout=timeout)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def wait_exit(self, timeout: float) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._tasks)
        return code

    async def finish(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def stdio_child(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[StdioChild] = []

    async def start(*args: str, env: dict[str, str] | None = None) -> StdioChild:
        proc = await launch(tmp_path / "state", "--stdio-json", *args, loopback=False, stdin=asyncio.subprocess.PIPE,
                            stdout=asyncio.subprocess.PIPE, env=env)
        child = StdioChild(proc)
        started.append(child)
        return child

    yield start
    for child in started:
        await child.finish()
