"""No ffmpeg restart of the sidecar's own ends a recording in flight, on a real camera.

A copy-mode camera with a 1 s keyframe interval (the GStreamer RTSP camera at 15 fps, a GOP of
15 frames; most cameras out of the box) makes the stream policy merge its short GOPs into ~4 s
fragments, which takes one ffmpeg restart. A hub that opened a recording as ffmpeg started gets
its whole clip from the first run, every fragment in order and decodable; the merge happens once
the recording is over.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.recording.configuration import (
    TRIGGER_MOTION,
    AudioRecordingCodec,
    H264Level,
    H264Profile,
    RecordingSelection,
    SampleRate,
    encode_selection,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.support.clips import advertised_codec, advertised_resolutions, decodes_cleanly, first_frame_is_key
from tests.support.hap_client import aio_pair
from tests.support.rtsp_camera import CameraFactory

PIN = "031-45-154"
pytestmark = pytest.mark.slow


def moof_sequence(fragment: bytes) -> int:
    """The fragment's own sequence number (mfhd), as ffmpeg numbered it within its run."""
    at = fragment.index(b"mfhd")
    return int.from_bytes(fragment[at + 8:at + 12], "big")


async def test_the_gop_merge_restart_waits_for_the_recording_in_flight(
        rtsp_camera: CameraFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cam = await rtsp_camera(width=640, height=360, fps=15, gop=15, audio=False)
    capture = DeriveCapture.install(monkeypatch)
    camera = Camera(CameraSpec(name="Porch", source=cam.url, profile="copy", setup_code=PIN, keep_warm="recording"),
                    tmp_path, host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    pairing = await aio_pair(camera.server.port, PIN)
    client = None
    try:
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        async with asyncio.timeout(30):  # the probe tells what copy mode can advertise
            while True:
                values = await pairing.get_characteristics([(1, ids[("204", "206")])])
                video_tlv = base64.b64decode(values[(1, ids[("204", "206")])]["value"])
                if (640, 360, 15) in advertised_resolutions(video_tlv):
                    break
                await asyncio.sleep(0.2)
        profiles, levels = advertised_codec(video_tlv)
        selection = RecordingSelection(4000, TRIGGER_MOTION, 4000, H264Profile(profiles[0]), H264Level(levels[0]),
                                       2000, 4000, 640, 360, 15, AudioRecordingCodec.AAC_LC, 1, 0,
                                       SampleRate.KHZ_32, 64)
        assert await pairing.put_characteristics([
            (1, ids[("204", "209")], base64.b64encode(encode_selection(selection)).decode())]) == {}
        assert camera.pipeline.status().state.value == "stopped"  # recording off: no ffmpeg yet
        client = await open_hds(pairing, ids[("129", "131")], capture)
        await client.hello()
        # Recording on starts ffmpeg; the hub opens at once (as on motion right after a start).
        assert await pairing.put_characteristics([(1, ids[("204", "B0")], 1)]) == {}
        assert (await client.open(1)).body == {"status": 0}
        frags, closed = await client.collect(1, fragments=1 + 10, within=60)
        assert closed is None
        # The merge was wanted while the hub recorded, and waited: one run, one init segment.
        held = camera.pipeline.restart_held
        assert held is not None and "merging short GOPs" in held
        generation = camera.pipeline.prebuffer.generation
        await client.close_stream(1, 0)
    finally:
        if client is not None:
            await client.aclose()
    try:
        # The recording is over: now the restart, and ~4 s fragments from the next run.
        await camera.pipeline.wait_for(lambda: camera.pipeline.prebuffer.generation > generation, 30)
        assert camera.pipeline.restart_held is None
        count = camera.pipeline.status().fragments
        await camera.pipeline.wait_for(lambda: camera.pipeline.status().fragments >= count + 2, 30)
        merged = camera.pipeline.prebuffer.fragments_since(60_000, camera.clock())
        assert merged is not None
        durations = [f.duration_s for f in merged.fragments]
        assert max(durations) > 2.5, durations
    finally:
        await pairing.shutdown()
        await camera.stop()

    assert frags[0].data_type == "mediaInitialization" and all(f.data_type == "mediaFragment" for f in frags[1:])
    sequences = [moof_sequence(bytes(f.data)) for f in frags[1:]]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), sequences  # none lost
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"".join(bytes(f.data) for f in frags))
    assert await decodes_cleanly(clip) and await first_frame_is_key(clip)
