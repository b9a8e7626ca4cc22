"""Never lose a clip: a hub that behaves like a hub (issue 9).

A home hub writes its selection and switches, and opens a recording the moment it sees motion:
it waits for no log line and no warm prebuffer. Three such moments, on the demo camera
(transcoding, libx264) and on a real RTSP camera (copy mode):

(a) configure and trigger motion at once;
(b) change the selection, then motion 0.5 s later;
(c) recording off, then on, then motion 1 s later.

Each must give a clip a hub can use: the first byte within 5 s of the open, at least the
fragments the hub asked for, every fragment starting on a keyframe, and a clean decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.events import CameraEvent, RecordingEnded
from sidecar.camera.recording.configuration import (
    RecordingSelection,
    encode_selection,
)
from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
    MOTION_DETECTED,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import advertised_video, recording_selection, set_recording_audio, write
from tests.support.clips import decodes_cleanly, first_frame_is_key, probe
from tests.support.hap_client import PIN, aio_pair
from tests.support.live_view import wait_until

pytestmark = pytest.mark.slow

FRAGMENTS = 2  # media fragments the hub asks for in each recording (plus the init segment)
FIRST_BYTE_S = 5.0


class Archive:
    """A recording sink (``Camera.recording_sinks``): what a local clip archive would get."""

    def __init__(self) -> None:
        self.clips: dict[int, bytearray] = {}
        self.ended: dict[int, RecordingEnded] = {}
        self._current: int | None = None

    def begin(self, stream_id: int, init: bytes | bytearray | memoryview) -> None:
        self._current = stream_id
        self.clips[stream_id] = bytearray(init)

    def write(self, fragment: bytes | bytearray | memoryview) -> None:
        assert self._current is not None
        self.clips[self._current] += fragment

    def end(self, event: RecordingEnded) -> None:
        self.ended[event.stream_id] = event
        self._current = None


@dataclass
class Hub:
    """aiohomekit as the hub's HAP side, our hub HDS client for the recordings."""

    camera: Camera
    pairing: Any
    capture: DeriveCapture
    ids: dict[tuple[str, str], int]
    tmp: Path
    ended: list[RecordingEnded] = field(default_factory=list)
    archive: Archive = field(default_factory=Archive)
    motion: asyncio.Event = field(default_factory=asyncio.Event)
    streams: int = 0

    async def write(self, **values: Any) -> None:
        assert await write(self.pairing, self.ids, **values) == {}

    async def configure(self, selection: RecordingSelection) -> None:
        """What a hub writes when the user enables recording: audio (a timed write), then the
        selection and both switches in one go."""
        await set_recording_audio(self.pairing, self.ids, True)
        await self.write(selection=encode_selection(selection), homekit=1, recording=1)

    async def on_motion_record(self, name: str) -> None:
        """Raise motion; when the hub sees MotionDetected it opens a recording at once."""
        self.motion.clear()
        self.camera.trigger_motion(source="test")
        await asyncio.wait_for(self.motion.wait(), 10)
        self.camera.set_motion(False, source="test")
        await self.record(name)

    async def record(self, name: str) -> None:
        self.streams += 1
        stream_id = self.streams
        client = await open_hds(self.pairing, self.ids[DATA_STREAM_SETUP], self.capture)
        try:
            await client.hello()
            opened_at = time.monotonic()
            opened = await client.open(stream_id)
            assert (opened.header.status, opened.body) == (0, {"status": 0}), name
            init, closed = await client.collect(stream_id, fragments=1, within=FIRST_BYTE_S + 5)
            first_byte_s = time.monotonic() - opened_at
            assert closed is None, f"{name}: closed before the first byte: {closed.body}"
            assert first_byte_s <= FIRST_BYTE_S, f"{name}: first byte after {first_byte_s:.1f} s"
            frags, closed = await client.collect(stream_id, fragments=FRAGMENTS, within=30)
            assert closed is None, f"{name}: closed after {len(frags)} fragments: {closed.body}"
            await client.close_stream(stream_id, 0)
        finally:
            await client.aclose()
        assert init[0].data_type == "mediaInitialization" and len(frags) == FRAGMENTS, name
        assert [f.sequence for f in init + frags] == list(range(1, FRAGMENTS + 2)), name
        clip = self.tmp / f"{name}.mp4"
        clip.write_bytes(bytes(init[0].data) + b"".join(bytes(f.data) for f in frags))
        assert await decodes_cleanly(clip), name
        info = await probe(clip)
        assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}, name
        for index, fragment in enumerate(frags):  # each fragment alone, after the init, starts on a keyframe
            alone = self.tmp / f"{name}-{index}.mp4"
            alone.write_bytes(bytes(init[0].data) + bytes(fragment.data))
            assert await first_frame_is_key(alone), f"{name}: fragment {index} does not start on a keyframe"
        # The camera's own account of it, for the status page.
        await wait_until(lambda: any(e.stream_id == stream_id for e in self.ended), 10, f"{name}: RecordingEnded")
        event = next(e for e in self.ended if e.stream_id == stream_id)
        assert (event.closed_by, event.reason_code, event.detail) == ("hub", 0, "the hub closed normally"), name
        assert event.fragments_sent >= FRAGMENTS and event.bytes_sent >= sum(len(f.data) for f in init + frags)
        assert event.first_byte_s is not None and event.first_byte_s <= first_byte_s
        # The sink got exactly what the hub was sent (perhaps one more fragment, sent as the hub closed).
        received = bytes(init[0].data) + b"".join(bytes(f.data) for f in frags)
        assert self.archive.ended[stream_id] is event and self.archive.clips[stream_id].startswith(received), name
        assert len(self.archive.clips[stream_id]) == event.bytes_sent

    async def switched_off_mid_recording(self) -> None:
        """Recording switched off while a hub records: the stream closes with NOT_ALLOWED (1)."""
        self.streams += 1
        stream_id = self.streams
        client = await open_hds(self.pairing, self.ids[DATA_STREAM_SETUP], self.capture)
        try:
            await client.hello()
            assert (await client.open(stream_id)).body == {"status": 0}
            init, closed = await client.collect(stream_id, fragments=1, within=FIRST_BYTE_S + 5)
            assert closed is None and init[0].data_type == "mediaInitialization"
            await self.write(recording=0)
            _, closed = await client.collect(stream_id, within=10)
            assert closed is not None and closed.body == {"streamId": stream_id, "reason": 1}
        finally:
            await client.aclose()
        await wait_until(lambda: any(e.stream_id == stream_id for e in self.ended), 10, "RecordingEnded")
        event = next(e for e in self.ended if e.stream_id == stream_id)
        assert (event.reason_code, event.detail) == (1, "recording was switched off")


@contextlib.asynccontextmanager
async def start_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: CameraSpec) -> AsyncIterator[Hub]:
    capture = DeriveCapture.install(monkeypatch)
    camera = Camera(spec, tmp_path / "state", host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    pairing = None
    try:
        if spec.profile == "copy":  # a hub reads what the camera advertises: let the probe finish first
            await wait_until(lambda: camera.state.app.get("probe") is not None, 30, "the source probe")
        pairing = await aio_pair(camera.server.port, PIN)
        hub = Hub(camera, pairing, capture, iids_by_type(await pairing.list_accessories_and_characteristics()),
                  tmp_path)

        def observe(event: CameraEvent) -> None:
            if isinstance(event, RecordingEnded):
                hub.ended.append(event)

        camera.events.subscribe(observe)
        camera.recording_sinks.append(hub.archive)
        motion_iid = hub.ids[MOTION_DETECTED]
        pairing.dispatcher_connect(lambda ev: (1, motion_iid) in ev and ev[(1, motion_iid)].get("value") and
                                   hub.motion.set())
        await pairing.subscribe([(1, motion_iid)])
        yield hub
    finally:
        if pairing is not None:
            await pairing.shutdown()
        await camera.stop()


async def run_the_three_moments(hub: Hub, transcodes: bool) -> None:
    camera = hub.camera
    profiles, levels = await advertised_video(hub.pairing, hub.ids)
    probe_ = camera.state.app.get("probe") or {}
    width, height, fps = (640, 360, 15) if transcodes else (probe_["width"], probe_["height"], round(probe_["fps"]))
    selection = recording_selection(width=width, height=height, fps=fps, bitrate_kbps=500, profile=profiles[0],
                                    level=levels[-1], audio_kbps=32)

    # (a) configure and trigger motion at once.
    await hub.configure(selection)
    await hub.on_motion_record("a-configure-and-motion")

    # (b) a new selection, motion 0.5 s later. A transcoding camera restarts ffmpeg for it; a
    # copy-mode camera's output does not depend on the selection, so nothing restarts.
    generation, restarts = camera.pipeline.prebuffer.generation, camera.pipeline.restarts
    await hub.write(selection=encode_selection(dataclasses.replace(selection, bitrate_kbps=400)))
    await asyncio.sleep(0.5)
    await hub.on_motion_record("b-selection-then-motion")
    if not transcodes:
        assert (camera.pipeline.prebuffer.generation, camera.pipeline.restarts) == (generation, restarts)

    # (c) recording off (here while a hub records: it is told NOT_ALLOWED), then on, then motion 1 s later.
    await hub.switched_off_mid_recording()
    if transcodes:  # the default keep-warm for transcoding: ffmpeg runs only while recording is on
        await wait_until(lambda: camera.pipeline.pid is None, 20, "ffmpeg to stop with recording off")
    else:  # copy mode keeps it warm whatever recording says
        assert camera.pipeline.pid is not None
    await hub.write(recording=1)
    await asyncio.sleep(1.0)
    await hub.on_motion_record("c-recording-on-then-motion")
    assert [e.reason_code for e in hub.ended] == [0, 0, 1, 0]


async def test_demo_camera_transcoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = CameraSpec(name="Demo Cam", source="demo", profile="libx264", setup_code=PIN, motion_timeout_s=0)
    async with start_hub(tmp_path, monkeypatch, spec) as hub:
        assert hub.camera.core.keep_warm_mode() == "recording" and hub.camera.pipeline.pid is None
        await run_the_three_moments(hub, transcodes=True)


async def test_rtsp_camera_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rtsp_camera: Any) -> None:
    cam = await rtsp_camera(width=640, height=360, fps=15, gop=60, audio=True)
    spec = CameraSpec(name="Porch", source=cam.url, profile="copy", setup_code=PIN, motion_timeout_s=0)
    async with start_hub(tmp_path, monkeypatch, spec) as hub:
        assert hub.camera.core.keep_warm_mode() == "always"
        await run_the_three_moments(hub, transcodes=False)
