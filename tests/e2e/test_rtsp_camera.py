"""A real RTSP camera (GStreamer, 640x360@15, 4 s GOP, AAC audio) through the whole sidecar in
copy mode: the sidecar advertises the camera's own stream and records it to a simulated hub."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.hub.characteristics import SUPPORTED_VIDEO_RECORDING_CONFIGURATION
from tests.hub.hap_setup import DeriveCapture
from tests.hub.recording import enable_recording, paired, record, recording_selection, set_recording_audio
from tests.support.clips import (
    advertised_codec,
    advertised_resolutions,
    decodes_cleanly,
    first_frame_is_key,
    probe,
)

PIN = "031-45-154"
pytestmark = pytest.mark.slow


async def test_rtsp_camera_in_copy_mode(sidecar: Any, rtsp_camera: Any, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    cam = await rtsp_camera(width=640, height=360, fps=15, gop=60, audio=True)
    capture = DeriveCapture.install(monkeypatch)
    proc = await sidecar("--camera", f"Porch={cam.url}", "--setup-code", PIN)
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    await proc.wait_for_line(r"Porch: source is 640x360@[\d.]+ avc1 with audio", timeout=30)
    async with paired(port, PIN) as (pairing, ids):
        values = await pairing.get_characteristics([(1, ids[SUPPORTED_VIDEO_RECORDING_CONFIGURATION])])
        # Copy mode can only deliver the camera's own stream: that is all it advertises.
        video_tlv = base64.b64decode(values[(1, ids[SUPPORTED_VIDEO_RECORDING_CONFIGURATION])]["value"])
        assert advertised_resolutions(video_tlv) == {(640, 360, 15)}
        profiles, levels = advertised_codec(video_tlv)
        assert len(profiles) == 1 and len(levels) == 1  # the camera's own H.264 profile and level
        selection = recording_selection(bitrate_kbps=2000, profile=profiles[0], level=levels[0])
        await set_recording_audio(pairing, ids, True, pid=7)
        await enable_recording(pairing, ids, selection, homekit_active=False)
        await proc.wait_for_line(r"Porch: prebuffer ready", timeout=45)
        frags, path = await record(pairing, capture, ids, 1, live_fragments=1, tmp=tmp_path)
        info = await probe(path)
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
        assert streams["audio"]["codec_name"] == "aac" and streams["audio"]["sample_rate"] == "32000"
        assert await decodes_cleanly(path) and await first_frame_is_key(path)
        assert float(info["format"]["duration"]) >= 4.0 + 3.9
        assert all(f.data for f in frags)
