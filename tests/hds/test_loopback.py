"""The real listener over 127.0.0.1 with the hub-side client: full sessions and bad inputs.

Prepared sessions are created through ``HDSServer.setup`` with a known shared secret (what the
HAP server will hand over per verified session); the hub client derives its keys from the same
secret, controller side. Every wait has a timeout; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from sidecar.hds import CloseReason, HDSConfig, HDSServer, SetupError, StreamClosedError, frames
from tests.hub.hds_client import build_setup_write, parse_setup_response
from tests.support.hds_loopback import HOST, SECRET, Camera, FakeClock, Hap, connect

from .peers import Gate


@pytest.fixture
async def camera() -> AsyncIterator[Camera]:
    cam = Camera(fragments=[bytes([i]) * size for i, size in enumerate([1000, 600_000, 262_144, 5], 1)])
    yield cam
    await cam.stop()


@pytest.fixture
async def server(camera: Camera) -> AsyncIterator[HDSServer]:
    srv = HDSServer(Gate(), camera.on_stream, host=HOST)
    yield srv
    await srv.aclose()


async def test_full_session_hello_open_data_close(server: HDSServer, camera: Camera) -> None:
    assert server.port is None  # bound lazily
    client = await connect(server)
    try:
        assert server.port is not None and server.port >= 32768
        hello = await client.hello()
        assert (hello.header.status, hello.body) == (0, {})
        opened = await client.open(7)
        assert (opened.header.status, opened.body) == (0, {"status": 0})
        fragments, close = await client.collect(7, fragments=5)
        assert close is None
        assert [f.sequence for f in fragments] == [1, 2, 3, 4, 5]
        assert [f.data_type for f in fragments] == ["mediaInitialization"] + ["mediaFragment"] * 4
        assert fragments[0].data == camera.init
        assert [bytes(f.data) for f in fragments[1:]] == camera.fragments
        assert [len(f.chunks) for f in fragments] == [1, 1, 3, 1, 1]
        assert all(f.total_size == len(f.data) for f in fragments)
        assert all(f.end_of_stream is False for f in fragments)
        (stream,) = camera.streams
        await client.close_stream(7, reason=0)
        async with asyncio.timeout(5):
            await stream.wait_closed()
        assert (stream.closed_by, stream.close_reason) == ("hub", CloseReason.NORMAL)
        assert server.registry.active is None
        # the socket options the doc asks for
        (proto,) = server.connections
        assert proto.transport is not None
        sock = proto.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    finally:
        await client.aclose()


async def test_end_of_stream_and_ack(server: HDSServer, camera: Camera) -> None:
    camera.end_of_stream = True
    client = await connect(server)
    try:
        await client.hello()
        await client.open(1)
        fragments, _ = await client.collect(1)
        assert fragments[-1].end_of_stream is True and len(fragments) == 5
        await client.ack(1)
        async with asyncio.timeout(5):
            await camera.streams[0].wait_closed()
        assert camera.streams[0].closed_by == "ack"
    finally:
        await client.aclose()


async def test_second_hub_and_second_open_get_busy(server: HDSServer, camera: Camera) -> None:
    camera.fragments = []
    first, second = await connect(server), await connect(server)
    try:
        await first.hello()
        await second.hello()
        assert (await first.open(1)).body == {"status": 0}
        other = await second.open(2)
        assert (other.header.status, other.body) == (6, {"status": 2})
        again = await first.open(3)  # HN stays silent here; we answer BUSY
        assert (again.header.status, again.body) == (6, {"status": 2})
        await first.close_stream(1, 0)
        async with asyncio.timeout(5):
            await camera.streams[0].wait_closed()
        assert (await second.open(4)).body == {"status": 0}
    finally:
        await first.aclose()
        await second.aclose()


def slow_hub_socket() -> socket.socket:
    """A client socket with a tiny receive buffer: a hub that reads little fills it at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for a condition the test cannot be notified of (the server accepting a socket)."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def assert_still_serving(server: HDSServer) -> None:
    client = await connect(server)
    try:
        assert (await client.hello()).header.status == 0
    finally:
        await client.aclose()


async def test_wrong_key_is_disconnected(server: HDSServer) -> None:
    client = await connect(server, secret=b"\x01" * 32)
    try:
        await client.send_request("control", "hello", {})
        assert await client.wait_eof()
    finally:
        await client.aclose()
    await assert_still_serving(server)


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda c: c.send_request("dataSend", "open", {"streamId": 1}), id="frame-before-hello"),
        pytest.param(lambda c: c.send_raw(bytes([1, 0x10, 0, 0])), id="oversize"),
        pytest.param(lambda c: c.send_raw(os.urandom(3000)), id="garbage"),
        pytest.param(lambda c: c.send_raw(b"GET / HTTP/1.1\r\n\r\n" + bytes(64)), id="http"),
    ],
)
async def test_bad_first_input_is_disconnected(server: HDSServer, send) -> None:  # type: ignore[no-untyped-def]
    client = await connect(server)
    try:
        await send(client)
        assert await client.wait_eof()
    finally:
        await client.aclose()
    await assert_still_serving(server)


async def test_oversize_frame_after_hello_is_disconnected(server: HDSServer) -> None:
    client = await connect(server)
    try:
        await client.hello()
        await client.send_raw(bytes([1, 0x10, 0, 0]) + bytes(100))
        assert await client.wait_eof()
    finally:
        await client.aclose()
    await assert_still_serving(server)


async def test_no_hello_within_10_s_with_a_fake_clock(camera: Camera) -> None:
    clock = FakeClock()
    server = HDSServer(Gate(), camera.on_stream, host=HOST, clock=clock)
    try:
        client = await connect(server)
        try:
            await eventually(lambda: bool(server.connections))
            clock.now += 9.9
            server.check_timers()
            assert server.connections
            clock.now += 0.2
            server.check_timers()
            assert await client.wait_eof()
        finally:
            await client.aclose()
    finally:
        await server.aclose()


async def test_prepared_session_expires_with_a_fake_clock(camera: Camera) -> None:
    clock = FakeClock()
    server = HDSServer(Gate(), camera.on_stream, host=HOST, clock=clock)
    try:
        client = await connect(server)
        try:
            clock.now += 10.5
            server.check_timers()
            assert server.transports.pending == 0
            await client.send_request("control", "hello", {})
            assert await client.wait_eof()
        finally:
            await client.aclose()
    finally:
        await server.aclose()


async def test_hap_session_close_closes_the_hds_connection(server: HDSServer, camera: Camera) -> None:
    camera.fragments = []
    hap = Hap()
    client = await connect(server, hap)
    try:
        await client.hello()
        await client.open(1)
        async with asyncio.timeout(5):
            await camera.opened.wait()
        hap.close()
        assert await client.wait_eof()
        async with asyncio.timeout(5):
            await camera.streams[0].wait_closed()
        assert camera.streams[0].closed_by == "connection"
        assert server.registry.active is None
    finally:
        await client.aclose()


async def test_hub_that_stops_reading_gets_its_stream_closed_and_memory_released(camera: Camera) -> None:
    camera.fragments = [bytes(1 << 20)]
    camera.produce_forever = True
    server = HDSServer(Gate(), camera.on_stream, host=HOST,
                       config=HDSConfig(high_water=256 * 1024, stall_timeout=0.5, abort_grace=0.2))
    sock = slow_hub_socket()
    try:
        client = await connect(server, sock=sock)
        try:
            await client.hello()
            assert (await client.open(1)).body == {"status": 0}
            # ... and now the hub reads nothing more.
            async with asyncio.timeout(10):
                await camera.opened.wait()
                stream = camera.streams[0]
                await stream.wait_closed()
            assert (stream.closed_by, stream.close_reason) == ("accessory", CloseReason.CANCELLED)
            async with asyncio.timeout(5):
                await asyncio.gather(*(p.lost for p in list(server.connections)))
            assert not server.connections
            assert server.registry.active is None
            async with asyncio.timeout(5):
                await asyncio.gather(*camera.tasks)
            assert isinstance(camera.errors[0], StreamClosedError)
        finally:
            await client.aclose()
    finally:
        await server.aclose()


async def test_bad_setup_write_is_refused_before_binding(server: HDSServer) -> None:
    with pytest.raises(SetupError):
        server.setup(build_setup_write(b"\x00" * 31), shared_secret=SECRET)
    assert server.port is None
    assert server.read_value() == b""
    server.setup(build_setup_write(b"\x00" * 32), shared_secret=SECRET)
    assert parse_setup_response(server.read_value()).port == server.port


async def test_listener_is_reused_and_aclose_closes_connections(camera: Camera) -> None:
    server = HDSServer(Gate(), camera.on_stream, host=HOST)
    client = await connect(server)
    port = server.port
    second = await connect(server)  # a second prepared session on the same port
    try:
        assert server.port == port
        await client.hello()
        await second.hello()
        await server.aclose()
        assert await client.wait_eof()
        assert await second.wait_eof()
        assert not server.connections
    finally:
        await client.aclose()
        await second.aclose()
        await server.aclose()


async def test_a_full_listener_evicts_the_oldest_unidentified_never_an_identified(camera: Camera) -> None:
    server = HDSServer(Gate(), camera.on_stream, host=HOST, config=HDSConfig(max_connections=2))
    clients = [await connect(server) for _ in range(2)]
    try:
        await eventually(lambda: len(server.connections) == 2)
        extra = await connect(server)  # full: the oldest unidentified socket makes room
        clients.append(extra)
        assert await clients[0].wait_eof()
        for client in clients[1:]:
            assert (await client.hello()).header.status == 0
        # Both remaining connections are identified now: a newcomer is refused, they live on.
        late = await connect(server)
        clients.append(late)
        assert await late.wait_eof()
        assert sorted(p.conn.state for p in server.connections) == ["ready", "ready"]
        assert not any(p.evicted for p in server.connections)
    finally:
        for client in clients:
            await client.aclose()
        await server.aclose()


async def test_closing_a_stream_wakes_a_producer_blocked_on_a_stalled_hub(camera: Camera) -> None:
    camera.fragments = [bytes(1 << 20)]
    camera.produce_forever = True
    server = HDSServer(Gate(), camera.on_stream, host=HOST, config=HDSConfig(high_water=64 * 1024,
                                                                               stall_timeout=60))
    sock = slow_hub_socket()
    try:
        client = await connect(server, sock=sock)
        try:
            await client.hello()
            await client.open(1)
            async with asyncio.timeout(5):
                await camera.opened.wait()
            (proto,) = server.connections
            await eventually(lambda: proto._drained is not None)  # the producer waits for drain
            camera.streams[0].close(CloseReason.NOT_ALLOWED)
            async with asyncio.timeout(2):
                await asyncio.gather(*camera.tasks)
            assert isinstance(camera.errors[0], StreamClosedError)
            assert camera.streams[0].close_reason == CloseReason.NOT_ALLOWED
        finally:
            await client.aclose()
    finally:
        await server.aclose()


async def test_port_floor_is_enforced_even_when_the_os_picks_lower(camera: Camera) -> None:
    server = HDSServer(Gate(), camera.on_stream, host=HOST, config=HDSConfig(min_port=60_000))
    try:
        port = await server.start()
        assert port >= 60_000 and server.port == port
        assert await server.start() == port  # idempotent
    finally:
        await server.aclose()
    assert server.port is None


async def test_400_idle_sockets_cannot_keep_a_hub_out(camera: Camera) -> None:
    server = HDSServer(Gate(), camera.on_stream, host=HOST)
    await server.start()
    assert server.port is not None
    loop = asyncio.get_running_loop()
    idle: list[socket.socket] = []
    try:
        for _ in range(400):
            sock = socket.socket()
            sock.setblocking(False)
            idle.append(sock)
            await loop.sock_connect(sock, (HOST, server.port))
        await eventually(lambda: len(server.connections) == server.config.max_connections)
        hub = await connect(server)  # a hub with real keys still gets in
        try:
            assert (await hub.hello()).header.status == 0
            assert (await hub.open(1)).body == {"status": 0}
        finally:
            await hub.aclose()
        assert len(server.connections) <= server.config.max_connections
    finally:
        for sock in idle:
            sock.close()
        await server.aclose()


def spy_on_reuse(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on, for each large segment sealed: was it sealed into the buffer offered for reuse?"""
    reused: list[bool] = []
    seal_batch = frames.FrameEncryptor.seal_batch

    def spy(self: frames.FrameEncryptor, payloads: list[list[bytes | memoryview]],
            into: bytearray | None = None, lengths: list[int] | None = None) -> memoryview:
        out = seal_batch(self, payloads, into, lengths)
        if out.nbytes >= frames.REUSE_FROM:
            reused.append(into is not None and out.obj is into)
        return out

    monkeypatch.setattr(frames.FrameEncryptor, "seal_batch", spy)
    return reused


async def test_the_next_recording_seals_its_prebuffer_into_the_memory_the_last_one_left(
    camera: Camera, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording's first large segment (the prebuffer, sent in the rush after an open) reuses
    the sealing buffer an earlier recording of the same camera handed back, instead of faulting
    in a fresh megabyte; the media arrive intact either way."""
    reused = spy_on_reuse(monkeypatch)
    server = HDSServer(Gate(), camera.on_stream, host=HOST)
    try:
        for stream_id in (1, 2):
            client = await connect(server)
            try:
                await client.hello()
                assert (await client.open(stream_id)).body == {"status": 0}
                fragments, _ = await client.collect(stream_id, fragments=5)
                assert [bytes(f.data) for f in fragments[1:]] == camera.fragments
                await client.close_stream(stream_id, reason=0)
            finally:
                await client.aclose()
            await eventually(lambda: not server.connections)
        # Per recording, two large segments (600 000 and 262 144 bytes) sealed in four batches of
        # at most SEAL_BATCH (three, then one). A batch is sealed only once the one before it has
        # gone to the kernel, so every batch but the very first rides the same memory: the next
        # recording's first batch too (the buffer went back to the pool and out again).
        assert reused == [False] + [True] * 7
    finally:
        await server.aclose()


async def test_an_idle_connection_gives_its_sealing_buffer_back_to_the_pool(
    camera: Camera, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub keeps its data stream open between recordings: once a recording is over and every
    byte is sent, the connection's buffer is back in the pool (not held by the idle connection
    while the camera reserves another), and the next recording on it takes it again."""
    reused = spy_on_reuse(monkeypatch)
    server = HDSServer(Gate(), camera.on_stream, host=HOST)
    client = await connect(server)
    try:
        await client.hello()
        for stream_id in (1, 2):
            assert (await client.open(stream_id)).body == {"status": 0}
            fragments, _ = await client.collect(stream_id, fragments=5)
            assert [bytes(f.data) for f in fragments[1:]] == camera.fragments
            await client.close_stream(stream_id, reason=0)
            await eventually(lambda: server.pool.idle == 1)  # back while the connection stays open
            assert len(server.connections) == 1
        assert reused == [False] + [True] * 7  # the second recording sealed into the pooled buffer
    finally:
        await client.aclose()
        await server.aclose()


async def test_a_reserved_buffer_takes_the_first_recordings_prebuffer(
    camera: Camera, monkeypatch: pytest.MonkeyPatch
) -> None:
    firsts = spy_on_reuse(monkeypatch)
    server = HDSServer(Gate(), camera.on_stream, host=HOST)
    server.reserve(600_000)
    assert server.pool.idle == 1
    reserved = server.pool.idle_bytes
    assert reserved == frames.SEAL_BATCH  # one batch at a time is sealed, not a whole fragment
    server.reserve(500_000)  # already large enough: kept
    assert server.pool.idle == 1 and server.pool.idle_bytes == reserved
    client = await connect(server)
    try:
        await client.hello()
        assert (await client.open(1)).body == {"status": 0}
        fragments, _ = await client.collect(1, fragments=5)
        assert [bytes(f.data) for f in fragments[1:]] == camera.fragments
        assert firsts[0] is True
        server.reserve(2_000_000)  # a recording holds the buffer: nothing is made meanwhile
        assert server.pool.idle == 0
    finally:
        await client.aclose()
        await server.aclose()
