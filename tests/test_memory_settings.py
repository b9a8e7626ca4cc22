"""The memory settings: `copy_ffmpeg` (only copy-mode recording pipelines run it) and `sealing_buffers`."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_hksv_copy_ffmpeg_is_the_default_and_the_configuration_file_wins(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The Docker image sets HKSV_COPY_FFMPEG to its ffmpeg built for copying (Dockerfile).
    from sidecar.cli import parse_args

    camera = ["--camera", "Door=rtsp://127.0.0.1:9/x", "--setup-code", "031-45-154"]
    monkeypatch.delenv("HKSV_COPY_FFMPEG", raising=False)
    assert parse_args(camera).copy_ffmpeg is None
    monkeypatch.setenv("HKSV_COPY_FFMPEG", "/usr/local/lib/hksv/ffmpeg-copy")
    assert parse_args(camera).copy_ffmpeg == "/usr/local/lib/hksv/ffmpeg-copy"
    config = tmp_path / "config.yaml"
    config.write_text("copy_ffmpeg: ffmpeg\n", encoding="utf-8")
    assert parse_args(["--config", str(config), *camera]).copy_ffmpeg == "ffmpeg"


async def test_the_camera_runs_it_for_the_recording_pipeline_only(tmp_path: Path) -> None:
    cfg = build_config({"cameras": [{"name": "Copy", "source": "rtsp://127.0.0.1/a", "setup_code": "031-45-154"}]})
    camera = Camera(camera_spec(cfg.cameras[0]), tmp_path, host="127.0.0.1", port=0, advertiser=None,
                    recording_ffmpeg="/opt/ffmpeg/ffmpeg")
    assert camera.pipeline.config.copy_ffmpeg_bin == "/opt/ffmpeg/ffmpeg"
    assert camera.pipeline.config.ffmpeg_bin == "ffmpeg"  # what a transcode fallback runs
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


def test_a_copy_run_uses_copy_ffmpeg_and_a_transcode_fallback_the_full_ffmpeg() -> None:
    # The image's copy_ffmpeg can only copy (no libx264): an H.265 camera whose recordings fall
    # back to H.264, or a copy camera that must encode, has to run the full ffmpeg again.
    from sidecar.media import parse_source
    from sidecar.media.frames import DetectOutput
    from sidecar.media.pipeline_config import PipelineConfig
    from sidecar.media.stream_policy import StreamPolicy

    profiles = load_profiles()
    rtsp = parse_source("rtsp://127.0.0.1:9/cam")
    policy = StreamPolicy(PipelineConfig(source=rtsp, copy_ffmpeg_bin="/copy/ffmpeg", record_codec="hevc"), profiles)
    assert policy.start_run().argv[0] == "/copy/ffmpeg"
    policy.source_hevc = True
    policy.set_record_codec("h264")  # record_codec auto, after failed H.265 recordings
    assert policy.profile_name == "libx264" and policy.start_run().argv[0] == "ffmpeg"
    encoder = StreamPolicy(PipelineConfig(source=rtsp, profile="libx264", copy_ffmpeg_bin="/copy/ffmpeg"), profiles)
    assert encoder.start_run().argv[0] == "ffmpeg"
    # A copy camera whose pipeline also decodes frames for the built-in detector needs the full one.
    detector = StreamPolicy(PipelineConfig(source=rtsp, copy_ffmpeg_bin="/copy/ffmpeg", detect=DetectOutput()),
                            profiles)
    assert detector.start_run().argv[0] == "ffmpeg"


def test_a_copy_build_that_lacks_a_part_the_camera_needs_gives_way_to_the_full_ffmpeg() -> None:
    """Only ffmpeg's own words for a part missing from the build (a protocol, a format, a filter,
    a codec, an option), in a copy-build run that produced nothing, switch the camera; a camera's
    own failure (refused, 401, bad data), a run that streamed, or a run of the full ffmpeg never do."""
    from sidecar.media import PipelineConfig, parse_source
    from sidecar.media.profiles import load_profiles
    from sidecar.media.stream_policy import Notice, StreamPolicy

    profiles = load_profiles()
    srt = parse_source("srt://127.0.0.1:9")

    def policy() -> StreamPolicy:
        p = StreamPolicy(PipelineConfig(source=srt, copy_ffmpeg_bin="/copy/ffmpeg"), profiles)
        assert p.start_run().argv[0] == "/copy/ffmpeg"
        return p

    for camera_fault in ("Connection refused", "method DESCRIBE failed: 401 Unauthorized",
                         "Invalid data found when processing input", "No such file or directory"):
        p = policy()
        assert p.run_ended(("srt://127.0.0.1:9: " + camera_fault,), progressed=False) == []
        assert p.start_run().argv[0] == "/copy/ffmpeg"
    streamed = policy()
    assert streamed.run_ended(("srt://127.0.0.1:9: Protocol not found",), progressed=True) == []
    for lacks in ("srt://127.0.0.1:9: Protocol not found", "Unknown input format: 'v4l2'", "No such filter: 'scale'",
                  "Unknown bitstream filter h264_mp4toannexb", "Unrecognized option 'rtsp_transport'.",
                  "Decoder (codec pcm_alaw) not found for input stream #0:1", "Unknown encoder 'libopus'"):
        p = policy()
        (notice,) = p.run_ended(("[in#0] opening...", lacks, "Exiting"), progressed=False)
        assert isinstance(notice, Notice) and notice.warning and lacks in notice.text
        assert p.start_run().argv[0] == "ffmpeg" and p.copy_build_refused
        assert p.run_ended((lacks,), progressed=False) == []  # said once: the full one is in use
    full = StreamPolicy(PipelineConfig(source=srt), profiles)
    full.start_run()
    assert full.run_ended(("srt://127.0.0.1:9: Protocol not found",), progressed=False) == []
