"""The camera's own spec is built from the configuration field by field, nothing dropped."""

from __future__ import annotations

import dataclasses

from sidecar.app import camera_spec
from sidecar.camera import CameraSpec
from sidecar.config import CameraConfig


def test_every_spec_field_comes_from_the_same_configuration_field() -> None:
    config = CameraConfig(
        name="Porch", source="rtsp://cam/1", profile="libx264", setup_code="031-45-154", transcode_fallback=True,
        doorbell=True, snapshot_url="http://x/y.jpg", prebuffer_ms=6000, max_event_s=60, motion_timeout_s=5,
        motion_every=3, operating_mode_indicator=True, night_vision=True, manually_disabled=True,
        max_live_streams=3, keep_warm="always")
    spec = camera_spec(config)
    for f in dataclasses.fields(CameraSpec):
        if f.name == "detect":  # built from motion + detector: tests/triggers/test_detector_config.py
            continue
        assert getattr(spec, f.name) == getattr(config, f.name), f.name
    assert spec.slug == config.slug == "porch"
