"""The camera-rules rig: a real demo Camera (libx264) paired with aiohomekit, plus the hub's
HDS side (tests/hub). Shared by tests/camera and tests/e2e modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.recording.configuration import (
    H264Level,
)
from tests.hub.characteristics import DATA_STREAM_SETUP
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import paired, recording_selection, write

__all__ = ["PIN", "SELECTION", "RecordingRig", "make_camera", "recording_rig"]

PIN = "031-45-154"
SELECTION = recording_selection(bitrate_kbps=500, level=H264Level.L3_1, audio_kbps=32)


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


@asynccontextmanager
async def recording_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any
                        ) -> AsyncIterator[RecordingRig]:
    """A started demo camera (``overrides`` go to its spec) paired with aiohomekit, the hub's key
    derivation captured for HDS; the pairing and the camera are ended at exit."""
    capture = DeriveCapture.install(monkeypatch)
    camera = await make_camera(tmp_path, **overrides)
    try:
        async with paired(camera.server.port, PIN) as (pairing, ids):
            yield RecordingRig(camera, pairing, capture, ids)
    finally:
        await camera.stop()
