"""Command line and YAML configuration: merging, validation, errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli import main, parse_args
from sidecar.config import ConfigError


def test_flags_build_cameras() -> None:
    cfg = parse_args(["--camera", "Front Door=rtsp://u:p@10.0.0.2/s", "--demo", "--bind", "127.0.0.1",
                      "--hap-port", "51000", "--setup-code", "031-45-154", "--no-mdns"])
    assert [c.name for c in cfg.cameras] == ["Front Door", "Demo Camera"]
    assert cfg.cameras[0].setup_code == "031-45-154" and cfg.cameras[1].source == "demo"
    assert cfg.bind == "127.0.0.1" and cfg.mdns is False
    assert [cfg.port_for(i, c) for i, c in enumerate(cfg.cameras)] == [51000, 51001]


def test_yaml_file_and_flags_merge(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("state_dir: /tmp/x\nmdns_interfaces: [127.0.0.1]\ncameras:\n"
                    "  - {name: Garage, source: 'rtsp://g/s', hap_port: 52000}\n")
    cfg = parse_args(["--config", str(path), "--camera", "Porch=rtsp://p/s"])
    assert [c.name for c in cfg.cameras] == ["Garage", "Porch"]
    assert cfg.state_dir == Path("/tmp/x") and cfg.mdns_interfaces == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--camera", "A=rtsp://x", "--setup-code", "123-45-678"], "cameras.0.setup_code"),
        (["--camera", "A=rtsp://x", "--camera", "a=rtsp://y"], "same camera name"),
        (["--camera", "no-equals-sign"], "NAME=URL"),
        ([], "no cameras"),
        (["--camera", "A=rtsp://x", "--hap-port", "70000"], "hap_base_port"),
    ],
)
def test_errors_name_the_problem(argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_args(argv)


def test_bad_yaml_and_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cameras: [\n")
    assert main(["--config", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    path.write_text("cameraz: []\n")
    assert main(["--config", str(path), "--demo"]) == 2
    assert "cameraz" in capsys.readouterr().err


def test_two_way_audio_config_becomes_the_cameras_talk_target() -> None:
    from sidecar.app import camera_spec
    from sidecar.camera import TwoWayAudio
    from sidecar.config import build_config

    def spec(value: object) -> object:
        cfg = build_config({"cameras": [{"name": "Door", "source": "rtsp://cam/x", "two_way_audio": value}]})
        return camera_spec(cfg.cameras[0]).two_way_audio

    assert spec(None) is None and spec(False) is None
    assert spec(True) == TwoWayAudio()  # the camera's own backchannel
    assert spec({"target": "rtsp://go2rtc:8554/door"}) == TwoWayAudio(target="rtsp://go2rtc:8554/door")
    assert spec({"target": "/tmp/talk.wav", "format": "wav", "sample_rate": 16000}) == TwoWayAudio(
        target="/tmp/talk.wav", format="wav", sample_rate=16000)
    for bad, fragment in (({"format": "wav"}, "needs a target"), ({"target": "/tmp/x.wav"}, "rtsp:// URL"),
                          ({"sample_rate": 100}, "sample_rate"), ({"volume": 3}, "volume")):
        with pytest.raises(ConfigError, match=fragment):
            spec(bad)


def test_record_codec_is_h264_unless_set(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cameras:\n  - {name: A, source: 'rtsp://a/s'}\n  - {name: B, source: 'rtsp://b/s', "
                    "record_codec: hevc}\n  - {name: C, source: 'rtsp://c/s', record_codec: auto}\n")
    cfg = parse_args(["--config", str(path)])
    assert [c.record_codec for c in cfg.cameras] == ["h264", "hevc", "auto"]
    path.write_text("cameras:\n  - {name: A, source: 'rtsp://a/s', record_codec: h265}\n")
    with pytest.raises(ConfigError, match="record_codec"):
        parse_args(["--config", str(path)])


def test_the_uncertain_secure_video_readings_default_to_the_best_supported_and_need_the_model(
        tmp_path: Path) -> None:
    """``zone_coordinates`` and ``setup_endpoints_answer`` choose between readings of real hubs
    that are not known for sure (docs/secure-video.md §Certain and uncertain)."""
    path = tmp_path / "c.yaml"
    path.write_text("cameras:\n  - {name: A, source: 'rtsp://a/s', homekit_model: secure_video}\n"
                    "  - {name: B, source: 'rtsp://b/s', homekit_model: secure_video, zone_coordinates: normalized,"
                    " setup_endpoints_answer: write_response}\n")
    a, b = parse_args(["--config", str(path)]).cameras
    assert (a.zone_coordinates, a.setup_endpoints_answer) == ("sensor_pixels", "read")
    assert (b.zone_coordinates, b.setup_endpoints_answer) == ("normalized", "write_response")
    for setting in ("zone_coordinates: normalized", "setup_endpoints_answer: write_response"):
        path.write_text(f"cameras:\n  - {{name: A, source: 'rtsp://a/s', {setting}}}\n")
        with pytest.raises(ConfigError, match=f"cameras.0: has {setting.split(':')[0]}: but homekit_model is not"):
            parse_args(["--config", str(path)])


def test_tier_codec_auto_is_secure_video_only_and_not_with_a_tier_profile(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cameras:\n  - {name: A, source: 'rtsp://a/s', homekit_model: secure_video, tier_codec: auto}\n")
    assert parse_args(["--config", str(path)]).cameras[0].tier_codec == "auto"
    path.write_text("cameras:\n  - {name: A, source: 'rtsp://a/s', tier_codec: auto}\n")
    with pytest.raises(ConfigError, match="has tier_codec: but homekit_model is not secure_video"):
        parse_args(["--config", str(path)])
    path.write_text("cameras:\n  - {name: A, source: 'rtsp://a/s', homekit_model: secure_video, tier_codec: auto,"
                    " tiers: {low: {width: 320, height: 180, profile: libx264}}}\n")
    with pytest.raises(ConfigError, match="tier_codec: auto and a profile on tier low"):
        parse_args(["--config", str(path)])
