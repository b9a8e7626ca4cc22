"""The camera-rules rig: a real demo Camera (libx264) paired with aiohomekit, plus the hub's
HDS side (tests/hub). Shared by tests/camera and tests/e2e modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.recording.configuration import (
    TRIGGER_MOTION,
    AudioRecordingCodec,
    H264Level,
    H264Profile,
    RecordingSelection,
    SampleRate,
)
from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
)
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import write

__all__ = ["PIN", "SELECTION", "RecordingRig", "make_camera"]

PIN = "031-45-154"
SELECTION = RecordingSelection(4000, TRIGGER_MOTION, 4000, H264Profile.MAIN, H264Level.L3_1, 500, 4000, 640, 360, 15,
                               AudioRecordingCodec.AAC_LC, 1, 0, SampleRate.KHZ_32, 32)


@dataclass
class RecordingRig:
    camera: Camera
    pairing: Any
    capture: DeriveCapture
    ids: dict[tuple[str, str], int]

    async def put(self, **values: Any) -> dict[Any, Any]:
        return await write(self.pairing, self.ids, **values)

    async def hds(self) -> Any:
        client = await open_hds(self.pairing, self.ids[DATA_STREAM_SETUP], self.capture)
        await client.hello()
        return client


async def make_camera(tmp_path: Path, **overrides: Any) -> Camera:
    config = CameraSpec(name="Rules Cam", source="demo", profile="libx264", setup_code=PIN, **overrides)
    camera = Camera(config, tmp_path, host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    return camera
