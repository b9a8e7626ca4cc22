"""The detector's configuration: what a YAML file turns into, and every bad value refused by the
real ``hksv-sidecar`` command with a message naming the setting (exit 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.app import camera_spec, detector_params
from sidecar.config import ConfigError, build_config
from sidecar.media.frames import DetectOutput
from sidecar.triggers.detector import DetectorParams
from tests.support.command import BASE, STARTED, expect_refusal, run


def test_yaml_settings_become_the_detector_and_its_frames() -> None:
    config = build_config({"cameras": [{
        "name": "Yard", "source": "rtsp://cam/main", "motion": "detector", "detect_source": "rtsp://cam/sub",
        "detector": {"fps": 4, "frame_height": 120, "threshold": 25, "off_delay": 10,
                     "mask": ["0,0,0.5,0,0.5,0.25", [[0.9, 0.9], [1, 0.9], [1, 1]]]}}]})
    cam = config.cameras[0]
    assert cam.motion == ["detector"] and cam.motion_detector
    spec = camera_spec(cam)
    assert spec.detect == DetectOutput(fps=4, height=120) and spec.detect_source == "rtsp://cam/sub"
    assert detector_params(cam.detector) == DetectorParams(
        threshold=25, frame_height=120, off_delay=10,
        mask=(((0.0, 0.0), (0.5, 0.0), (0.5, 0.25)), ((0.9, 0.9), (1.0, 0.9), (1.0, 1.0))))
    # Without "detector" in motion there are no detector frames, even with a detect_source.
    plain = build_config({"cameras": [{"name": "Door", "source": "demo", "detect_source": "rtsp://cam/sub"}]})
    assert plain.cameras[0].motion == ["http", "mqtt"]
    assert camera_spec(plain.cameras[0]).detect is None and camera_spec(plain.cameras[0]).detect_source is None


@pytest.mark.parametrize(("camera", "message"), [
    ({"motion": ["detector", "radar"]}, r"cameras\.0\.motion\.1: Input should be 'detector', 'http' or 'mqtt'"),
    ({"detector": {"threshold": 0}}, r"cameras\.0\.detector\.threshold: Input should be greater than or equal to 1"),
    ({"detector": {"fps": 60}}, r"cameras\.0\.detector\.fps: Input should be less than or equal to 30"),
    ({"detector": {"mask": ["0,0,1.5,0,1,1"]}}, r"cameras\.0\.detector\.mask: .*relative: every x and y within 0-1"),
    ({"detector": {"mask": ["0,0,a,b"]}}, r"cameras\.0\.detector\.mask: .*expected 'x1,y1,x2,y2,...' numbers"),
    ({"detector": {"mask": ["0,0,1,0,1"]}}, r"cameras\.0\.detector\.mask: .*odd count"),
    ({"detector": {"mask": [[[0, 0], [1, 1]]]}}, r"cameras\.0\.detector\.mask: .*at least 3 corners"),
    ({"detector": {"sensitivity": 3}}, r"cameras\.0\.detector\.sensitivity: Extra inputs are not permitted"),
])
def test_bad_detector_settings_are_named(camera: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config({"cameras": [{"name": "Yard", "source": "demo", **camera}]})


async def test_the_real_command_refuses_a_bad_detector_setting_and_runs_a_good_one(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("cameras:\n  - name: Yard\n    source: demo\n    profile: libx264\n    motion: [detector, http]\n"
                      "    detector: {threshold: 300}\n")
    out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config))
    expect_refusal(out, r"cameras\.0\.detector\.threshold: Input should be less than or equal to 255")
    config.write_text("cameras:\n  - name: Yard\n    source: demo\n    profile: libx264\n    motion: detector\n"
                      "    detector: {off_delay: 5, mask: ['0,0,0.2,0,0.2,0.2']}\n")
    out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config), until=STARTED)
    out.assert_clean()
    assert out.code == 0
    assert "Yard: motion detector on" in out.output


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789.,- e", max_size=40)), max_size=4))
def test_mask_strings_fuzzed_give_polygons_or_a_named_error(masks: list[str]) -> None:
    try:
        config = build_config({"cameras": [{"name": "Yard", "source": "demo", "detector": {"mask": masks}}]})
    except ConfigError as exc:
        assert str(exc).startswith("cameras.0.detector.mask")
        return
    params = detector_params(config.cameras[0].detector)
    assert all(len(p) >= 3 and all(0 <= c <= 1 for xy in p for c in xy) for p in params.mask)
