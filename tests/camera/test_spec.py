"""The camera's own spec: built from the configuration field by field, nothing dropped; keep_warm."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sidecar.app import camera_spec
from sidecar.camera import Camera, CameraSpec, camera_media
from sidecar.camera.secure_video.tiers import TierSpec
from sidecar.config import CameraConfig
from sidecar.media import SourceProbe


def test_every_spec_field_comes_from_the_same_configuration_field() -> None:
    config = CameraConfig(
        name="Porch", source="rtsp://cam/1", profile="libx264", setup_code="031-45-154", transcode_fallback=True,
        doorbell=True, snapshot_url="http://x/y.jpg", prebuffer_ms=6000, max_event_s=60, motion_timeout_s=5,
        motion_every=3, operating_mode_indicator=True, night_vision=True, manually_disabled=True,
        max_live_streams=3, keep_warm="always")
    spec = camera_spec(config)
    # detect, http_motion: built from motion + detector (tests/triggers/test_detector_config.py);
    # tiers: a tuple of TierSpec from the tiers: mapping (below).
    derived = {"detect", "http_motion", "tiers"}
    for f in dataclasses.fields(CameraSpec):
        if f.name not in derived:
            assert getattr(spec, f.name) == getattr(config, f.name), f.name
    assert spec.http_motion is True and spec.detect is None
    assert spec.slug == config.slug == "porch"


def test_tiers_become_tier_specs() -> None:
    config = CameraConfig.model_validate({
        "name": "Porch", "source": "rtsp://cam/1", "homekit_model": "secure_video",
        "tiers": {"low": {"width": 640, "height": 360}, "medium": {"source": "rtsp://cam/2", "width": 1280,
                                                                   "height": 720, "fps": 20}}})
    spec = camera_spec(config)
    assert spec.secure_video and spec.state_file == "porch.secure-video.json"
    assert spec.tiers == (TierSpec(name="low", width=640, height=360),
                          TierSpec(name="medium", width=1280, height=720, fps=20, source="rtsp://cam/2"))
    with pytest.raises(ValueError, match="tiers"):
        CameraConfig.model_validate({"name": "P", "source": "demo", "tiers": {"low": {"width": 640, "height": 360}}})


async def test_keep_warm_defaults_by_profile_and_the_setting_overrides_both_ways(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copy mode keeps ffmpeg running whenever the camera is on; transcoding only while recording
    is on; keep_warm turns either way around. The camera switched off, or not paired to any hub
    yet, never runs it."""
    cases = [("copy", "auto", "always"), ("libx264", "auto", "recording"),
             ("copy", "recording", "recording"), ("libx264", "always", "always")]
    for index, (profile, keep_warm, mode) in enumerate(cases):
        spec = CameraSpec(name=f"Cam {index}", source="rtsp://127.0.0.1:9/x", profile=profile,
                          keep_warm=keep_warm)  # type: ignore[arg-type]
        camera = Camera(spec, tmp_path, host="127.0.0.1", port=0, advertiser=None)
        assert camera.core.keep_warm_mode() == mode, (profile, keep_warm)
        for is_paired in (False, True):
            camera.core.paired = is_paired  # as the pairing notices tell it
            wanted = {}
            for homekit, recording in ((1, 0), (1, 1), (0, 1)):
                camera.core.settings.homekit_active, camera.core.settings.recording_active = homekit, recording
                wanted[(homekit, recording)] = camera.core.pipeline_wanted
            expected = {(1, 0): mode == "always", (1, 1): True, (0, 1): False} if is_paired else dict.fromkeys(wanted,
                                                                                                            False)
            assert wanted == expected, (profile, keep_warm, is_paired)


async def test_a_jittery_frame_rate_keeps_what_is_advertised_and_the_selection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy-mode camera re-measures its frame rate after each ffmpeg restart; 17.4 for a
    15 fps camera must not re-advertise (which drops the hub's selection), 30 must."""
    camera = Camera(CameraSpec(name="Porch", source="rtsp://127.0.0.1:9/x", profile="copy"), tmp_path,
                    host="127.0.0.1", port=0, advertiser=None)
    measured = [15.0]

    async def fake_probe(*args: object, **kwargs: object) -> SourceProbe:
        return SourceProbe("avc1", 640, 360, measured[0], "main", "3.1", has_audio=True)

    monkeypatch.setattr(camera_media, "probe_source", fake_probe)
    assert await camera.media.refresh_probe()
    advertised = camera.core.offer.supported.config_hash()
    measured[0] = 17.4
    assert await camera.media.refresh_probe()
    assert camera.core.offer.supported.config_hash() == advertised and camera.state.app["probe"]["fps"] == 15.0
    measured[0] = 30.0
    assert await camera.media.refresh_probe()
    assert camera.core.offer.supported.config_hash() != advertised and camera.state.app["probe"]["fps"] == 30.0
