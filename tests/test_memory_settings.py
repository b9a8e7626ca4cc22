"""The memory settings: `copy_ffmpeg` (only copy-mode recording pipelines run it) and `sealing_buffers`."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from sidecar.app import _recording_ffmpeg, camera_spec
from sidecar.camera import Camera
from sidecar.config import build_config
from sidecar.media import load_profiles


def test_copy_cameras_record_with_copy_ffmpeg_and_the_others_with_ffmpeg_on_path() -> None:
    cfg = build_config({"copy_ffmpeg": "/opt/ffmpeg/ffmpeg", "cameras": [
        {"name": "Copy", "source": "rtsp://127.0.0.1/a", "profile": "copy", "setup_code": "031-45-154"},
        {"name": "Encode", "source": "rtsp://127.0.0.1/b", "profile": "libx264", "setup_code": "031-45-154"},
        {"name": "Hardware", "source": "rtsp://127.0.0.1/c", "profile": "vaapi", "setup_code": "031-45-154"}]})
    profiles = load_profiles()
    chosen = [_recording_ffmpeg(cfg, cam, profiles) for cam in cfg.cameras]
    assert chosen == ["/opt/ffmpeg/ffmpeg", None, None]
    unset = build_config({"cameras": [cfg.cameras[0].model_dump()]})
    assert _recording_ffmpeg(unset, unset.cameras[0], profiles) is None


async def test_the_camera_runs_it_for_the_recording_pipeline_only(tmp_path: Path) -> None:
    cfg = build_config({"cameras": [{"name": "Copy", "source": "rtsp://127.0.0.1/a", "setup_code": "031-45-154"}]})
    camera = Camera(camera_spec(cfg.cameras[0]), tmp_path, host="127.0.0.1", port=0, advertiser=None,
                    recording_ffmpeg="/opt/ffmpeg/ffmpeg")
    assert camera.pipeline.config.ffmpeg_bin == "/opt/ffmpeg/ffmpeg"
    assert camera.live.ffmpeg == camera.media.ffmpeg == "ffmpeg"  # live views and snapshots: ffmpeg on PATH


async def test_sealing_buffers_bounds_the_pool_every_camera_shares(tmp_path: Path) -> None:
    from sidecar.app import App

    cfg = build_config({"state_dir": str(tmp_path), "bind": "127.0.0.1", "mdns": False, "sealing_buffers": 1,
                        "cameras": [{"name": f"Cam {i}", "source": "rtsp://127.0.0.1:9/x", "setup_code": "031-45-154",
                                     "keep_warm": "recording"} for i in range(2)]})
    app = App(cfg, out=io.StringIO())
    await app.start()
    try:
        pools = {id(camera.hds.pool) for camera in app.cameras}
        assert len(pools) == 1 and app.cameras[0].hds.pool.limit == 1
    finally:
        await app.stop()


def test_validating_a_configuration_builds_only_the_top_models_validator() -> None:
    # The configuration models are built on first use (defer_build): validating a Config builds
    # Config's validator, which holds the nested models' schemas, and never the nested models' own
    # validators and serializers (DetectorConfig's is: a camera without detector settings gets
    # DetectorConfig(), its default_factory). A fresh interpreter, as the command starts.
    code = """
from sidecar.config import CameraConfig, Config, DetectorConfig, TierConfig, TwoWayAudioConfig, build_config
from sidecar.config_mqtt import CameraMqttConfig, MqttConfig
nested = (CameraConfig, TierConfig, TwoWayAudioConfig, CameraMqttConfig, MqttConfig)
before = Config.__pydantic_complete__
cfg = build_config({"cameras": [{"name": "Door", "source": "rtsp://127.0.0.1:9/x", "setup_code": "031-45-154"}]})
print(before, Config.__pydantic_complete__, DetectorConfig.__pydantic_complete__,
      *(m.__pydantic_complete__ for m in nested), cfg.cameras[0].name)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "True", *["False"] * 5, "Door"]
