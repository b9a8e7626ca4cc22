"""Suite-wide guards: no test may leave a task, thread or child process behind, or block the loop.

Async tests run with the event loop in debug mode and a slow-callback threshold; any callback
that holds the loop longer than ``BLOCK_LIMIT_S`` fails the test (the log record names it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator

import psutil
import pytest

# Fixtures more than one test package uses live in tests/support, registered here once (pytest
# honours pytest_plugins only in the rootdir conftest).
pytest_plugins = ["tests.support.fixtures", "tests.support.ci_strict"]

BLOCK_LIMIT_S = float(os.environ.get("HKSV_TEST_BLOCK_LIMIT", "0.5"))


class _SlowCallbackCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing") and "took" in message:
            self.records.append(message)


def _children() -> set[int]:
    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


@pytest.fixture(autouse=True)
def _no_leaked_threads_or_children(request: pytest.FixtureRequest) -> Iterator[None]:
    threads_before = set(threading.enumerate())
    children_before = _children()
    if request.node.get_closest_marker("asyncio") is not None:
        request.getfixturevalue("_no_leaked_tasks_or_blocking")
    yield
    deadline = time.monotonic() + 2.0
    leaked_threads: list[threading.Thread] = []
    leaked_children: set[int] = set()
    while time.monotonic() < deadline:
        leaked_threads = [
            t for t in threading.enumerate() if t not in threads_before and t.is_alive()
        ]
        leaked_children = {
            pid
            for pid in _children() - children_before
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        }
        if not leaked_threads and not leaked_children:
            break
        time.sleep(0.05)
    for pid in leaked_children:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    assert not leaked_threads, f"test left threads running: {leaked_threads}"
    assert not leaked_children, f"test left child processes: {sorted(leaked_children)}"


@pytest.fixture
async def _no_leaked_tasks_or_blocking() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = BLOCK_LIMIT_S
    catcher = _SlowCallbackCatcher()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(catcher)
    baseline = set(asyncio.all_tasks())
    try:
        yield
        # Give cancelled tasks one turn of the loop to finish unwinding.
        for _ in range(3):
            await asyncio.sleep(0)
        me = asyncio.current_task()
        leaked = [t for t in asyncio.all_tasks() - baseline if t is not me and not t.done()]
        for task in leaked:
            task.cancel()
        assert not leaked, f"test left tasks running: {leaked}"
        assert not catcher.records, f"event loop blocked: {catcher.records}"
    finally:
        asyncio_logger.removeHandler(catcher)
