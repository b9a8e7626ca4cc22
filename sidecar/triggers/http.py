"""HTTP motion and doorbell triggers, compatible with homebridge-camera-ffmpeg's URLs.

``GET /motion?<Camera Name>``, ``/motion/reset?<Camera Name>``, ``/doorbell?<Camera Name>``
(the name URL-encoded; ``?camera=<name>`` works too). Blue Iris alert actions and motionEye
web hooks can call these directly (ecosystem.md §2, §3). Replies are JSON ``{"error",
"message"}`` with status 200, or 500 on error, as homebridge-camera-ffmpeg answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import parse_qs, unquote

from aiohttp import web

__all__ = ["MotionTarget", "TriggerServer"]

log = logging.getLogger(__name__)


class MotionTarget(Protocol):
    name: str

    def trigger_motion(self) -> None:
        """Motion from an external detector: on, then off after the camera's motion timeout."""

    def set_motion(self, active: bool, *, auto_reset_s: float | None = None) -> None: ...
    def ring_doorbell(self) -> None: ...


def _camera_name(query: str) -> str:
    params = parse_qs(query)
    if "camera" in params:
        return params["camera"][0]
    return unquote(query.split("=", 1)[0]).strip()


class TriggerServer:
    def __init__(self, cameras: Callable[[], Sequence[MotionTarget]], *, host: str, port: int) -> None:
        self._cameras = cameras
        self.host = host
        self._requested_port = port
        self.port = 0
        self._runner: web.AppRunner | None = None

    def _find(self, name: str) -> MotionTarget | None:
        wanted = name.casefold()
        for camera in self._cameras():
            if camera.name.casefold() == wanted:
                return camera
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        action = request.path.strip("/")
        if action not in ("motion", "motion/reset", "doorbell"):
            return web.json_response({"error": True, "message": f'Unknown action "{action}".'}, status=500)
        if not request.query_string:
            return web.json_response({"error": True, "message": "Malformed URL."}, status=500)
        name = _camera_name(request.query_string)
        camera = self._find(name)
        if camera is None:
            return web.json_response({"error": True, "message": f'Camera "{name}" not found.'}, status=500)
        if action == "motion":
            camera.trigger_motion()
            message = "Motion switched on."
        elif action == "motion/reset":
            camera.set_motion(False)
            message = "Motion switched off."
        else:
            camera.ring_doorbell()
            message = "Rang doorbell."
        log.info("trigger: %s %s", action, camera.name)
        return web.json_response({"error": False, "message": message})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._requested_port
        log.info("motion triggers on http://%s:%d/motion?<camera>", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
