"""MQTT triggers against a real mosquitto: each preset reaches an aiohomekit hub as MotionDetected,
filtered payloads raise nothing, a broker restart is survived, our own topics are published."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohomekit.controller.ip import IpPairing

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.events import CameraEvent, MotionChanged, RecordingEnded, RecordingOpened
from sidecar.triggers.mqtt import BrokerSettings, MqttBridge
from sidecar.triggers.mqtt_presets import Binding
from tests.hub.characteristics import MOTION_DETECTED
from tests.hub.database import iids_by_type
from tests.support.hap_client import aio_pair
from tests.support.mosquitto import Mosquitto
from tests.support.nvr_payloads import blue_iris, frigate_event, frigate_review

PIN = "031-45-154"
MOTION = MOTION_DETECTED
pytestmark = pytest.mark.usefixtures("executor_joined")


@dataclass
class Hub:
    """An aiohomekit controller subscribed to the camera's MotionDetected."""

    pairing: IpPairing
    values: list[bool] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_value(self, timeout: float = 15) -> bool:
        await asyncio.wait_for(self.changed.wait(), timeout)
        self.changed.clear()
        return self.values[-1]


@dataclass
class BrokerRig:
    camera: Camera
    hub: Hub
    motions: list[bool]  # every MotionChanged the camera emitted, in order

    def bridge(self, broker: Mosquitto, binding: Binding, **settings: Any) -> MqttBridge:
        return MqttBridge(BrokerSettings(host="127.0.0.1", port=broker.port, backoff_initial_s=0.1,
                                         backoff_max_s=0.5, **settings), [self.camera], [binding])


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[BrokerRig]:
    camera = Camera(CameraSpec(name="Front Door", source="demo", profile="libx264", setup_code=PIN,
                               motion_timeout_s=60), tmp_path, host="127.0.0.1", port=0, advertiser=None)
    motions: list[bool] = []

    def follow(ev: CameraEvent) -> None:
        if isinstance(ev, MotionChanged):
            motions.append(ev.active)

    camera.events.subscribe(follow)
    await camera.start()
    pairing = await aio_pair(camera.server.port, PIN)
    try:
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        hub = Hub(pairing)
        key = (1, ids[MOTION])

        def on_event(ev: dict[tuple[int, int], dict[str, Any]]) -> None:
            if key in ev:
                hub.values.append(bool(ev[key]["value"]))
                hub.changed.set()

        pairing.dispatcher_connect(on_event)
        await pairing.subscribe([key])
        yield BrokerRig(camera, hub, motions)
    finally:
        await pairing.shutdown()
        await camera.stop()


@pytest.fixture
async def publisher(broker: Mosquitto) -> AsyncIterator[Callable[[str, bytes], Any]]:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="scripted-nvr") as client:
        async def publish(topic: str, payload: bytes) -> None:
            await client.publish(topic, payload, qos=1)

        yield publish


# Per preset: (binding, payloads that must raise nothing, payloads that raise motion, that clear it).
CASES: dict[str, tuple[Binding, list[tuple[str, bytes]], list[tuple[str, bytes]], list[tuple[str, bytes]]]] = {
    "frigate_motion (0.13-0.16)": (
        Binding(camera="Front Door", preset="frigate_motion", remote="front_door"),
        [("frigate/back_yard/motion", b"ON"), ("frigate/front_door/motion", b"sometimes")],
        [("frigate/front_door/motion", b"ON")],
        [("frigate/front_door/motion", b"OFF")]),
    "frigate_events 0.13": (
        Binding(camera="Front Door", preset="frigate_events", remote="front_door", zones=("porch",)),
        [("frigate/events", frigate_event("0.13", "new", label="car", zones=["porch"])),
         ("frigate/events", frigate_event("0.13", "new", zones=["street"])),
         ("frigate/events", frigate_event("0.13", "new", zones=["porch"], stationary=True))],
        [("frigate/events", frigate_event("0.13", "new", zones=["porch"]))],
        [("frigate/events", frigate_event("0.13", "end", zones=["porch"]))]),
    "frigate_events 0.16": (
        Binding(camera="Front Door", preset="frigate_events", remote="front_door", zones=("porch",), min_score=0.7),
        [("frigate/events", frigate_event("0.16", "new", label="dog", zones=["porch"])),
         ("frigate/events", frigate_event("0.16", "update", zones=["driveway"])),
         ("frigate/events", frigate_event("0.16", "update", zones=["porch"], score=0.4)),
         ("frigate/events", frigate_event("0.16", "update", zones=["porch"], stationary=True)),
         ("frigate/events", b"{not json")],
        [("frigate/events", frigate_event("0.16", "update", zones=["porch"]))],
        [("frigate/events", frigate_event("0.16", "end", zones=["porch"]))]),
    "frigate_reviews 0.14": (
        Binding(camera="Front Door", preset="frigate_reviews", remote="front_door"),
        [("frigate/reviews", frigate_review("0.14", "new", severity="detection")),
         ("frigate/reviews", frigate_review("0.14", "new", objects=["car"]))],
        [("frigate/reviews", frigate_review("0.14", "update"))],
        [("frigate/reviews", frigate_review("0.14", "end"))]),
    "blue_iris (BI5 alert action)": (
        Binding(camera="Front Door", preset="blue_iris", remote="FrontDoor"),
        [("BlueIris/FrontDoor/Status", blue_iris("OFF", "Connectivity")),
         ("BlueIris/Garage/Status", blue_iris("ON"))],
        [("BlueIris/FrontDoor/Status", blue_iris("ON"))],
        [("BlueIris/FrontDoor/Status", blue_iris("OFF"))]),
    "generic (homebridge-camera-ffmpeg)": (
        Binding(camera="Front Door", preset="generic", motion_topic="homebridge/motion",
                reset_topic="homebridge/motion/reset"),
        [("homebridge/motion", b"Back Door")],
        [("homebridge/motion", b"Front Door")],
        [("homebridge/motion/reset", b"Front Door")]),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_preset_reaches_the_hub_and_filters_hold(case: str, rig: BrokerRig, broker: Mosquitto,
                                                       publisher: Callable[[str, bytes], Any]) -> None:
    binding, quiet, raise_, clear = CASES[case]
    bridge = rig.bridge(broker, binding)
    await bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 15)
        for topic, payload in quiet + raise_:  # delivered in order: the filtered ones come first
            await publisher(topic, payload)
        assert await rig.hub.next_value() is True
        assert rig.motions == [True], "a filtered payload raised motion"
        for topic, payload in clear:
            await publisher(topic, payload)
        assert await rig.hub.next_value() is False
        assert rig.motions == [True, False]
        assert rig.hub.values == [True, False]
    finally:
        await bridge.stop()


async def test_broker_restart_is_logged_once_and_motion_still_works(
        rig: BrokerRig, broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.triggers.mqtt")
    bridge = rig.bridge(broker, Binding(camera="Front Door", preset="frigate_motion", remote="front_door"))
    await bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 15)
        await broker.stop()
        async with asyncio.timeout(20):  # several failed attempts while it is away
            while bridge.failed_attempts < 4:
                bridge.changed.clear()
                await bridge.changed.wait()
        await broker.start()
        async with asyncio.timeout(20):
            while bridge.connections < 2:
                bridge.changed.clear()
                await bridge.changed.wait()
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish("frigate/front_door/motion", b"ON", qos=1)
            assert await rig.hub.next_value() is True
            await client.publish("frigate/front_door/motion", b"OFF", qos=1)
            assert await rig.hub.next_value() is False
    finally:
        await bridge.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "sidecar.triggers.mqtt"]
    assert sum("unreachable" in m for m in messages) == 1, messages
    assert sum("connected to" in m and "again after" in m for m in messages) == 1, messages


async def test_our_topics_are_published(rig: BrokerRig, broker: Mosquitto) -> None:
    seen: list[tuple[str, bytes, bool]] = []
    got = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="home-assistant") as ha:
        await ha.subscribe("hksv/#", qos=1)

        async def listen() -> None:
            async for m in ha.messages:
                seen.append((str(m.topic), bytes(m.payload), m.retain))  # type: ignore[arg-type]
                got.set()

        listener = asyncio.ensure_future(listen())

        async def wait_for(topic: str, payload: bytes) -> None:
            async with asyncio.timeout(15):
                while not any(t == topic and p == payload for t, p, _ in seen):
                    got.clear()
                    await got.wait()

        bridge = rig.bridge(broker, Binding(camera="Front Door", preset="frigate_motion", remote="front_door"))
        await bridge.start()
        try:
            await wait_for("hksv/available", b"online")
            await wait_for("hksv/front-door/motion", b"OFF")  # the state at connect
            rig.camera.trigger_motion(source="mqtt")
            await wait_for("hksv/front-door/motion", b"ON")
            rig.camera.events.emit(RecordingOpened(camera="Front Door", stream_id=7, selection="640x360@15"))
            rig.camera.events.emit(RecordingEnded(camera="Front Door", stream_id=7, reason="NORMAL", reason_code=0,
                                                  closed_by="hub", duration_s=12.5, bytes_sent=1000))
            async with asyncio.timeout(15):
                while len([s for s in seen if s[0] == "hksv/front-door/recording"]) < 2:
                    got.clear()
                    await got.wait()
        finally:
            await bridge.stop()
        await wait_for("hksv/available", b"offline")  # a clean stop says goodbye itself
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    recordings = [json.loads(p) for t, p, _ in seen if t == "hksv/front-door/recording"]
    assert recordings[0]["state"] == "opened" and recordings[0]["stream_id"] == 7
    assert recordings[1]["state"] == "closed" and recordings[1]["reason"] == "NORMAL"
    assert recordings[1]["closed_by"] == "hub" and recordings[1]["duration_s"] == 12.5
    motion = [(p, r) for t, p, r in seen if t == "hksv/front-door/motion"]
    assert motion == [(b"OFF", False), (b"ON", False)]  # live deliveries; retained for later subscribers
    async with aiomqtt.Client("127.0.0.1", broker.port) as late:
        await late.subscribe("hksv/front-door/motion")
        async with asyncio.timeout(10):
            async for m in late.messages:
                assert (m.payload, m.retain) == (b"ON", True)
                break
