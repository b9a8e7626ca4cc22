"""The presets in memory: every documented Frigate / Blue Iris shape, filters, bad payloads, fuzz."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.triggers.mqtt_presets import (
    Binding,
    Command,
    Malformed,
    MqttRouter,
    frigate_snapshot_url,
    topic_matches,
)
from tests.support.nvr_payloads import EVENT_SHAPES, blue_iris, frigate_event, frigate_review

CAM = "Front Door"
ON, OFF = Command(CAM, "motion"), Command(CAM, "clear")


def events(**kw: object) -> MqttRouter:
    return MqttRouter([Binding(camera=CAM, preset="frigate_events", remote="front_door", **kw)])  # type: ignore[arg-type]


@pytest.mark.parametrize("version", sorted(EVENT_SHAPES))
def test_frigate_events_person_in_zone_raises_and_end_clears(version: str) -> None:
    r = events(zones=("porch",), min_score=0.7)
    assert r.subscriptions() == ["frigate/events"]
    assert r.feed("frigate/events", frigate_event(version, "new", zones=["porch"])) == [ON]
    assert r.feed("frigate/events", frigate_event(version, "update", zones=["porch", "yard"])) == [ON]
    assert r.feed("frigate/events", frigate_event(version, "end", zones=["porch"])) == [OFF]
    assert r.feed("frigate/events", frigate_event(version, "end")) == []  # already released


@pytest.mark.parametrize("version", sorted(EVENT_SHAPES))
def test_frigate_events_that_raise_nothing(version: str) -> None:
    r = events(zones=("porch",), min_score=0.7)
    for payload in (frigate_event(version, "new", label="car", zones=["porch"]),
                    frigate_event(version, "new", zones=["street"]),
                    frigate_event(version, "new", zones=[]),
                    frigate_event(version, "new", zones=["porch"], stationary=True),
                    frigate_event(version, "new", zones=["porch"], score=0.5),
                    frigate_event(version, "new", camera="back_yard", zones=["porch"])):
        assert r.feed("frigate/events", payload) == []
    assert r.feed("frigate/events", frigate_event(version, "end", zones=["porch"])) == []


def test_an_object_that_becomes_stationary_releases_motion() -> None:
    r = events()
    assert r.feed("frigate/events", frigate_event("0.16", "new")) == [ON]
    assert r.feed("frigate/events", frigate_event("0.16", "update", stationary=True)) == [OFF]


@pytest.mark.parametrize("version", ["0.14", "0.15", "0.16"])
def test_frigate_reviews_alert_and_optional_detection(version: str) -> None:
    r = MqttRouter([Binding(camera=CAM, preset="frigate_reviews", remote="front_door")])
    assert r.subscriptions() == ["frigate/reviews"]
    assert r.feed("frigate/reviews", frigate_review(version, "new", severity="detection")) == []
    assert r.feed("frigate/reviews", frigate_review(version, "update", severity="alert")) == [ON]
    assert r.feed("frigate/reviews", frigate_review(version, "end")) == [OFF]
    assert r.feed("frigate/reviews", frigate_review(version, "new", objects=["car"])) == []
    both = MqttRouter([Binding(camera=CAM, preset="frigate_reviews", remote="front_door",
                               severities=("alert", "detection"))])
    assert both.feed("frigate/reviews", frigate_review(version, "new", severity="detection")) == [ON]
    assert both.feed("frigate/reviews", frigate_review(version, "new", objects=["person-verified"])) == [ON]


def test_frigate_motion_and_prefix() -> None:
    r = MqttRouter([Binding(camera=CAM, preset="frigate_motion", remote="front_door", prefix="nvr")])
    assert r.subscriptions() == ["nvr/front_door/motion"]
    assert r.feed("nvr/front_door/motion", b"ON") == [ON]
    assert r.feed("nvr/front_door/motion", b"OFF") == [OFF]
    assert r.feed("frigate/front_door/motion", b"ON") == []
    (bad,) = r.feed("nvr/front_door/motion", b"maybe")
    assert isinstance(bad, Malformed) and bad.first and "ON or OFF" in bad.problem
    (again,) = r.feed("nvr/front_door/motion", b"\xff\xfe")
    assert isinstance(again, Malformed) and not again.first


def test_blue_iris_alert_reset_and_watchdog() -> None:
    r = MqttRouter([Binding(camera=CAM, preset="blue_iris", remote="FrontDoor")])
    assert r.subscriptions() == ["BlueIris/FrontDoor/Status"]
    t = "BlueIris/FrontDoor/Status"
    assert r.feed(t, blue_iris("ON")) == [ON]
    assert r.feed(t, blue_iris("OFF")) == [OFF]
    assert r.feed(t, blue_iris("ON", "EXTERNAL")) == [ON]
    assert r.feed(t, blue_iris("OFF", "Connectivity")) == []  # loss of signal is not motion
    assert r.feed(t, blue_iris("ON", "WATCHDOG")) == []
    assert r.feed(t, b"ON") == [ON]  # an action set that sends a bare ON/OFF
    assert isinstance(r.feed(t, b'{"type": "MOTION"}')[0], Malformed)
    assert isinstance(r.feed(t, b'{"type": "MOTION", "trigger": 1}')[0], Malformed)


def test_generic_is_homebridge_camera_ffmpeg_compatible() -> None:
    r = MqttRouter([Binding(camera=CAM, preset="generic", motion_topic="homebridge/motion",
                            reset_topic="homebridge/motion/reset", doorbell_topic="homebridge/doorbell")])
    assert r.subscriptions() == ["homebridge/doorbell", "homebridge/motion", "homebridge/motion/reset"]
    assert r.feed("homebridge/motion", b"Front Door") == [ON]  # the payload defaults to the camera name
    assert r.feed("homebridge/motion", b"Back Door") == []
    assert r.feed("homebridge/motion/reset", b"Front Door") == [OFF]
    assert r.feed("homebridge/doorbell", b"Front Door") == [Command(CAM, "doorbell")]
    one_topic = MqttRouter([Binding(camera=CAM, preset="generic", motion_topic="home/camera", motion_message="ON",
                                    reset_topic="home/camera", reset_message="OFF")])
    assert one_topic.subscriptions() == ["home/camera"]
    assert one_topic.feed("home/camera", b"ON") == [ON]
    assert one_topic.feed("home/camera", b"OFF") == [OFF]
    js = MqttRouter([Binding(camera=CAM, preset="generic", motion_topic="zigbee/+/pir", motion_message="true",
                             reset_topic="zigbee/+/pir", reset_message="false", json_field="state.occupancy")])
    assert js.feed("zigbee/porch/pir", json.dumps({"state": {"occupancy": True}}).encode()) == [ON]
    assert js.feed("zigbee/porch/pir", json.dumps({"state": {"occupancy": False}}).encode()) == [OFF]
    assert js.feed("zigbee/porch/pir", b"{}") == []
    assert isinstance(js.feed("zigbee/porch/pir", b"[1")[0], Malformed)


def test_shared_topic_serves_many_cameras_and_reports_a_bad_payload_once() -> None:
    r = MqttRouter([Binding(camera="A", preset="frigate_events", remote="a"),
                    Binding(camera="B", preset="frigate_events", remote="b")])
    assert r.subscriptions() == ["frigate/events"]
    assert r.feed("frigate/events", frigate_event("0.15", "new", camera="b")) == [Command("B", "motion")]
    assert r.active("B") and not r.active("A")
    out = r.feed("frigate/events", b'{"type": "new", "after": {"camera": 3}}')
    assert len(out) == 1 and isinstance(out[0], Malformed) and "after.camera" in out[0].problem


@pytest.mark.parametrize("payload, problem", [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"type": "begin", "after": {}}', "not new, update or end"),
    (b'{"type": "new"}', "payload.after is missing"),
    (b'{"type": "new", "after": {"camera": "front_door", "id": "x", "label": "person", "score": "high"}}',
     "after.score has the wrong type"),
    (b'{"type": "new", "after": {"camera": "front_door", "id": "x", "label": "person", "top_score": true}}',
     "after.top_score has the wrong type"),
    (b'{"type": "new", "after": {"camera": "front_door", "id": "x", "label": "person", "current_zones": [1]}}',
     "after.current_zones must be a list of strings"),
    (b'{"type": "new", "after": {"camera": "front_door", "id": "x", "label": "person", "stationary": "no"}}',
     "after.stationary has the wrong type"),
    (b"x" * 70_000, "over 65536"),
])
def test_malformed_event_payloads_are_named(payload: bytes, problem: str) -> None:
    (item,) = events().feed("frigate/events", payload)
    assert isinstance(item, Malformed) and problem in item.problem


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "after", "camera", "id", "label", "score", "top_score", "current_zones",
                         "stationary", "severity", "data", "objects", "zones", "trigger"]), inner, max_size=6),
    max_leaves=20).map(lambda v: json.dumps(v).encode()))
def test_fuzz_no_payload_raises(payload: bytes) -> None:
    r = MqttRouter([Binding(camera=CAM, preset=p, remote="front_door", motion_topic="t", reset_topic="t",
                            json_field="a.b" if p == "generic" else None)
                    for p in ("frigate_events", "frigate_reviews", "frigate_motion", "blue_iris", "generic")])
    for topic in ("frigate/events", "frigate/reviews", "frigate/front_door/motion", "BlueIris/front_door/Status", "t"):
        for item in r.feed(topic, payload):
            assert isinstance(item, Command | Malformed)


def test_topic_matching_and_snapshot_url() -> None:
    assert topic_matches("a/+/c", "a/b/c") and not topic_matches("a/+/c", "a/b/d")
    assert topic_matches("a/#", "a/b/c") and not topic_matches("a/b", "a/b/c")
    url = frigate_snapshot_url("http://127.0.0.1:5000/", "front_door")
    assert url == "http://127.0.0.1:5000/api/front_door/latest.jpg?h={height}&height={height}"
