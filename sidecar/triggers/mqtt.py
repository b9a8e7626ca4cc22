"""MQTT: motion in from Frigate, Blue Iris or any publisher; our state out for Home Assistant.

One broker client for all cameras (aiomqtt 2.x over paho). Incoming messages go through the
sans-IO :class:`~.mqtt_presets.MqttRouter`; its commands reach the cameras only through their
small trigger interface (``trigger_motion``, ``set_motion``, ``ring_doorbell``, source
``"mqtt"``). Outgoing, each camera's event bus is followed and published:

- ``<prefix>/available``: ``online`` / ``offline``, retained, with ``offline`` as the last will
  (so a crash or a pulled cable shows as offline too);
- ``<prefix>/<camera>/motion``: ``ON`` / ``OFF``, retained;
- ``<prefix>/<camera>/recording``: JSON, ``{"state": "opened", ...}`` when a hub opens a
  recording and ``{"state": "closed", "reason": ..., ...}`` when it ends;
- ``<prefix>/<camera>/doorbell``: ``pressed``.

``<camera>`` is the camera's slug (``Front Door`` -> ``front-door``). A lost broker is retried
with exponential backoff (1 s doubling to 30 s); the outage is logged once when it starts and
once when it ends, never per attempt. After a reconnect the subscriptions, ``online`` and each
camera's current motion state are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiomqtt

from ..camera.events import CameraEvent, DoorbellPressed, EventBus, MotionChanged, RecordingEnded, RecordingOpened
from .mqtt_presets import Binding, Command, Malformed, MqttRouter

__all__ = ["BrokerSettings", "MqttBridge", "MqttCamera"]

log = logging.getLogger(__name__)
OUTBOX_LIMIT = 256  # queued publications while the broker is away; the oldest are dropped first


class MqttCamera(Protocol):
    """What the bridge needs of a camera (``Camera`` has it)."""

    name: str
    events: EventBus

    def trigger_motion(self, source: str = ...) -> None: ...
    def set_motion(self, active: bool, *, auto_reset_s: float | None = None, source: str = ...) -> None: ...
    def ring_doorbell(self, source: str = ...) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    tls_insecure: bool = False  # accept any certificate (self-signed broker without a CA file)
    client_id: str | None = None
    keepalive: int = 60
    topic_prefix: str = "hksv"
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0

    def __repr__(self) -> str:  # never show the password, even in a debug dump
        return f"BrokerSettings(host={self.host!r}, port={self.port}, username={self.username!r}, tls={self.tls})"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "camera"


class MqttBridge:
    """The broker connection: subscriptions in, camera events out. ``start``/``stop`` own its task."""

    def __init__(self, settings: BrokerSettings, cameras: Sequence[MqttCamera], bindings: Sequence[Binding]) -> None:
        self.settings = settings
        self.router = MqttRouter(bindings)
        self._cameras = {c.name: c for c in cameras}
        self._motion = {c.name: False for c in cameras}
        self._outbox: asyncio.Queue[tuple[str, str, bool]] = asyncio.Queue(OUTBOX_LIMIT)
        self._unsubscribe = [c.events.subscribe(self._on_event) for c in cameras]
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects so far (tests and the status page)
        self.failed_attempts = 0  # connects that failed (or sessions that broke) so far
        self.changed = asyncio.Event()  # set at every connect and every failed attempt (for waiters)
        self.malformed = 0  # payloads that could not be understood

    @property
    def availability_topic(self) -> str:
        return f"{self.settings.topic_prefix}/available"

    # -- camera events -> outbox --------------------------------------------------------------------
    def _on_event(self, event: CameraEvent) -> None:
        base = f"{self.settings.topic_prefix}/{slug(event.camera)}"
        if isinstance(event, MotionChanged):
            self._motion[event.camera] = event.active
            self._queue(f"{base}/motion", "ON" if event.active else "OFF", retain=True)
        elif isinstance(event, RecordingOpened):
            self._queue(f"{base}/recording", json.dumps({"state": "opened", "stream_id": event.stream_id,
                                                         "selection": event.selection, "at": event.at}))
        elif isinstance(event, RecordingEnded):
            self._queue(f"{base}/recording", json.dumps({
                "state": "closed", "stream_id": event.stream_id, "reason": event.reason, "closed_by": event.closed_by,
                "detail": event.detail, "duration_s": round(event.duration_s, 3), "bytes_sent": event.bytes_sent,
                "fragments_sent": event.fragments_sent, "at": event.at}))
        elif isinstance(event, DoorbellPressed):
            self._queue(f"{base}/doorbell", "pressed")

    def _queue(self, topic: str, payload: str, *, retain: bool = False) -> None:
        if self._outbox.full():  # the broker is away for long: keep the newest facts
            self._outbox.get_nowait()
        self._outbox.put_nowait((topic, payload, retain))

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    async def stop(self) -> None:
        self._stopping = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        tls: ssl.SSLContext | None = None
        if s.tls:
            tls = ssl.create_default_context(cafile=s.tls_ca_file)
            if s.tls_insecure:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        return aiomqtt.Client(
            s.host, s.port, username=s.username, password=s.password, identifier=s.client_id,
            keepalive=s.keepalive, tls_context=tls, timeout=10,
            will=aiomqtt.Will(self.availability_topic, "offline", qos=1, retain=True),
            logger=logging.getLogger("sidecar.triggers.mqtt.client"),
        )

    async def _run(self) -> None:
        s = self.settings
        delay = s.backoff_initial_s
        outage_since: float | None = None
        while not self._stopping:
            try:
                async with self._client() as client:
                    if outage_since is not None:
                        log.info("MQTT: connected to %s:%d again after %.0f s", s.host, s.port,
                                 time.monotonic() - outage_since)
                    else:
                        log.info("MQTT: connected to %s:%d", s.host, s.port)
                    outage_since = None
                    delay = s.backoff_initial_s
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self.failed_attempts += 1
                self.changed.set()
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning("MQTT: broker %s:%d unreachable (%s); retrying with backoff up to %.0f s "
                                "(logged again when it is back)", s.host, s.port, exc, s.backoff_max_s)
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.backoff_max_s)

    async def _session(self, client: aiomqtt.Client) -> None:
        for topic in self.router.subscriptions():
            await client.subscribe(topic, qos=1)
        await client.publish(self.availability_topic, "online", qos=1, retain=True)
        base = self.settings.topic_prefix
        for name, active in self._motion.items():
            await client.publish(f"{base}/{slug(name)}/motion", "ON" if active else "OFF", qos=1, retain=True)
        self.connections += 1
        self.connected.set()
        self.changed.set()
        sender = asyncio.get_running_loop().create_task(self._send(client), name="mqtt-send")
        try:
            async for message in client.messages:
                self._dispatch(str(message.topic), message.payload)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self.connected.clear()
            if self._stopping:  # a clean goodbye; the will covers every other way of leaving
                with contextlib.suppress(aiomqtt.MqttError):
                    await asyncio.wait_for(client.publish(self.availability_topic, "offline", qos=1, retain=True), 2)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload, retain = await self._outbox.get()
            try:
                await client.publish(topic, payload, qos=1 if retain else 0, retain=retain)
            except aiomqtt.MqttError:
                self._queue(topic, payload, retain=retain)  # sent again after the reconnect
                return

    # -- incoming -------------------------------------------------------------------------------------
    def _dispatch(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else str(payload if payload is not None else "").encode()
        try:
            items = self.router.feed(topic, raw)
        except Exception:  # a router bug must not end the broker session
            log.exception("MQTT: could not route a message on %s", topic)
            return
        for item in items:
            if isinstance(item, Malformed):
                self.malformed += 1
                level = logging.WARNING if item.first else logging.DEBUG
                log.log(level, "MQTT: ignored a malformed payload on %s: %s%s", item.topic, item.problem,
                        " (further ones on this topic are logged at debug level)" if item.first else "")
            else:
                self._apply(item)

    def _apply(self, command: Command) -> None:
        camera = self._cameras.get(command.camera)
        if camera is None:
            return
        if command.action == "motion":
            camera.trigger_motion(source="mqtt")
        elif command.action == "clear":
            if not self.router.active(command.camera):  # another preset may still hold it up
                camera.set_motion(False, source="mqtt")
        else:
            camera.ring_doorbell(source="mqtt")
