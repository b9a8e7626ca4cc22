"""Slow and stalled hubs over real loopback sockets: bounded memory, a stall counted from the
hub's last progress, a close reason the hub can still read, and the slot free for the next hub.

Before: the kernel's autotuned send buffer (about 4 MB) plus 1 MiB in the process had to fill
before the stall timer even started, so a hub that stopped reading held the camera 26-29 s at
2 Mbit/s and never saw why its stream ended.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from sidecar.hds import CloseReason, HDSConfig, HDSServer, RecordingStream, StreamClosedError
from sidecar.hds.config import DEFAULT_HIGH_WATER, DEFAULT_SEND_BUFFER
from sidecar.hds.frames import SEAL_BATCH
from sidecar.hds.hub_connection import PROGRESS_CHECK_S
from tests.hub.hds_client import HubDataStreamClient
from tests.support.hds_loopback import HOST, connect

from .peers import Gate

FRAGMENT = 64 * 1024
PACE_S = 0.05  # 64 KiB every 50 ms: about 10 Mbit/s, a fast camera


@dataclass
class PacedCamera:
    """A camera producing fragments at a steady rate (as ffmpeg does), one producer per stream."""

    streams: list[RecordingStream] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def on_stream(self, stream: RecordingStream) -> None:
        self.streams.append(stream)
        self.opened.set()
        self.tasks.append(asyncio.create_task(self.produce(stream)))

    async def produce(self, stream: RecordingStream) -> None:
        try:
            await stream.send_init(b"\x00\x00\x00\x18ftypiso5" + bytes(12))
            while True:
                await stream.send_fragment(bytes(FRAGMENT))
                await asyncio.sleep(PACE_S)
        except StreamClosedError:
            pass

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def camera() -> AsyncIterator[PacedCamera]:
    cam = PacedCamera()
    yield cam
    await cam.stop()


def hub_socket(rcvbuf: int = 64 * 1024) -> socket.socket:
    """A hub's socket with a fixed receive buffer (what its kernel accepts while its app is stuck)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    return sock


async def read_for(client: HubDataStreamClient, seconds: float) -> int:
    """Read (and drop) whatever arrives for ``seconds``: a hub that keeps up."""
    total = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            data = await asyncio.wait_for(client.reader.read(1 << 16), left)
        except TimeoutError:
            break
        total += len(data)
        client._frames.feed(data)
    return total


async def test_stalled_hub_closed_from_its_last_progress_and_reads_the_reason(camera: PacedCamera) -> None:
    stall = 2.0
    server = HDSServer(Gate(), camera.on_stream, host=HOST, config=HDSConfig(stall_timeout=stall, abort_grace=8.0))
    hub = await connect(server, sock=hub_socket())
    other = None
    try:
        await hub.hello()
        assert (await hub.open(1)).body == {"status": 0}
        # The hub keeps up for a while, then its app stops reading.
        fragments, _ = await hub.collect(1, fragments=10, within=10)
        assert len(fragments) == 10
        stopped = time.monotonic()
        (proto,) = server.connections
        most = most_sealed = 0
        async with asyncio.timeout(stall + 5):
            while not camera.streams[0].closed:
                most = max(most, proto._outstanding())
                assert proto.transport is not None
                most_sealed = max(most_sealed, proto.transport.get_write_buffer_size())
                await asyncio.sleep(0.05)
        # The backlog waits as plaintext (views of the camera's fragments); ciphertext the kernel
        # has not taken is at most one batch.
        assert 0 < most_sealed <= SEAL_BATCH
        closed_after = time.monotonic() - stopped
        stream = camera.streams[0]
        bound = DEFAULT_HIGH_WATER + 300 * 1024 + 2 * DEFAULT_SEND_BUFFER
        print(f"\nstalled hub: stream closed {closed_after:.2f} s after the hub's last read "
              f"(stall timeout {stall} s); at most {most} bytes held for it (bound {bound})")
        assert (stream.closed_by, stream.close_reason) == ("accessory", CloseReason.CANCELLED)
        assert stall <= closed_after <= stall + PROGRESS_CHECK_S + 1.5
        assert most <= bound
        # The slot is free at once: another hub's open is accepted, not refused BUSY.
        other = await connect(server)
        await other.hello()
        assert (await other.open(2)).body == {"status": 0}
        # The stalled hub reads again: whole frames, then the close event with the reason, then EOF.
        _, close = await hub.collect(1, within=10)
        assert close is not None and close.body == {"streamId": 1, "reason": int(CloseReason.CANCELLED)}
        assert await hub.wait_eof(within=10)
    finally:
        await hub.aclose()
        if other is not None:
            await other.aclose()
        await server.aclose()


async def test_slow_but_steady_hub_is_not_a_stall(camera: PacedCamera) -> None:
    stall = 1.0
    server = HDSServer(Gate(), camera.on_stream, host=HOST,
                       config=HDSConfig(stall_timeout=stall, high_water=64 * 1024))
    hub = await connect(server, sock=hub_socket(64 * 1024))
    try:
        await hub.hello()
        assert (await hub.open(1)).body == {"status": 0}
        (proto,) = server.connections
        # Far slower than the camera (the producer waits on drain), yet progressing: 3 stall timeouts.
        got = 0
        for _ in range(int(3 * stall / 0.25)):
            data = await asyncio.wait_for(hub.reader.read(32 * 1024), 5)
            got += len(data)
            await asyncio.sleep(0.25)
        assert proto._backlog() > server.config.high_water  # the producer is held back by backpressure ...
        assert not camera.streams[0].closed  # ... but the stream lives on
        print(f"\nslow hub read {got} bytes in {3 * stall:.0f} s without being closed")
    finally:
        await hub.aclose()
        await server.aclose()


async def test_hub_that_never_reads_is_closed_then_reset(camera: PacedCamera) -> None:
    """A hub whose app never reads after the open: its stream ends after the stall timeout and
    the socket is reset after the grace, releasing the buffers it held."""
    server = HDSServer(Gate(), camera.on_stream, host=HOST, config=HDSConfig(stall_timeout=1.0, abort_grace=1.0))
    hub = await connect(server, sock=hub_socket(16 * 1024))
    try:
        await hub.hello()
        assert (await hub.open(1)).body == {"status": 0}
        (proto,) = server.connections
        async with asyncio.timeout(10):
            await camera.streams[0].wait_closed()
            await proto.lost
        assert camera.streams[0].close_reason == CloseReason.CANCELLED
        assert not server.connections and server.registry.active is None
    finally:
        await hub.aclose()
        await server.aclose()
