"""The one aiohttp server: status pages, actions, ``/healthz``, ``/metrics``, the JSON API and
the HTTP triggers, all on ``http_port``.

It reads cameras only through ``Camera.status()`` and ``Camera.events`` (and calls the three
action methods); it never touches ``hap/`` or ``hds/``. It is a LAN service that anyone on the
network can reach, so it is built to take abuse: at most :data:`MAX_CONNECTIONS` connections,
a connection must send its request head within :data:`HEADER_TIMEOUT_S` (and a later one within
the keep-alive time), small request lines, headers and bodies, and a malformed or oversized
request is answered 400/413 and logged as one line, never as a traceback. A full server answers
a newcomer ``503`` with ``Retry-After`` and closes it; it never closes a connection that is
being served (a clip download, a Prometheus scrape) to make room.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..camera.events import CameraEvent, EventBus
from ..camera.status import CameraStatus
from ..triggers.detector_params import DetectorStatus
from ..triggers.http import TriggerRoutes
from . import pages
from .forms import Csrf, FormError, origin_allowed, parse_form, password_ok
from .journal import MAX_ENTRIES, EventJournal
from .journal_store import JournalStore
from .metrics import CONTENT_TYPE, Metrics

__all__ = ["HEADER_TIMEOUT_S", "MAX_CONNECTIONS", "RETRY_AFTER_S", "ClipSource", "WebCamera", "WebServer",
           "parse_limit", "serve_app"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
KEEPALIVE_S = 10.0
HEADER_TIMEOUT_S = 5.0  # from connecting to the end of the first request head
RETRY_AFTER_S = 5  # what a full server tells a newcomer
REFUSAL_LINGER_S = 2.0  # a refused client gets this long to read its 503 before the socket closes
MAX_REFUSING = 256  # refusals in flight; past this a newcomer is closed without an answer
REFUSAL_WARN_EVERY = 100
MAX_LINE = 4096
MAX_FIELD = 4096
MAX_BODY = 16 * 1024
HEALTH_STALE_S = 20.0  # a wanted ffmpeg that produced nothing for this long is unhealthy
_CLIP_NAME = re.compile(r"^[0-9]{6}(-[0-9]+)?\.mp4$")
_CLIP_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class WebCamera(Protocol):
    name: str
    events: EventBus

    @property
    def has_doorbell(self) -> bool: ...

    @property
    def http_motion(self) -> bool: ...

    def status(self) -> CameraStatus: ...
    def trigger_motion(self, source: str = "http") -> None: ...
    def set_motion(self, active: bool, *, auto_reset_s: float | None = None, source: str = "manual") -> None: ...
    def ring_doorbell(self, source: str = "http") -> None: ...
    def restart_ffmpeg(self) -> bool: ...
    def reset_pairings(self) -> int: ...


class DetectorSource(Protocol):
    """A camera's built-in motion detector, as the web server sees it (sidecar/triggers)."""

    def status(self) -> DetectorStatus: ...


class ClipSource(Protocol):
    """The local archive, as the web server sees it (sidecar/archive)."""

    def clips(self, camera: str) -> Sequence[pages.ClipInfo]: ...
    def clip_path(self, camera: str, date: str, name: str) -> Path | None: ...


_REFUSAL = (f"HTTP/1.1 503 Service Unavailable\r\nRetry-After: {RETRY_AFTER_S}\r\nConnection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 47\r\n\r\n"
            "the status page is busy: try again in a moment\n").encode()
assert _REFUSAL.endswith(b"\r\n\r\n" + b"the status page is busy: try again in a moment\n")


class _Refusal(asyncio.Protocol):
    """A connection the full server cannot take: it is answered 503 with Retry-After at once,
    its request is read and thrown away (closing on unread bytes would reset the connection
    before the client reads the answer), and it is closed after :data:`REFUSAL_LINGER_S`."""

    def __init__(self, site: _LimitedSite, answer: bool) -> None:
        self._site, self._answer = site, answer
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._answer:
            transport.abort()
            return
        transport.write(_REFUSAL)
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        """A refused client's request is read and dropped: its answer is the 503 already sent."""

    def eof_received(self) -> bool:
        return False  # the client has read its answer and closed: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._site.refusing -= 1


class _HeadTracker:
    """The connections still waiting for their first complete request head (a middleware sees
    each request as soon as its head is parsed)."""

    def __init__(self) -> None:
        self.waiting: set[RequestHandler] = set()

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        self.waiting.discard(request.protocol)
        return await handler(request)


class _LimitedSite(web.BaseSite):
    """A TCP site that holds at most ``limit`` connections. A newcomer to a full site is
    answered 503 with Retry-After; no connection in progress is closed for it. A connection
    that has not sent its first request head within ``header_timeout_s`` is closed (after the
    first request, aiohttp's keep-alive time bounds the wait for the next complete head)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, limit: int, header_timeout_s: float,
                 heads: _HeadTracker) -> None:
        super().__init__(runner)
        self._host, self._port, self._limit = host, port, limit
        self._header_timeout_s = header_timeout_s
        self._heads = heads
        self.bound_port = 0
        self.refusing = 0  # refusals in flight
        self._accepting = 0  # handlers made whose connection_made has not run yet
        self.refused = 0  # since start
        self.header_timeouts = 0  # since start

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.bound_port}"

    def _factory(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        # A burst of connects is accepted in one go: a handler joins server.connections only in its
        # connection_made, which the loop runs soon after this factory. Those count as well.
        live = self._accepting + sum(
            1 for h in server.connections if h.transport is not None and not h.transport.is_closing())
        if live >= self._limit:
            self.refusing += 1
            self.refused += 1
            if (self.refused - 1) % REFUSAL_WARN_EVERY == 0:
                log.warning("web: %d connections open: new ones are answered 503 (%d refused since start)",
                            live, self.refused)
            return _Refusal(self, answer=self.refusing <= MAX_REFUSING)
        handler = server()
        self._heads.waiting.add(handler)
        loop = asyncio.get_running_loop()
        loop.call_later(self._header_timeout_s, self._header_deadline, handler)
        # The transport schedules connection_made right after this returns; two turns of the
        # loop later the handler is in server.connections (or already gone).
        self._accepting += 1
        loop.call_soon(loop.call_soon, self._accepted)
        return handler

    def _accepted(self) -> None:
        self._accepting -= 1

    def _header_deadline(self, handler: RequestHandler) -> None:
        if handler not in self._heads.waiting:
            return
        self._heads.waiting.discard(handler)
        if handler.transport is None:
            return
        self.header_timeouts += 1
        log.info("web: a client sent no complete request within %.0f s: closed", self._header_timeout_s)
        handler.force_close()  # closes the transport

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self._host, self._port, reuse_address=True)
        self.bound_port = self._server.sockets[0].getsockname()[1]


class _QuietRequestHandlerLog(logging.Filter):
    """aiohttp logs a malformed request (too long, bad bytes) with a full traceback; the client
    got its 400 already, so one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = "bad HTTP request from a client: %s"
            text = str(getattr(exc, "message", "") or exc).strip().splitlines()
            record.args = (f"{type(exc).__name__}: {text[0][:120] if text else ''}",)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_quiet = _QuietRequestHandlerLog()


async def serve_app(app: web.Application, host: str, port: int, *, max_connections: int = MAX_CONNECTIONS,
                    header_timeout_s: float = HEADER_TIMEOUT_S) -> tuple[web.AppRunner, int]:
    """Run ``app`` with the server's limits; returns the runner and the bound port."""
    logging.getLogger("aiohttp.server").addFilter(_quiet)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE_S, max_line_size=MAX_LINE,
                           max_field_size=MAX_FIELD, handler_cancellation=True)
    heads = _HeadTracker()
    app.middlewares.insert(0, heads.middleware)
    await runner.setup()
    site = _LimitedSite(runner, host, port, max_connections, header_timeout_s, heads)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site.bound_port


class WebServer:
    """Status pages, health, metrics, API and triggers for a set of cameras."""

    def __init__(self, cameras: Callable[[], Sequence[WebCamera]], *, host: str, port: int,
                 password: str | None = None, trigger_token: str | None = None,
                 archive: ClipSource | None = None, journal_path: Path | None = None) -> None:
        self._cameras = cameras
        self.host = host
        self._requested_port = port
        self.port = 0
        self._password = password or None
        self._archive = archive
        self._csrf = Csrf()
        self.journal = EventJournal()
        self.journal_store = None if journal_path is None else JournalStore(self.journal, journal_path)
        self.metrics = Metrics(self._snapshots)
        self._triggers = TriggerRoutes(cameras, token=trigger_token)
        self._runner: web.AppRunner | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._detectors: dict[str, DetectorSource] = {}

    # -- wiring -----------------------------------------------------------------------------------
    def attach(self, camera: WebCamera, detector: DetectorSource | None = None) -> None:
        """Follow a camera's events (journal and metrics), and show its detector's figures if it
        has one. Called for each camera before start."""
        if detector is not None:
            self._detectors[camera.name] = detector
        self.journal.add_camera(camera.name, lambda: camera.status().mode)
        self._unsubscribe.append(camera.events.subscribe(self._observe))

    def _observe(self, event: CameraEvent) -> None:
        self.journal.observe(event)
        self.metrics.observe(event)
        if self.journal_store is not None:
            self.journal_store.changed()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        r = app.router
        r.add_get("/", self._overview)
        r.add_get("/healthz", self._healthz)
        r.add_get("/metrics", self._metrics)
        r.add_get("/api/status", self._api_status)
        r.add_get("/api/events", self._api_events)
        r.add_get("/camera/{slug}", self._camera)
        r.add_get("/camera/{slug}/qr.svg", self._qr)
        r.add_get("/camera/{slug}/clips/{date}/{name}", self._clip)
        r.add_route("*", "/camera/{slug}/{action:motion|restart|reset}", self._action)
        self._triggers.add_to(app)
        return app

    async def start(self) -> None:
        if self.journal_store is not None:
            restored = await self.journal_store.load()
            if restored:
                log.info("event journal: %d event(s) from before the restart", restored)
        self._runner, self.port = await serve_app(self.build_app(), self.host, self._requested_port)
        log.info("status page on http://%s:%d/", self.host, self.port)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.journal_store is not None:
            await self.journal_store.close()

    # -- helpers ----------------------------------------------------------------------------------
    def _snapshots(self) -> list[CameraStatus]:
        return [c.status() for c in self._cameras()]

    def _detector(self, name: str) -> DetectorStatus | None:
        source = self._detectors.get(name)
        return None if source is None else source.status()

    def _find(self, slug: str) -> WebCamera | None:
        for camera in self._cameras():
            if camera.status().slug == slug:
                return camera
        return None

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException:
            raise
        except Exception:
            log.exception("web: %s %s failed", request.method, request.path)
            return web.Response(status=500, text="internal error (see the sidecar's log)")

    def _tokens(self, slug: str) -> dict[str, str]:
        return {a: self._csrf.token(f"{slug}:{a}") for a in ("motion", "restart", "reset")}

    # -- pages ------------------------------------------------------------------------------------
    async def _overview(self, request: web.Request) -> web.Response:
        now = time.time()
        cards = [(s, self.journal.last_motion(s.name), self.journal.last_recording(s.name),
                  self.journal.restart_in(s.name, now), self.journal.pipeline_failed(s.name), self._detector(s.name))
                 for s in self._snapshots()]
        return web.Response(text=pages.overview_page(cards), content_type="text/html")

    async def _camera(self, request: web.Request) -> web.Response:
        camera = self._find(request.match_info["slug"])
        if camera is None:
            raise web.HTTPNotFound(text="no such camera")
        snap = camera.status()
        notice = {"motion": "Test motion raised: a hub in Stream & Allow Recording mode should open a recording.",
                  "restart": "ffmpeg restart requested.", "restart-skipped": "ffmpeg is not running (recording off).",
                  "reset": "All pairings removed: the camera is unpaired."}.get(request.query.get("done", ""))
        clips = self._archive.clips(snap.slug) if self._archive is not None else []
        html = pages.camera_page(snap, self.journal.entries(snap.name), clips, tokens=self._tokens(snap.slug),
                                 password=self._password is not None, notice=notice, now=time.time(),
                                 restart_in=self.journal.restart_in(snap.name, time.time()),
                                 failed=self.journal.pipeline_failed(snap.name), detector=self._detector(snap.name))
        return web.Response(text=html, content_type="text/html")

    async def _qr(self, request: web.Request) -> web.Response:
        camera = self._find(request.match_info["slug"])
        if camera is None:
            raise web.HTTPNotFound(text="no such camera")
        snap = camera.status()
        if snap.paired or snap.setup_uri is None:
            raise web.HTTPNotFound(text="the camera is paired: no setup code to show")
        return web.Response(text=pages.qr_svg(snap.setup_uri), content_type="image/svg+xml")

    async def _clip(self, request: web.Request) -> web.StreamResponse:
        slug, date, name = (request.match_info[k] for k in ("slug", "date", "name"))
        if self._archive is None or not _CLIP_DATE.match(date) or not _CLIP_NAME.match(name):
            raise web.HTTPNotFound(text="no such clip")
        path = self._archive.clip_path(slug, date, name)
        if path is None:
            raise web.HTTPNotFound(text="no such clip")
        return web.FileResponse(path, headers={"Content-Type": "video/mp4",
                                               "Content-Disposition": f'attachment; filename="{slug}-{date}-{name}"'})

    # -- actions ----------------------------------------------------------------------------------
    async def _action(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="actions are POST only", headers={"Allow": "POST"})
        slug, action = request.match_info["slug"], request.match_info["action"]
        camera = self._find(slug)
        if camera is None:
            raise web.HTTPNotFound(text="no such camera")
        if not origin_allowed(request.headers.get("Origin"), request.headers.get("Host")):
            log.warning("web: %s on %s refused: request from another site", action, camera.name)
            return self._refuse(403, "This form was sent from another site.")
        try:
            form = parse_form(await request.read())
        except FormError as exc:
            return self._refuse(400, f"Bad form ({exc}).")
        if not self._csrf.check(f"{slug}:{action}", form.get("csrf")):
            log.warning("web: %s on %s refused: missing or stale form token", action, camera.name)
            return self._refuse(403, "The form token is missing or stale: reload the page and try again.")
        if not password_ok(self._password, form.get("password")):
            log.warning("web: %s on %s refused: wrong web password", action, camera.name)
            return self._refuse(403, "Wrong web password.")
        if action == "motion":
            if camera.status().motion:  # hubs react to a rising edge: make one
                camera.set_motion(False, source="web")
            camera.trigger_motion(source="web")
            done = "motion"
        elif action == "restart":
            done = "restart" if camera.restart_ffmpeg() else "restart-skipped"
        else:
            if form.get("confirm") != "yes":
                html = pages.confirm_reset_page(camera.status(), self._tokens(slug)["reset"],
                                                self._password is not None)
                return web.Response(text=html, content_type="text/html")
            camera.reset_pairings()
            done = "reset"
        raise web.HTTPSeeOther(f"/camera/{slug}?done={done}")

    @staticmethod
    def _refuse(status: int, text: str) -> web.Response:
        return web.Response(status=status, text=pages.message_page("refused", text), content_type="text/html")

    # -- machine endpoints ------------------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        cameras = {}
        healthy = True
        for snap in self._snapshots():
            ok, why = snap.healthy(stale_after_s=HEALTH_STALE_S)
            healthy &= ok
            cameras[snap.name] = {"healthy": ok, "reason": why}
        if not cameras:
            healthy = False
        return web.json_response({"healthy": healthy, "cameras": cameras}, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _api_status(self, request: web.Request) -> web.Response:
        out = []
        for snap in self._snapshots():
            data = snap.to_json()
            motion, rec = self.journal.last_motion(snap.name), self.journal.last_recording(snap.name)
            data["last_motion"] = None if motion is None else {"at": motion.at, "source": motion.source}
            data["last_recording"] = None if rec is None else rec.to_json()
            data["media"]["restart_in_s"] = self.journal.restart_in(snap.name, time.time())
            data["media"]["failed"] = self.journal.pipeline_failed(snap.name)
            detector = self._detector(snap.name)
            data["detector"] = None if detector is None else asdict(detector)
            out.append(data)
        return web.json_response({"cameras": out}, dumps=_dumps)

    async def _api_events(self, request: web.Request) -> web.Response:
        wanted = request.query.get("camera")
        limit = parse_limit(request.query.get("limit"))
        if limit is None:
            return web.json_response({"error": f"limit must be a whole number from 0 to {MAX_ENTRIES}"}, status=400)
        now = time.time()
        result: dict[str, list[dict[str, Any]]] = {}
        for snap in self._snapshots():
            if wanted is not None and wanted not in (snap.slug, snap.name):
                continue
            result[snap.name] = [e.to_json(now) for e in self.journal.entries(snap.name, limit)]
        if wanted is not None and not result:
            return web.json_response({"error": "no such camera"}, status=404)
        return web.json_response({"cameras": result}, dumps=_dumps)


def parse_limit(text: str | None) -> int | None:
    """``?limit=`` of /api/events: absent means all (100); anything but 0-100 in digits is None."""
    if text is None:
        return MAX_ENTRIES
    if not (1 <= len(text) <= 3 and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ENTRIES else None


def _dumps(data: Any) -> str:
    return json.dumps(data, allow_nan=False, default=str)
