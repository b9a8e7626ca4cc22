"""Config to runtime: each runtime value is filled from the config field of the same name, and a
config field that no runtime value takes (and nothing else is said to read) is refused."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import BaseModel

from sidecar.app import mqtt_bridge
from sidecar.camera import Camera
from sidecar.camera.events import EventBus
from sidecar.config import build_config
from sidecar.config_runtime import runtime_value
from sidecar.triggers.mqtt import BrokerSettings
from sidecar.triggers.mqtt_presets import Binding


class _Model(BaseModel):
    name: str
    tags: list[str] = []
    extra: int = 0


@dataclasses.dataclass(frozen=True)
class _Value:
    name: str
    tags: tuple[str, ...] = ()
    label: str = "default"


def test_fields_are_copied_by_name_lists_become_tuples_and_derived_values_win() -> None:
    value = runtime_value(_Value, _Model(name="a", tags=["x", "y"]), uncopied=("extra",))
    assert value == _Value(name="a", tags=("x", "y"), label="default")
    assert runtime_value(_Value, _Model(name="a"), uncopied=("extra",), name="b", label="c") == _Value("b", (), "c")


def test_a_config_field_nothing_reads_is_refused() -> None:
    with pytest.raises(TypeError, match=r"_Model\.extra: no field of _Value takes it"):
        runtime_value(_Value, _Model(name="a"))
    with pytest.raises(TypeError, match="_Value has no field colour"):
        runtime_value(_Value, _Model(name="a"), uncopied=("extra",), colour="red")


def test_the_broker_and_each_camera_preset_become_the_bridge_settings() -> None:
    config = build_config({
        "mqtt": {"host": "127.0.0.1", "port": 1884, "user": "hksv", "password": "pw", "tls_ca_file": "/ca.pem",
                 "client_id": "me", "keepalive": 30, "topic_prefix": "ours/"},
        "cameras": [
            {"name": "Front Door", "source": "demo", "motion": ["mqtt"],
             "mqtt": {"preset": "frigate_events", "labels": ["person", "car"], "zones": ["porch"], "min_score": 0.5,
                      "topic_prefix": "nvr", "frigate_url": "http://127.0.0.1:5000"}},
            {"name": "Side", "source": "demo", "motion": ["mqtt"],
             "mqtt": {"preset": "generic", "motion_topic": "side/on", "json_field": "a.b"}},
            {"name": "Not Started", "source": "demo", "motion": ["mqtt"], "mqtt": {"preset": "blue_iris"}}]})
    cameras = [cast(Camera, SimpleNamespace(name=n, events=EventBus())) for n in ("Front Door", "Side")]
    bridge = mqtt_bridge(config, cameras)
    assert bridge is not None
    assert bridge.settings == BrokerSettings(host="127.0.0.1", port=1884, username="hksv", password="pw",
                                             tls_ca_file="/ca.pem", client_id="me", keepalive=30, topic_prefix="ours")
    bindings: Any = bridge.router.bindings
    assert list(bindings) == [
        Binding(camera="Front Door", preset="frigate_events", remote="front_door", prefix="nvr",
                labels=("person", "car"), zones=("porch",), min_score=0.5),
        Binding(camera="Side", preset="generic", remote="side", motion_topic="side/on", json_field="a.b")]
