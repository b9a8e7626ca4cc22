"""Snapshot streams over dataSend (docs/hds.md §Snapshot streams), with the real listener.

A hub opens a stream of type ``ipcamera.snapshot``; the camera layer sends one payload, which
arrives in 256 KiB chunks with its label and ``endOfStream`` on the last chunk; a recording on
the same connection goes on. Without a snapshot handler (the classic model), such an open is
refused exactly as before; with one, a switched-off camera refuses it, and a payload that cannot
be made ends the stream with a reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.hds import CloseReason, HDSServer, SnapshotStream
from sidecar.hds.datasend import decide_snapshot_open
from tests.support.hds_loopback import HOST, Camera, connect

from .peers import Gate

PICTURE = bytes(range(256)) * 2100  # 537,600 bytes: three chunks


class Snapshots:
    def __init__(self, payload: bytes | None = PICTURE) -> None:
        self.payload = payload
        self.tasks: list[asyncio.Task[None]] = []

    def __call__(self, stream: SnapshotStream) -> None:
        self.tasks.append(asyncio.create_task(self.answer(stream)))

    async def answer(self, stream: SnapshotStream) -> None:
        if self.payload is None:
            stream.fail(CloseReason.UNEXPECTED_FAILURE)
        else:
            await stream.send(self.payload, "image")


@pytest.fixture
async def camera() -> AsyncIterator[Camera]:
    cam = Camera(fragments=[b"\x01" * 1000], produce_forever=False)
    yield cam
    await cam.stop()


async def serve(gate: Gate, camera: Camera, snapshots: Snapshots | None) -> HDSServer:
    return HDSServer(gate, camera.on_stream, host=HOST, on_snapshot=snapshots)


async def test_a_snapshot_arrives_in_chunks_beside_a_recording(camera: Camera) -> None:
    snapshots = Snapshots()
    server = await serve(Gate(), camera, snapshots)
    client = await connect(server)
    try:
        await client.hello()
        assert (await client.open(1)).body == {"status": 0}
        recording, _ = await client.collect(1, fragments=2)
        assert [f.data_type for f in recording] == ["mediaInitialization", "mediaFragment"]
        opened = await client.open(2, stream_type="ipcamera.snapshot")
        assert (opened.header.status, opened.body) == (0, {"status": 0})
        (picture,), closed = await client.collect(2, within=10)
        assert closed is None
        assert picture.data_type == "image" and bytes(picture.data) == PICTURE
        assert picture.end_of_stream is True and picture.total_size == len(PICTURE)
        assert [len(c.data) for c in picture.chunks] == [262_144, 262_144, len(PICTURE) - 2 * 262_144]
        assert server.registry.active is not None  # the recording is still open
    finally:
        await client.aclose()
        await asyncio.gather(*snapshots.tasks)
        await server.aclose()


async def test_without_a_handler_a_snapshot_open_is_refused_as_before(camera: Camera) -> None:
    server = await serve(Gate(), camera, None)
    client = await connect(server)
    try:
        await client.hello()
        opened = await client.open(3, stream_type="ipcamera.snapshot")
        assert opened.header.status != 0 and opened.body == {"status": int(CloseReason.UNEXPECTED_FAILURE)}
    finally:
        await client.aclose()
        await server.aclose()


async def test_a_switched_off_camera_refuses_and_a_failed_picture_closes_with_a_reason(camera: Camera) -> None:
    gate = Gate(camera=False)
    snapshots = Snapshots(payload=None)
    server = await serve(gate, camera, snapshots)
    client = await connect(server)
    try:
        await client.hello()
        refused = await client.open(4, stream_type="ipcamera.snapshot")
        assert refused.body == {"status": int(CloseReason.NOT_ALLOWED)}
        gate.camera = True
        assert (await client.open(5, stream_type="ipcamera.snapshot")).body == {"status": 0}
        pictures, closed = await client.collect(5, within=10)
        assert pictures == [] and closed is not None
        assert closed.body == {"streamId": 5, "reason": int(CloseReason.UNEXPECTED_FAILURE)}
    finally:
        await client.aclose()
        await asyncio.gather(*snapshots.tasks)
        await server.aclose()


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.binary(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=5), max_leaves=12),
       st.booleans())
def test_any_snapshot_open_body_is_answered_never_raised(body: object, camera_on: bool) -> None:
    decision = decide_snapshot_open(body, camera_on)
    assert decision.accepted == (
        isinstance(body, dict) and body.get("target") == "controller" and body.get("type") == "ipcamera.snapshot"
        and type(body.get("streamId")) is int and camera_on)
