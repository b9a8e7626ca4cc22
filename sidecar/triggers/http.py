"""HTTP motion and doorbell triggers, compatible with homebridge-camera-ffmpeg's URLs.

``GET /motion?<Camera Name>``, ``/motion/reset?<Camera Name>``, ``/doorbell?<Camera Name>``
(the name URL-encoded; ``?camera=<name>`` works too). Blue Iris alert actions and motionEye
web hooks can call these directly (docs/cameras-and-nvrs.md §Blue Iris, §Other motion sources).
Replies are JSON ``{"error", "message"}`` with status 200, or 500 on error, as
homebridge-camera-ffmpeg answers.

Only GET triggers (that is what those tools send, and a link preview or a crawler's HEAD must
not raise motion): other methods answer 405. A camera without a doorbell refuses
``/doorbell``. When ``trigger_token`` is set, every trigger needs ``&token=<token>`` (for users
who expose the port beyond the LAN). The routes are mounted on the status page's aiohttp app
(``sidecar/web/server.py``): one port serves both.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = ["TRIGGER_PATHS", "MotionTarget", "TriggerRoutes", "parse_trigger_query"]

log = logging.getLogger(__name__)

TRIGGER_PATHS = ("/motion", "/motion/reset", "/doorbell")
MAX_QUERY = 2048


class MotionTarget(Protocol):
    name: str

    @property
    def has_doorbell(self) -> bool: ...

    @property
    def http_motion(self) -> bool: ...

    def trigger_motion(self, source: str = "http") -> None:
        """Motion from an external detector: on, then off after the camera's motion timeout."""

    def set_motion(self, active: bool, *, auto_reset_s: float | None = None, source: str = "manual") -> None: ...
    def ring_doorbell(self, source: str = "http") -> None: ...


def parse_trigger_query(query: str) -> tuple[str, str | None]:
    """``Front%20Door&token=x`` or ``camera=Front+Door&token=x`` → (camera name, token).

    The bare form is homebridge-camera-ffmpeg's: the first parameter's *name* is the camera.
    """
    params = parse_qsl(query[:MAX_QUERY], keep_blank_values=True)
    token = next((value for key, value in params if key == "token"), None)
    name = next((value for key, value in params if key == "camera"), None)
    if name is None:
        name = next((key for key, _ in params if key not in ("token", "camera")), "")
    return name.strip(), token


def _reply(message: str, status: int = 200) -> web.Response:
    return web.json_response({"error": status != 200, "message": message}, status=status)


class TriggerRoutes:
    """The trigger handlers, to be added to any aiohttp application."""

    def __init__(self, cameras: Callable[[], Sequence[MotionTarget]], *, token: str | None = None) -> None:
        self._cameras = cameras
        self._token = token

    def add_to(self, app: web.Application) -> None:
        for path in TRIGGER_PATHS:
            app.router.add_route("*", path, self.handle)

    def _find(self, name: str) -> MotionTarget | None:
        wanted = name.casefold()
        for camera in self._cameras():
            if camera.name.casefold() == wanted:
                return camera
        return None

    async def handle(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return web.json_response({"error": True, "message": "Use GET."}, status=405, headers={"Allow": "GET"})
        action = request.path.strip("/")
        if not request.query_string:
            return _reply("Malformed URL.", 500)
        name, token = parse_trigger_query(request.query_string)
        if self._token is not None and (token is None or not hmac.compare_digest(token.encode(),
                                                                                 self._token.encode())):
            log.warning("trigger: %s refused: missing or wrong token", action)
            return _reply("Missing or wrong token.", 403)
        camera = self._find(name)
        if camera is None:
            return _reply(f'Camera "{name[:64]}" not found.', 500)
        if action != "doorbell" and not camera.http_motion:
            return _reply(f'HTTP motion is off for camera "{camera.name}" (add http to its motion: list).', 403)
        if action == "motion":
            camera.trigger_motion(source="http")
            message = "Motion switched on."
        elif action == "motion/reset":
            camera.set_motion(False, source="http")
            message = "Motion switched off."
        else:
            if not camera.has_doorbell:
                return _reply(f'Camera "{camera.name}" has no doorbell (set doorbell: true).', 500)
            camera.ring_doorbell(source="http")
            message = "Rang doorbell."
        log.info("trigger: %s %s", action, camera.name)
        return _reply(message)
