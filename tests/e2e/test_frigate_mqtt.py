"""The Frigate path end to end: the sidecar process with an MQTT preset, a real mosquitto, a scripted
"Frigate" publishing a person walking through a zone, and the hub simulator recording the clip.
Also: the availability topic and its last will, seen by a Home Assistant-like subscriber."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.hub.characteristics import MOTION_DETECTED
from tests.hub.hap_setup import DeriveCapture
from tests.hub.recording import enable_recording, paired, record, recording_selection, set_recording_audio
from tests.support.clips import decodes_cleanly, first_frame_is_key, probe
from tests.support.mosquitto import Mosquitto
from tests.support.nvr_payloads import frigate_event

PIN = "031-45-154"
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("executor_joined")]


def write_config(tmp_path: Path, port: int, preset: dict[str, Any]) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": "hksv-test", "keepalive": 5},
        "cameras": [{"name": "Demo Camera", "source": "demo", "profile": "libx264", "setup_code": PIN,
                     "motion_timeout_s": 120, "mqtt": preset}],
    }))
    return config


class Watcher:
    """A Home Assistant-like subscriber to ``hksv/#``."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[tuple[str, bytes]] = []
        self._new = asyncio.Event()
        self._task = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        async for m in self.client.messages:
            self.seen.append((str(m.topic), bytes(m.payload)))  # type: ignore[arg-type]
            self._new.set()

    async def wait_for(self, topic: str, payload: bytes | None = None, *, after: int = 0, timeout: float = 30) -> int:
        """Index of the first matching message at or after ``after``."""
        async with asyncio.timeout(timeout):
            while True:
                for i, (t, p) in enumerate(self.seen[after:], after):
                    if t == topic and (payload is None or p == payload):
                        return i
                self._new.clear()
                await self._new.wait()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_person_walking_through_the_zone_is_recorded(sidecar: Any, broker: Mosquitto, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    capture = DeriveCapture.install(monkeypatch)
    config = write_config(tmp_path, broker.port, {"preset": "frigate_events", "camera": "driveway",
                                                  "labels": ["person"], "zones": ["porch"], "min_score": 0.7})
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="home-assistant") as ha, \
            aiomqtt.Client("127.0.0.1", broker.port, identifier="frigate") as frigate:
        await ha.subscribe("hksv/#", qos=1)
        watch = Watcher(ha)
        proc = await sidecar("--config", str(config))
        try:
            port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
            await watch.wait_for("hksv/available", b"online")
            async with paired(port, PIN) as (pairing, ids):
                selection = recording_selection()
                await set_recording_audio(pairing, ids, True)
                await enable_recording(pairing, ids, selection)
                await proc.wait_for_line(r"prebuffer ready", timeout=40)

                motion_key = (1, ids[MOTION_DETECTED])
                values: list[bool] = []
                changed = asyncio.Event()

                def on_event(ev: dict[tuple[int, int], dict[str, Any]]) -> None:
                    if motion_key in ev:
                        values.append(bool(ev[motion_key]["value"]))
                        changed.set()

                pairing.dispatcher_connect(on_event)
                await pairing.subscribe([motion_key])

                async def publish(payload: bytes) -> None:
                    await frigate.publish("frigate/events", payload, qos=1)

                # Frigate 0.14 shapes: a person appears on the street, a car parks, the person walks
                # onto the porch (the zone), lingers, and leaves.
                mark = len(watch.seen)
                await publish(frigate_event("0.14", "new", camera="driveway", zones=[]))
                await publish(frigate_event("0.14", "new", camera="driveway", label="car", zones=["porch"]))
                await publish(frigate_event("0.14", "new", camera="garden", zones=["porch"]))
                await publish(frigate_event("0.14", "update", camera="driveway", zones=["porch"]))
                await asyncio.wait_for(changed.wait(), 20)
                assert values == [True]
                on_at = await watch.wait_for("hksv/demo-camera/motion", b"ON", after=mark)
                assert not any(t == "hksv/demo-camera/motion" and p == b"ON" for t, p in watch.seen[mark:on_at])
                await publish(frigate_event("0.14", "update", camera="driveway", zones=["porch", "path"]))

                frags, path = await record(pairing, capture, ids, 1, live_fragments=1, tmp=tmp_path)
                assert frags[0].data_type == "mediaInitialization"
                streams = {s["codec_type"]: s for s in (await probe(path))["streams"]}
                assert streams["video"]["codec_name"] == "h264" and streams["video"]["width"] == 640
                assert await decodes_cleanly(path)
                assert await first_frame_is_key(path)

                changed.clear()
                await publish(frigate_event("0.14", "end", camera="driveway", zones=["path"]))
                await asyncio.wait_for(changed.wait(), 20)
                assert values == [True, False]
                opened = await watch.wait_for("hksv/demo-camera/recording", after=mark)
                closed = await watch.wait_for("hksv/demo-camera/recording", after=opened + 1)
                assert json.loads(watch.seen[opened][1])["state"] == "opened"
                ended = json.loads(watch.seen[closed][1])
                assert ended["state"] == "closed" and ended["reason"] == "NORMAL" and ended["closed_by"] == "hub"
                await watch.wait_for("hksv/demo-camera/motion", b"OFF", after=on_at)
            assert await proc.terminate() == 0
            await watch.wait_for("hksv/available", b"offline")
            assert not any("Traceback" in line for line in proc.lines)
        finally:
            await watch.close()


async def test_last_will_marks_a_killed_sidecar_offline(sidecar: Any, broker: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, broker.port, {"preset": "frigate_motion", "camera": "driveway"})
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="home-assistant") as ha:
        await ha.subscribe("hksv/available", qos=1)
        watch = Watcher(ha)
        try:
            proc = await sidecar("--config", str(config))
            online = await watch.wait_for("hksv/available", b"online")
            proc.proc.send_signal(signal.SIGKILL)  # no goodbye: only the broker's last will can say it
            await proc.proc.wait()
            await watch.wait_for("hksv/available", b"offline", after=online + 1, timeout=20)
            assert [p for _, p in watch.seen] == [b"online", b"offline"]
        finally:
            await watch.close()
