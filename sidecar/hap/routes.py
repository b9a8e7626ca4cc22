"""The HAP accessory server's endpoints: one handler per path, each returning its answer.

A handler takes the server (as :class:`RouteHost`), the connection, the request and ``now``,
and returns a :class:`~.response.Response` (or, for ``/resource``, a
:class:`~.connection.ResourceRequest` the adapter completes). A request refused as a whole
raises :class:`~.response.RequestError`; :func:`dispatch` turns it into the status body.
Per-characteristic outcomes of ``/characteristics`` stay in their 207 entries, as HAP wants.

Before pair-verify only ``/pair-setup``, ``/pair-verify`` and ``/identify`` are served; any
other path gets 470 (docs/hap-server.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote_plus

from .callbacks import Callbacks
from .connection import Connection, OffloadedRequest, ResourceRequest, Session
from .http import TLV_TYPE, HttpRequest
from .model import Accessory, Characteristic, Perm, ReadContext, WriteContext, services_json, short_uuid
from .notices import PairingNotice
from .offload import Offload
from .pair_setup import PairSetup, PairSetupResult
from .pairings import handle_pairings
from .response import RequestError, Response
from .state import AccessoryState
from .status import HapError, HapStatus

__all__ = ["ROUTES", "UNVERIFIED_PATHS", "RouteHost", "dispatch"]

log = logging.getLogger(__name__)

UNVERIFIED_PATHS = frozenset({"/pair-setup", "/pair-verify", "/identify"})
MAX_TTL_MS = 60_000
MAX_IMAGE_SIDE = 8192


class RouteHost(Protocol):
    """What the handlers use of the server core."""

    accessory: Accessory
    state: AccessoryState
    pair_setup: PairSetup
    callbacks: Callbacks
    verify_failures: int

    @property
    def index(self) -> Mapping[int, Characteristic]:
        """Characteristics by iid."""

    def notify_pairing_changes(self, before: dict[bytes, bool]) -> None:
        """Tell ``on_pairing`` what changed since ``before`` (identifier -> admin)."""

    def close_sessions_of(self, controllers: frozenset[bytes] | set[bytes], requester: Connection) -> None:
        """Close the sessions of ``controllers`` (``requester`` after its own answer)."""


Reply = Response | ResourceRequest | OffloadedRequest
Handler = Callable[[RouteHost, Connection, HttpRequest, float], Reply]


def dispatch(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    """Answer one request; a RequestError becomes its status response."""
    try:
        return _handler_for(conn, req)(host, conn, req, now)
    except RequestError as exc:
        return exc.response()


def _handler_for(conn: Connection, req: HttpRequest) -> Handler:
    path = req.path
    if conn.session is None and path not in UNVERIFIED_PATHS:
        raise RequestError(470, HapStatus.INSUFFICIENT_PRIVILEGES)
    route = ROUTES.get(path)
    if route is None:
        raise RequestError(404, HapStatus.RESOURCE_DOES_NOT_EXIST)
    method, handler = route
    if req.method != method and not (path == "/characteristics" and req.method in ("GET", "PUT")):
        raise RequestError(405, HapStatus.INVALID_VALUE)
    return handler


def _session(conn: Connection) -> Session:
    assert conn.session is not None  # dispatch serves only the unverified paths without one
    return conn.session


def pair_setup(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    if conn.session is not None:
        raise RequestError(470, HapStatus.INSUFFICIENT_PRIVILEGES)
    failed_before = host.state.failed_attempts
    step = host.pair_setup.begin(conn.id, req.body, now)
    if isinstance(step, Offload):  # SRP work: the adapter runs it off the loop, then answers here
        finish = step.finish
        return Offload(step.compute, lambda value, at: _pair_setup_answer(host, finish(value, at), failed_before))
    return _pair_setup_answer(host, step, failed_before)


def _pair_setup_answer(host: RouteHost, result: PairSetupResult, failed_before: int) -> Response:
    state, callbacks = host.state, host.callbacks
    if result.state_dirty:
        callbacks.on_state_dirty()
    after: tuple[Callable[[], None], ...] = ()
    if result.new_pairing is not None:
        after = (callbacks.on_advertise,)  # sf flips to "paired" only once the M6 answer is on its way
        callbacks.on_pairing(PairingNotice("added", result.new_pairing.identifier, result.new_pairing.admin,
                                           paired=True))
    elif state.failed_attempts > failed_before:
        callbacks.on_pairing(PairingNotice("setup_failed", paired=state.paired, failed_attempts=state.failed_attempts))
    return Response(200, result.body, TLV_TYPE, after_send=after)


def pair_verify(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    if conn.session is not None:
        # Re-verifying inside an encrypted session would swap keys mid-stream: refuse.
        raise RequestError(470, HapStatus.INSUFFICIENT_PRIVILEGES)
    result = conn.verify.handle(req.body)
    if result.failed:
        host.verify_failures += 1
        host.callbacks.on_pairing(PairingNotice("verify_failed", paired=host.state.paired))
    return Response(200, result.body, TLV_TYPE, keys=result.keys)


def identify(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    if host.state.paired:
        raise RequestError(400, HapStatus.INSUFFICIENT_PRIVILEGES)
    host.callbacks.on_identify()
    return Response(204)


def pairings(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    state, callbacks = host.state, host.callbacks
    before = state.admin_flags()
    result = handle_pairings(state, _session(conn).controller_id, req.body)
    host.notify_pairing_changes(before)
    if result.state_dirty:
        callbacks.on_state_dirty()
    after: list[Callable[[], None]] = []
    if result.removed:
        removed = result.removed
        after.append(lambda: host.close_sessions_of(removed, conn))
    if result.factory_reset:
        after.append(callbacks.on_factory_reset)
    if result.state_dirty:
        after.append(callbacks.on_advertise)
    return Response(200, result.body, TLV_TYPE, after_send=tuple(after))


def read_value(char: Characteristic, session: Session) -> Any:
    """The value to serve; a ReadContext is only built for characteristics with a handler."""
    if char.on_read is not None:
        return char.validate(char.on_read(ReadContext(session)))
    return char.value


def accessories(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    session = _session(conn)

    def read(char: Characteristic) -> tuple[Any, bool]:
        if Perm.READ not in char.perms:
            return None, False
        try:
            return read_value(char, session), True
        except HapError:
            return None, False

    accessory = host.accessory
    return Response.json(200, {"accessories": [{"aid": accessory.aid, "services": services_json(accessory, read)}]})


def characteristics(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    if req.method == "GET":
        return get_characteristics(host, conn, req, now)
    return put_characteristics(host, conn, req, now)


def get_characteristics(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    session = _session(conn)
    query = _parse_query(req.query)
    ids = query.get("id")
    if not ids:
        raise RequestError(400, HapStatus.INVALID_VALUE)
    want_meta = query.get("meta") in ("1", "true")
    want_perms = query.get("perms") in ("1", "true")
    want_type = query.get("type") in ("1", "true")
    want_ev = query.get("ev") in ("1", "true")
    aid_ok = host.accessory.aid
    index = host.index
    results: list[dict[str, Any]] = []
    errors = False
    for token in ids.split(","):
        aid_s, _, iid_s = token.partition(".")
        try:
            aid, iid = int(aid_s), int(iid_s)
        except ValueError:
            raise RequestError(400, HapStatus.INVALID_VALUE) from None
        entry: dict[str, Any] = {"aid": aid, "iid": iid}
        char = index.get(iid) if aid == aid_ok else None
        if char is None:
            entry["status"] = int(HapStatus.RESOURCE_DOES_NOT_EXIST)
            errors = True
        elif Perm.READ not in char.perms:
            entry["status"] = int(HapStatus.WRITE_ONLY)
            errors = True
        else:
            try:
                entry["value"] = char.to_json_value(read_value(char, session))
            except HapError as exc:
                entry["status"] = int(exc.status)
                errors = True
            if want_meta:
                entry.update(char.meta())
            if want_perms:
                entry["perms"] = char.perms_list()
            if want_type:
                entry["type"] = short_uuid(char.type)
            if want_ev:
                entry["ev"] = char.iid in conn.subscriptions
        results.append(entry)
    if errors:
        for entry in results:
            entry.setdefault("status", 0)
    return Response.json(207 if errors else 200, {"characteristics": results})


def put_characteristics(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    session = _session(conn)
    try:
        payload = json.loads(req.body)
        items = payload["characteristics"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RequestError(400, HapStatus.INVALID_VALUE) from None
    pid = payload.get("pid")
    timed_ok = False
    if pid is not None:
        timed_ok = isinstance(pid, int) and conn.consume_prepared(pid, now)
    results: list[dict[str, Any]] = []
    any_error = False
    any_value = False
    for item in items:
        entry: dict[str, Any] = {"aid": item.get("aid"), "iid": item.get("iid")}
        status, response_value = _write_one(host, conn, session, item, pid, timed_ok)
        entry["status"] = int(status)
        if status != HapStatus.SUCCESS:
            any_error = True
        if response_value is not _NO_VALUE:
            entry["value"] = response_value
            any_value = True
        results.append(entry)
    if not any_error and not any_value:
        return Response(204)
    return Response.json(207, {"characteristics": results})


def _write_one(
    host: RouteHost, conn: Connection, session: Session, item: dict[str, Any], pid: Any, timed_ok: bool
) -> tuple[HapStatus, Any]:
    aid, iid = item.get("aid"), item.get("iid")
    if not isinstance(aid, int) or not isinstance(iid, int):
        return HapStatus.INVALID_VALUE, _NO_VALUE
    char = host.index.get(iid) if aid == host.accessory.aid else None
    if char is None:
        return HapStatus.RESOURCE_DOES_NOT_EXIST, _NO_VALUE
    if "ev" in item:
        if Perm.EVENTS not in char.perms:
            return HapStatus.NOTIFICATION_NOT_SUPPORTED, _NO_VALUE
        if not isinstance(item["ev"], bool | int):
            return HapStatus.INVALID_VALUE, _NO_VALUE
        if item["ev"]:
            conn.subscriptions.add(char.iid)
        else:
            conn.subscriptions.discard(char.iid)
            conn.events.discard(char.iid)
    if "value" not in item:
        return HapStatus.SUCCESS, _NO_VALUE
    if Perm.WRITE not in char.perms:
        return HapStatus.READ_ONLY, _NO_VALUE
    if pid is not None and not timed_ok:
        return HapStatus.INVALID_VALUE, _NO_VALUE
    if Perm.TIMED_WRITE in char.perms and not timed_ok:
        return HapStatus.INVALID_VALUE, _NO_VALUE
    want_response = bool(item.get("r", False))
    if want_response and Perm.WRITE_RESPONSE not in char.perms:
        return HapStatus.INVALID_VALUE, _NO_VALUE
    if char.admin_write and not session.is_admin:
        return HapStatus.INSUFFICIENT_PRIVILEGES, _NO_VALUE
    try:
        value = char.validate(item["value"])
        answer = None
        if char.on_write is not None:
            answer = char.on_write(value, WriteContext(session, timed_ok, want_response))
        char.set_value(value, origin=session)
    except HapError as exc:
        return exc.status, _NO_VALUE
    except Exception:
        log.exception("write handler failed for iid %d", char.iid)
        return HapStatus.SERVICE_COMMUNICATION_FAILURE, _NO_VALUE
    if want_response:
        return HapStatus.SUCCESS, char.to_json_value(answer if answer is not None else value)
    return HapStatus.SUCCESS, _NO_VALUE


def prepare(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    try:
        payload = json.loads(req.body)
        ttl, pid = payload["ttl"], payload["pid"]
        if not (isinstance(ttl, int) and isinstance(pid, int) and 0 < ttl <= MAX_TTL_MS):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RequestError(400, HapStatus.INVALID_VALUE) from None
    conn.prepare(pid, ttl, now)
    return Response.hap_status(200, HapStatus.SUCCESS)


def resource(host: RouteHost, conn: Connection, req: HttpRequest, now: float) -> Reply:
    if not req.body:
        raise RequestError(400, HapStatus.INVALID_VALUE)
    try:
        payload = json.loads(req.body)
        if not isinstance(payload, dict):
            raise TypeError
    except (ValueError, TypeError):
        raise RequestError(400, HapStatus.INVALID_VALUE) from None
    aid = payload.get("aid", host.accessory.aid)
    if payload.get("resource-type") != "image" or aid != host.accessory.aid or not host.callbacks.has_resource:
        raise RequestError(404, HapStatus.RESOURCE_DOES_NOT_EXIST)
    width, height, reason = payload.get("image-width"), payload.get("image-height"), payload.get("reason")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_IMAGE_SIDE for v in (width, height)) \
            or (reason is not None and reason not in (0, 1)):
        raise RequestError(400, HapStatus.INVALID_VALUE)
    assert isinstance(width, int) and isinstance(height, int)
    return ResourceRequest(width, height, reason, aid)


def _parse_query(query: str) -> dict[str, str]:
    """``id=1.2,1.3&ev=1`` -> {"id": "1.2,1.3", "ev": "1"}; first value wins, %-escapes decoded."""
    out: dict[str, str] = {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        out.setdefault(key, value)
    return out


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Any = _NoValue()

ROUTES: dict[str, tuple[str, Handler]] = {
    "/pair-setup": ("POST", pair_setup),
    "/pair-verify": ("POST", pair_verify),
    "/identify": ("POST", identify),
    "/pairings": ("POST", pairings),
    "/accessories": ("GET", accessories),
    "/characteristics": ("GET", characteristics),
    "/prepare": ("PUT", prepare),
    "/resource": ("POST", resource),
}
