"""SocketTransport over real loopback sockets: what it sends, when it says a buffer is free, and
how it ends (flushed close, abort, the peer's EOF or reset), with a reader that is slow, paused
or gone. Every wait is on an event or a byte count, with a timeout."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.hds.socket_transport import SocketTransport, accept_ready


@dataclass
class Recorder(asyncio.Protocol):
    """An asyncio protocol that notes every callback."""

    received: bytearray = field(default_factory=bytearray)
    calls: list[str] = field(default_factory=list)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    got_data: asyncio.Event = field(default_factory=asyncio.Event)
    lost_exc: Exception | None = None
    keep_open_on_eof: bool = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.calls.append("made")

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.got_data.set()

    def eof_received(self) -> bool:
        self.calls.append("eof")
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.calls.append("pause")

    def resume_writing(self) -> None:
        self.calls.append("resume")
        self.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        self.lost_exc = exc
        self.lost.set()


@dataclass
class Link:
    transport: SocketTransport
    protocol: Recorder
    peer: socket.socket  # the reader's end, blocking; read it with ``read``
    sent: list[object] = field(default_factory=list)

    async def read(self, count: int, chunk: int = 1 << 16) -> bytes:
        """Read ``count`` bytes on the peer (fewer at EOF), ``chunk`` at most per read, on the same
        loop as the transport: it sends whenever the reader makes room."""
        loop = asyncio.get_running_loop()
        out = bytearray()
        async with asyncio.timeout(20):
            while len(out) < count:
                data = await loop.sock_recv(self.peer, min(chunk, count - len(out)))
                if not data:
                    break
                out += data
        return bytes(out)


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    listener.close()
    peer.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    protocol = Recorder()
    sent: list[object] = []
    transport = SocketTransport(asyncio.get_running_loop(), ours, protocol, on_sent=sent.append)
    transport.start()
    yield Link(transport, protocol, peer, sent)
    transport.abort()
    async with asyncio.timeout(5):
        await protocol.lost.wait()
    peer.close()


async def test_sends_in_order_from_the_callers_buffers_and_frees_each_once_sent(link: Link) -> None:
    buffers = [bytearray(os.urandom(size)) for size in (10, 900_000, 1, 300_000, 70_000)]
    for buf in buffers:
        link.transport.write(memoryview(buf))
    assert link.transport.get_write_buffer_size() > 0  # 1.2 MB cannot all fit the socket at once
    received = await link.read(sum(map(len, buffers)))
    assert received == b"".join(buffers)
    assert link.transport.get_write_buffer_size() == 0
    # on_sent gave back each written object once, in order, only after its last byte went out
    assert [memoryview(x).obj for x in link.sent] == buffers  # type: ignore[attr-defined]


async def test_a_buffer_is_not_reported_sent_while_bytes_of_it_wait(link: Link) -> None:
    big = bytearray(2_000_000)
    link.transport.write(memoryview(big))
    assert link.sent == []  # the kernel took at most its buffer; the rest is ours, not copied
    queued = link.transport.get_write_buffer_size()
    assert 0 < queued <= len(big)
    await link.read(len(big))
    assert len(link.sent) == 1


async def test_pause_above_high_water_and_resume_at_low(link: Link) -> None:
    link.transport.set_write_buffer_limits(high=256 * 1024, low=32 * 1024)
    assert link.transport.get_write_buffer_limits() == (32 * 1024, 256 * 1024)
    link.transport.write(bytes(1_000_000))
    assert link.protocol.calls == ["made", "pause"]
    await link.read(1_000_000)
    async with asyncio.timeout(5):
        await link.protocol.resumed.wait()
    assert link.protocol.calls == ["made", "pause", "resume"]
    with pytest.raises(ValueError):
        link.transport.set_write_buffer_limits(high=1, low=2)


async def test_close_flushes_everything_then_reports_lost(link: Link) -> None:
    payload = os.urandom(700_000)
    link.transport.write(payload)
    link.transport.close()
    assert link.transport.is_closing()
    link.transport.write(b"after close")  # dropped, as asyncio does
    received = await link.read(len(payload) + 100)
    assert received == payload  # everything, then EOF (read stopped short of +100)
    async with asyncio.timeout(5):
        await link.protocol.lost.wait()
    assert link.protocol.lost_exc is None
    assert link.transport.get_extra_info("socket") is None


async def test_abort_drops_the_queue_and_never_reports_it_sent(link: Link) -> None:
    link.transport.write(bytearray(3_000_000))
    link.transport.abort()
    async with asyncio.timeout(5):
        await link.protocol.lost.wait()
    assert link.sent == []
    assert link.transport.get_write_buffer_size() == 0
    assert link.protocol.calls.count("lost") == 1


async def test_reads_reach_the_protocol_and_eof_closes(link: Link) -> None:
    link.peer.sendall(b"hello")
    async with asyncio.timeout(5):
        while bytes(link.protocol.received) != b"hello":
            link.protocol.got_data.clear()
            await link.protocol.got_data.wait()
    link.peer.shutdown(socket.SHUT_WR)
    async with asyncio.timeout(5):
        await link.protocol.lost.wait()
    assert link.protocol.calls == ["made", "eof", "lost"]


async def test_a_peer_reset_while_sending_ends_with_the_error_and_no_traceback(link: Link) -> None:
    link.transport.write(bytearray(3_000_000))
    link.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    link.peer.close()  # RST: the queued megabytes can never go
    async with asyncio.timeout(5):
        await link.protocol.lost.wait()
    assert isinstance(link.protocol.lost_exc, ConnectionError)
    assert link.sent == []


async def test_extra_info_peername_and_sockname(link: Link) -> None:
    assert link.transport.get_extra_info("peername") == link.peer.getsockname()
    assert link.transport.get_extra_info("sockname") == link.peer.getpeername()
    assert link.transport.get_extra_info("nothing", 7) == 7
    assert link.transport.get_protocol() is link.protocol
    assert not link.transport.can_write_eof()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 400_000), min_size=1, max_size=12), chunk=st.sampled_from([1024, 65536, 1 << 20]))
async def test_any_sizes_and_reader_pace_arrive_whole_and_in_order(
    link: Link, sizes: list[int], chunk: int
) -> None:
    link.sent.clear()
    buffers = [os.urandom(size) for size in sizes]
    for buf in buffers:
        link.transport.write(buf)
    assert await link.read(sum(sizes), chunk=chunk) == b"".join(buffers)
    assert link.sent == buffers


def test_out_of_descriptors_pauses_accepting_instead_of_spinning() -> None:
    """With no descriptor left for the next connection, the listener is told to pause (it stops
    reading for a second) rather than being woken for the same backlog again and again; once a
    descriptor is free the waiting connection is accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    client = socket.create_connection(listener.getsockname())
    started: list[socket.socket] = []
    paused: list[int] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no room for one more
        accept_ready(listener, started.append, lambda: paused.append(1))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert (paused, started) == ([1], [])
        accept_ready(listener, started.append, lambda: paused.append(1))
        assert len(started) == 1 and paused == [1]
    finally:
        for sock in (*started, client, listener):
            sock.close()
