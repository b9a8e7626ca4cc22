"""${VAR} secrets in config.yaml and the MQTT settings, through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.config import ConfigError, build_config
from sidecar.config_env import EnvError, expand_env

SECRET = "s3cr3t-Pa55"


def run(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sidecar", "--no-mdns", "--bind", "127.0.0.1", "--config",
                           str(config), "--state-dir", str(config.parent / "state")],
                          capture_output=True, text=True, timeout=60, cwd=config.parent,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("HKSV_T_")}, **env})


def test_expansion_rules() -> None:
    env = {"PW": SECRET, "EMPTY": ""}
    data = {"a": "rtsp://u:${PW}@cam/x", "b": ["${EMPTY}", "$${PW}", 3], "c": {"d": "{height} ${PW}"}}
    assert expand_env(data, env) == {"a": f"rtsp://u:{SECRET}@cam/x", "b": ["", "${PW}", 3],
                                     "c": {"d": f"{{height}} {SECRET}"}}
    with pytest.raises(EnvError, match=r"^cameras\.0\.source: environment variable NOPE is not set$"):
        expand_env({"cameras": [{"source": "${NOPE}"}]}, env)
    with pytest.raises(EnvError, match=r"not a valid environment variable name"):
        expand_env({"x": "${1-bad}"}, env)


def test_missing_variable_is_exit_2_naming_it_and_no_secret_printed(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("mqtt: {host: 127.0.0.1, user: hksv, password: '${HKSV_T_MQTT_PASSWORD}'}\n"
                      "cameras:\n  - name: Porch\n    source: 'rtsp://admin:${HKSV_T_CAM_PASSWORD}@127.0.0.1:9/x'\n"
                      "    mqtt: {preset: frigate_events}\n")
    r = run(config, {"HKSV_T_MQTT_PASSWORD": SECRET})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"hksv-sidecar: {config}: cameras.0.source: environment variable "
                                "HKSV_T_CAM_PASSWORD is not set")
    assert SECRET not in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_bad_mqtt_settings_are_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("mqtt: {host: 127.0.0.1, password: '${HKSV_T_PW}', port: 99999}\n"
                      "cameras: [{name: Porch, source: demo, mqtt: {preset: frigate_events}}]\n")
    r = run(config, {"HKSV_T_PW": SECRET})
    assert r.returncode == 2 and "mqtt.port: Input should be less than or equal to 65535" in r.stderr
    assert SECRET not in r.stderr and "Traceback" not in r.stderr
    config.write_text("cameras: [{name: Porch, source: demo, mqtt: {preset: frigate_motion}}]\n")
    r = run(config, {})
    assert r.returncode == 2 and "cameras.0.mqtt needs a broker" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("camera_mqtt, message", [
    ({"preset": "frigate_snapshots"}, "cameras.0.mqtt.preset: Input should be"),
    ({"preset": "generic"}, "the generic preset needs motion_topic"),
    ({"preset": "frigate_events", "motion_topic": "x"}, "belong to the generic preset"),
    ({"preset": "frigate_events", "camera": "front/#"}, "no MQTT wildcards"),
    ({"preset": "frigate_events", "labels": []}, "needs at least one label"),
    ({"preset": "frigate_reviews", "severities": ["urgent"]}, "cameras.0.mqtt.severities.0"),
    ({"preset": "frigate_events", "frigate_url": "127.0.0.1:5000"}, "must be an http:// or https:// URL"),
])
def test_camera_mqtt_validation(camera_mqtt: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        build_config({"mqtt": {"host": "h"}, "cameras": [{"name": "Porch", "source": "demo", "mqtt": camera_mqtt}]})


def test_frigate_url_gives_a_snapshot_url_for_both_api_generations() -> None:
    from sidecar.app import camera_spec

    config = build_config({"mqtt": {"host": "h"}, "cameras": [{"name": "Front Door", "source": "demo", "mqtt": {
        "preset": "frigate_reviews", "frigate_url": "http://127.0.0.1:5000"}}]})
    assert camera_spec(config.cameras[0]).snapshot_url == \
        "http://127.0.0.1:5000/api/front_door/latest.jpg?h={height}&height={height}"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab_$}{ 1\\")), max_size=30),
       st.dictionaries(st.sampled_from(["a", "b", "a_1", "_"]), st.text(max_size=5), max_size=3))
def test_fuzz_expansion_never_fails_otherwise(text: str, env: dict[str, str]) -> None:
    try:
        out = expand_env({"k": [text]}, env)
    except EnvError as exc:
        assert str(exc).startswith("k.0: ")
        return
    if "$" not in text:
        assert out == {"k": [text]}  # nothing else is touched
