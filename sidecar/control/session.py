"""One parent's session: commands in, the same :class:`~sidecar.app.App` the CLI builds, events out.

The session owns no IO: it is handed parsed commands (protocol.py) and a ``send`` function
for encoded event lines, so the stdin/stdout adapter, the Node IPC adapter and the tests all
drive the same object. Every command gets exactly one final reply, ``ok``/``pong``/``bye`` or
an ``error``, carrying the command's ``seq``; ``status`` sends its ``status`` events first.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..app import App
from ..camera import Camera, CameraEvent
from ..camera.events import PairingChanged
from ..config import Config, ConfigError, build_config
from .events import wire_events
from .protocol import PROTOCOL_VERSION, BadLine, Command, Seq, encode

__all__ = ["ControlSession"]

log = logging.getLogger(__name__)


class _Discard(io.StringIO):
    """Where App's human-readable pairing text goes: the parent gets it as status events."""

    def write(self, s: str) -> int:
        return len(s)


class _Refused(Exception):
    """A command that cannot be done; its message goes to the parent as an ``error`` event."""


class ControlSession:
    """Drives one :class:`App` for a parent process.

    ``overrides`` are settings from the command line (``--state-dir``, ``--bind``, ...); they win
    over the parent's config, as flags win over the YAML file. ``on_config`` is told about each
    accepted config (the log setup uses it for the level and the camera names).
    """

    def __init__(self, send: Callable[[bytes], None], *, overrides: dict[str, Any] | None = None,
                 on_config: Callable[[Config], None] | None = None,
                 validate: Callable[[Config], None] | None = None) -> None:
        self._send = send
        self.overrides = dict(overrides or {})
        self.on_config = on_config
        self.validate = validate  # extra checks that raise ConfigError (the CLI's profile check)
        self.config: Config | None = None
        self.app: App | None = None
        self.stopping = asyncio.Event()
        self._unsubscribe: list[Callable[[], None]] = []
        self.shutdown_seq: Seq | None = None  # ``bye`` answers the shutdown command
        self._paired: dict[str, bool] = {}  # what the last status said, per camera
        self._unpairing: str | None = None  # the camera an ``unpair`` is removing pairings of

    # -- output -------------------------------------------------------------------------------------
    def emit(self, event: str, data: dict[str, Any] | None = None, seq: Seq | None = None) -> None:
        self._send(encode(event, data, seq))

    def error(self, message: str, seq: Seq | None = None) -> None:
        data: dict[str, Any] = {"message": message}
        if seq is not None:
            data["seq"] = seq
        self.emit("error", data, seq)

    def ready(self) -> None:
        self.emit("ready", {"version": __version__, "pid": os.getpid(), "protocol": PROTOCOL_VERSION})

    # -- input --------------------------------------------------------------------------------------
    async def handle(self, item: Command | BadLine) -> None:
        if isinstance(item, BadLine):
            self.error(item.message, item.seq)
            return
        handler = getattr(self, f"_cmd_{item.name}")
        try:
            await handler(item)
        except _Refused as exc:
            self.error(str(exc), item.seq)

    async def close(self) -> None:
        """Stop the cameras (bounded by App.stop's 5 s) and report each one stopped."""
        app, self.app = self.app, None
        if app is not None:
            await app.stop()
            for camera in app.cameras:
                self.emit("camera", {"camera": camera.name, "state": "stopped"})
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # -- commands -----------------------------------------------------------------------------------
    async def _cmd_config(self, cmd: Command) -> None:
        if self.app is not None:
            raise _Refused("config: already started; to change the configuration, shut down and start again")
        try:
            config = build_config({**cmd.data, **self.overrides})
            if self.validate is not None:
                self.validate(config)
        except ConfigError as exc:
            raise _Refused(f"config: {exc}") from None
        if not config.cameras:
            raise _Refused("config: no cameras: add at least one camera to \"cameras\"")
        self.config = config
        if self.on_config is not None:
            self.on_config(config)
        self.emit("ok", {"command": "config", "cameras": [c.name for c in config.cameras]}, cmd.seq)

    async def _cmd_start(self, cmd: Command) -> None:
        if self.config is None:
            raise _Refused("start: send a config first")
        if self.app is not None:
            raise _Refused("start: already started")
        app = App(self.config, out=_Discard())  # the QR code goes in status events, not stderr
        app.on_camera = self._attach
        self.app = app
        try:
            await app.start()
        except (RuntimeError, ConfigError) as exc:
            for name, why in app.failed.items():
                self.emit("camera", {"camera": name, "state": "error", "error": why})
            await self.close()
            raise _Refused(f"start: {exc}") from None
        for name, why in app.failed.items():
            self.emit("camera", {"camera": name, "state": "error", "error": why})
        for camera in app.cameras:
            self.emit("camera", {"camera": camera.name, "state": "ready"})
            self._send_status(camera)
        self.emit("ok", {"command": "start", "cameras": [c.name for c in app.cameras]}, cmd.seq)

    async def _cmd_motion(self, cmd: Command) -> None:
        camera = self._camera(cmd)
        active = bool(cmd.data.get("active", True))
        # A parent that forgets to clear motion must not hold the camera "in motion" forever:
        # the same auto-reset as the HTTP trigger.
        camera.set_motion(active, auto_reset_s=camera.spec.motion_timeout_s or None, source="stdio")
        self.emit("ok", {"command": "motion", "camera": camera.name}, cmd.seq)

    async def _cmd_doorbell(self, cmd: Command) -> None:
        camera = self._camera(cmd)
        camera.ring_doorbell(source="stdio")
        self.emit("ok", {"command": "doorbell", "camera": camera.name}, cmd.seq)

    async def _cmd_unpair(self, cmd: Command) -> None:
        camera = self._camera(cmd)
        self._unpairing = camera.name
        try:
            removed = camera.unpair()
        finally:
            self._unpairing = None
        if removed:
            log.info("%s: unpaired by the parent process", camera.name)
        self._send_status(camera, cmd.seq)
        self.emit("ok", {"command": "unpair", "camera": camera.name, "removed": removed}, cmd.seq)

    async def _cmd_status(self, cmd: Command) -> None:
        cameras = [self._camera(cmd)] if cmd.camera is not None else self._cameras()
        for camera in cameras:
            self._send_status(camera, cmd.seq)
        self.emit("ok", {"command": "status"}, cmd.seq)

    async def _cmd_ping(self, cmd: Command) -> None:
        self.emit("pong", {}, cmd.seq)

    async def _cmd_shutdown(self, cmd: Command) -> None:
        self.shutdown_seq = cmd.seq
        self.stopping.set()

    # -- cameras --------------------------------------------------------------------------------
    def _cameras(self) -> list[Camera]:
        if self.app is None:
            raise _Refused("not started: send config, then start")
        return self.app.cameras

    def _camera(self, cmd: Command) -> Camera:
        cameras = self._cameras()
        for camera in cameras:
            if camera.name == cmd.camera:
                return camera
        names = ", ".join(c.name for c in cameras)
        raise _Refused(f"{cmd.name}: no camera named {str(cmd.camera)[:64]!r} (cameras: {names})")

    @staticmethod
    def _status(camera: Camera) -> dict[str, Any]:
        server = camera.server
        paired = server.paired
        # The setup code only matters (and is only shown) while the camera can be paired.
        return {"camera": camera.name, "paired": paired, "setupUri": None if paired else server.setup_uri,
                "setupCode": None if paired else server.setup_code, "port": server.port}

    def _send_status(self, camera: Camera, seq: Seq | None = None) -> None:
        data = self._status(camera)
        self._paired[camera.name] = data["paired"]
        self.emit("status", data, seq)

    def _attach(self, camera: Camera) -> None:
        self.emit("camera", {"camera": camera.name, "state": "starting"})

        def observe(event: CameraEvent) -> None:
            for name, data in wire_events(event):
                self.emit(name, data)
            # A status when the camera became paired or unpaired (not for a second controller);
            # during ``unpair`` the command's own reply carries it.
            if (isinstance(event, PairingChanged) and self._unpairing != camera.name
                    and self._paired.get(camera.name) != event.paired):
                self._send_status(camera)

        self._unsubscribe.append(camera.events.subscribe(observe))


