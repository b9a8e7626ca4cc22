"""Connection floods against a real HAP server on loopback, with aiohomekit as the hub.

Before: the server refused every connection past 64 and kept idle unverified ones for 30 s, so
400 idle sockets (or 64 re-opened every 30 s) locked a paired hub out. Now a newcomer evicts the
oldest unverified connection of the busiest host, verified sessions are never evicted, and an
unverified connection gets 10 s to finish pair-verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any

import pytest

from tests.support.hap_client import aio_pair, second_session

from .conftest import Running

pytestmark = pytest.mark.interop


def _idle_socket(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        sock.connect(("127.0.0.1", port))
    return sock


async def _open_idle(port: int, count: int, source: str) -> list[socket.socket]:
    loop = asyncio.get_running_loop()
    socks = []
    for _ in range(count):
        sock = _idle_socket(port, source)
        socks.append(sock)
        with contextlib.suppress(OSError):
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
    return socks


async def _hub_reads(pairing: Any, iid: int) -> float:
    """Seconds a paired hub takes to connect, verify and read ``iid`` in a new session."""
    started = time.monotonic()
    hub = second_session(pairing.pairing_data)
    try:
        values = await asyncio.wait_for(hub.get_characteristics([(1, iid)]), 10)
        assert (1, iid) in values
    finally:
        await hub.shutdown()
    return time.monotonic() - started


async def test_400_idle_sockets_do_not_lock_out_a_paired_hub(hap_server: Running,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    server = hap_server.server
    pairing = await aio_pair(hap_server.port)
    keeper = second_session(pairing.pairing_data)  # a verified session held through the flood
    iid = hap_server.test.on.iid
    socks: list[socket.socket] = []
    try:
        await keeper.get_characteristics([(1, iid)])
        await pairing.shutdown()
        # 400 idle connections from the hub's own host (the hardest case for per-host fairness).
        socks = await _open_idle(hap_server.port, 400, "127.0.0.1")
        await asyncio.sleep(0.2)  # let the server accept the last of them
        held = len(server.core.connections)
        warnings = [r for r in caplog.records if "connection limit reached" in r.getMessage()
                    and r.levelno >= logging.WARNING]
        print(f"\n400 idle sockets: the server holds {held} connections (limit 64); "
              f"{server.core.evictions} evicted, {len(warnings)} warnings logged")
        assert held <= 64
        assert server.core.evictions >= 400 - 64
        assert len(warnings) <= server.core.evictions // 100 + 1  # a flood does not flood the log
        print(f"a paired hub connected, verified and read in {await _hub_reads(pairing, iid):.3f} s")
        # The verified session opened before the flood was never evicted.
        assert (1, iid) in await asyncio.wait_for(keeper.get_characteristics([(1, iid)]), 10)
    finally:
        for sock in socks:
            sock.close()
        await keeper.shutdown()


async def test_reopening_64_sockets_cannot_lock_a_hub_out(hap_server: Running) -> None:
    pairing = await aio_pair(hap_server.port)
    await pairing.shutdown()
    iid = hap_server.test.on.iid
    waves = 0
    most = 0
    stop = asyncio.Event()
    flooding = asyncio.Event()

    async def attacker() -> None:
        # Another host on the LAN re-opens 64 sockets again and again.
        nonlocal waves, most
        while not stop.is_set():
            socks = await _open_idle(hap_server.port, 64, "127.0.0.2")
            await asyncio.sleep(0.02)
            most = max(most, len(hap_server.server.core.connections))
            waves += 1
            if waves == 2:
                flooding.set()
            for sock in socks:
                sock.close()

    task = asyncio.create_task(attacker())
    timings = []
    try:
        await asyncio.wait_for(flooding.wait(), 10)
        while len(timings) < 8 or waves < 10:
            timings.append(await _hub_reads(pairing, iid))
    finally:
        stop.set()
        await task
    print(f"\n{waves} waves of 64 sockets (server full: {most} connections); {len(timings)} hub sessions, "
          f"each connect+verify+read in max {max(timings):.3f} s")
    assert most == 64
