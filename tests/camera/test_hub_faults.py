"""Hub faults against a real camera (demo source, real ffmpeg, real HAP and HDS over loopback).

* A hub that vanishes mid-stream, 50 times, half with FIN and half with RST: the stream ends
  each time, and fds, asyncio tasks, threads and ffmpeg children do not grow.
* A hub that stops reading: what it holds stays bounded, the stream closes with a reason within
  the stall timeout (10 s, the default) counted from the hub's last read, another hub's open is
  accepted right away, and the stuck hub sees the reason when it reads again.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import socket
import struct
import termios
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from sidecar.camera.recording.configuration import encode_selection
from sidecar.hds import CloseReason
from sidecar.hds.config import DEFAULT_HIGH_WATER, DEFAULT_SEND_BUFFER, DEFAULT_STALL_TIMEOUT
from sidecar.hds.hub_connection import PROGRESS_CHECK_S
from tests.hub.characteristics import DATA_STREAM_SETUP
from tests.hub.hap_setup import controller_hds_keys, setup_write
from tests.hub.hds_client import HubDataStreamClient, build_setup_write, new_salt, parse_setup_response
from tests.support.camera_rig import SELECTION, RecordingRig, recording_rig
from tests.support.live_view import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
async def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RecordingRig]:
    """A paired camera, recording on, prebuffer warm."""
    async with recording_rig(tmp_path, monkeypatch, max_event_s=600) as rig:
        await rig.put(selection=encode_selection(SELECTION), recording=1, homekit=1)
        await rig.camera.pipeline.wait_ready(4000, timeout_s=40)
        yield rig


def snapshot() -> tuple[int, int, int, int]:
    me = psutil.Process()
    children = sum(1 for c in me.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE)
    return me.num_fds(), len(asyncio.all_tasks()), threading.active_count(), children


async def test_hub_vanishing_mid_stream_50_times_leaks_nothing(recording: RecordingRig) -> None:
    rig = recording
    camera = rig.camera

    async def one(stream_id: int, rst: bool) -> None:
        client = await rig.hds()
        assert (await client.open(stream_id)).body == {"status": 0}
        fragments, closed = await client.collect(stream_id, fragments=2, within=20)
        assert closed is None and fragments[0].data_type == "mediaInitialization"
        sock = client.writer.get_extra_info("socket")
        if rst:  # power cut with the socket reset: RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.writer.transport.abort()
        else:  # the hub process exits: FIN
            client.writer.close()
        await wait_until(lambda: camera.hds.registry.active is None and not camera.hds.connections, 10,
                         "the stream and its connection to end")
        await client.aclose()

    await one(1, rst=False)  # warm-up: first-use allocations are not leaks
    await one(2, rst=True)
    start = snapshot()
    for i in range(50):
        await one(3 + i, rst=bool(i % 2))
        if i == 24:
            middle = snapshot()
    end = snapshot()
    print(f"\nhub vanished 50x (25 FIN, 25 RST); (fds, tasks, threads, children) "
          f"at 0: {start}, 25: {middle}, 50: {end}; recordings opened: {camera.core.recordings}")
    assert end[0] <= start[0] + 2  # fds
    assert end[1] <= start[1]  # asyncio tasks
    assert end[2] <= start[2]  # threads
    assert end[3] == start[3]  # the one recording ffmpeg, still the same count


async def test_hub_that_stops_reading_is_closed_with_a_reason_within_the_stall_timeout(recording: RecordingRig) -> None:
    rig = recording
    camera = rig.camera
    assert camera.hds.config.stall_timeout == DEFAULT_STALL_TIMEOUT == 10.0
    # A hub whose own buffers are small (kernel and reader), so that when its app stops reading
    # it stops acknowledging at once: at this low bit rate, anything it buffers is progress.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    salt = new_salt()
    entry = await setup_write(rig.pairing, rig.ids[DATA_STREAM_SETUP], build_setup_write(salt))
    response = parse_setup_response(base64.b64decode(entry["value"]))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", response.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    hub = HubDataStreamClient(reader, writer, controller_hds_keys(rig.capture.latest, salt, response.accessory_salt))
    other = None
    rss_before = psutil.Process().memory_info().rss
    try:
        await hub.hello()
        assert (await hub.open(1)).body == {"status": 0}
        await hub.collect(1, fragments=3, within=20)  # init, prebuffer, then live: the hub keeps up ...
        stopped = time.monotonic()  # ... and now its app stops reading:
        hub.writer.transport.pause_reading()  # (everything else stays in its kernel queue)
        (proto,) = camera.hds.connections
        most = queued = 0
        last_growth = stopped
        async with asyncio.timeout(DEFAULT_STALL_TIMEOUT + 15):
            while camera.hds.registry.active is not None:
                most = max(most, proto._outstanding())
                now_queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
                if now_queued > queued:  # the hub's kernel still took data: progress the hub made
                    queued, last_growth = now_queued, time.monotonic()
                await asyncio.sleep(0.05)
        closed = time.monotonic()
        rss_growth = psutil.Process().memory_info().rss - rss_before
        print(f"\nstalled hub: recording closed {closed - last_growth:.1f} s after the hub's last progress "
              f"({closed - stopped:.1f} s after its app stopped reading; stall timeout "
              f"{DEFAULT_STALL_TIMEOUT:.0f} s); at most {most} bytes queued for it; test process RSS "
              f"{rss_growth / 1e6:+.1f} MB")
        assert DEFAULT_STALL_TIMEOUT - 0.2 <= closed - last_growth <= DEFAULT_STALL_TIMEOUT + PROGRESS_CHECK_S + 1.5
        assert most <= DEFAULT_HIGH_WATER + 300 * 1024 + 2 * DEFAULT_SEND_BUFFER
        hub.writer.transport.resume_reading()
        # The slot is free: another hub's open is accepted, not refused BUSY.
        other = await rig.hds()
        assert (await other.open(2)).body == {"status": 0}
        # The stuck hub reads again: the close event with the reason, then the end.
        _, close = await hub.collect(1, within=10)
        assert close is not None and close.body == {"streamId": 1, "reason": int(CloseReason.CANCELLED)}
        assert await hub.wait_eof(within=10)
    finally:
        await hub.aclose()
        if other is not None:
            await other.aclose()
