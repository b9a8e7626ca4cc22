"""The HAP route handlers called directly: each returns a response value, and a bad request
raises the one error type, which dispatch turns into the HAP status body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.hap import HapStatus, routes
from sidecar.hap.connection import Connection, ResourceRequest
from sidecar.hap.http import TLV_TYPE, HttpRequest
from sidecar.hap.response import RequestError, Response

from .memory import Harness, make_harness


def request(method: str, target: str, body: Any = b"") -> HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpRequest(method, target, {}, raw)


@pytest.fixture
def verified() -> tuple[Harness, Connection]:
    h = make_harness()
    peer, _ = h.paired_peer()
    return h, peer.conn


def answer(h: Harness, conn: Connection, req: HttpRequest) -> Response:
    reply = routes.dispatch(h.core, conn, req, h.clock())
    assert isinstance(reply, Response)
    return reply


def test_accessories_returns_the_database(verified: tuple[Harness, Connection]) -> None:
    h, conn = verified
    reply = routes.accessories(h.core, conn, request("GET", "/accessories"), h.clock())
    assert isinstance(reply, Response) and reply.status == 200
    (accessory,) = json.loads(reply.body)["accessories"]
    assert accessory["aid"] == 1 and accessory["services"]


def test_get_characteristics_returns_values_and_per_entry_statuses(verified: tuple[Harness, Connection]) -> None:
    h, conn = verified
    iid = h.test.on.iid
    reply = routes.get_characteristics(h.core, conn, request("GET", f"/characteristics?id=1.{iid}"), h.clock())
    assert isinstance(reply, Response) and reply.status == 200
    assert json.loads(reply.body) == {"characteristics": [{"aid": 1, "iid": iid, "value": False}]}
    reply = routes.get_characteristics(h.core, conn, request("GET", f"/characteristics?id=1.{iid},1.9999"),
                                       h.clock())
    assert isinstance(reply, Response) and reply.status == 207
    statuses = [entry["status"] for entry in json.loads(reply.body)["characteristics"]]
    assert statuses == [0, HapStatus.RESOURCE_DOES_NOT_EXIST]


@pytest.mark.parametrize("target", ["/characteristics", "/characteristics?id=", "/characteristics?id=1.x"])
def test_get_characteristics_refuses_a_bad_query(verified: tuple[Harness, Connection], target: str) -> None:
    h, conn = verified
    with pytest.raises(RequestError) as raised:
        routes.get_characteristics(h.core, conn, request("GET", target), h.clock())
    assert (raised.value.http_status, raised.value.status) == (400, HapStatus.INVALID_VALUE)
    reply = answer(h, conn, request("GET", target))
    assert reply.status == 400 and json.loads(reply.body) == {"status": HapStatus.INVALID_VALUE}


def test_put_characteristics_writes_and_answers_204(verified: tuple[Harness, Connection]) -> None:
    h, conn = verified
    body = {"characteristics": [{"aid": 1, "iid": h.test.on.iid, "value": True}]}
    reply = routes.put_characteristics(h.core, conn, request("PUT", "/characteristics", body), h.clock())
    assert reply == Response(204) and h.test.on.value is True


@pytest.mark.parametrize("body", [b"not json", {"characteristics": 5}, {"characteristics": [1]}, {}])
def test_put_characteristics_refuses_a_malformed_body(verified: tuple[Harness, Connection], body: Any) -> None:
    h, conn = verified
    with pytest.raises(RequestError) as raised:
        routes.put_characteristics(h.core, conn, request("PUT", "/characteristics", body), h.clock())
    assert raised.value.http_status == 400 and raised.value.status == HapStatus.INVALID_VALUE


def test_prepare_answers_success_and_refuses_a_bad_ttl(verified: tuple[Harness, Connection]) -> None:
    h, conn = verified
    reply = routes.prepare(h.core, conn, request("PUT", "/prepare", {"ttl": 1000, "pid": 7}), h.clock())
    assert reply == Response.hap_status(200, HapStatus.SUCCESS)
    assert conn.consume_prepared(7, h.clock())
    with pytest.raises(RequestError):
        routes.prepare(h.core, conn, request("PUT", "/prepare", {"ttl": 0, "pid": 7}), h.clock())


def test_resource_returns_a_request_for_the_adapter(verified: tuple[Harness, Connection]) -> None:
    h, conn = verified
    body = {"resource-type": "image", "image-width": 640, "image-height": 360}
    with pytest.raises(RequestError) as raised:  # no snapshot hook: there is no such resource
        routes.resource(h.core, conn, request("POST", "/resource", body), h.clock())
    assert raised.value.http_status == 404
    h.core.callbacks.has_resource = True
    reply = routes.resource(h.core, conn, request("POST", "/resource", body), h.clock())
    assert reply == ResourceRequest(640, 360, None, 1)
    with pytest.raises(RequestError):
        routes.resource(h.core, conn, request("POST", "/resource", {**body, "image-width": 0}), h.clock())


def test_identify_answers_204_unpaired_and_refuses_once_paired() -> None:
    h = make_harness()
    identified: list[bool] = []
    h.core.callbacks.on_identify = lambda: identified.append(True)
    conn = h.peer().conn
    assert routes.identify(h.core, conn, request("POST", "/identify"), h.clock()) == Response(204)
    assert identified == [True]
    h.paired_peer()
    with pytest.raises(RequestError) as raised:
        routes.identify(h.core, conn, request("POST", "/identify"), h.clock())
    assert (raised.value.http_status, raised.value.status) == (400, HapStatus.INSUFFICIENT_PRIVILEGES)


def test_pair_verify_answers_tlv_and_counts_a_failure() -> None:
    h = make_harness()
    conn = h.peer().conn
    reply = routes.pair_verify(h.core, conn, request("POST", "/pair-verify", b"\x06\x01\x09"), h.clock())
    assert isinstance(reply, Response) and reply.status == 200 and reply.content_type == TLV_TYPE
    assert reply.keys is None and h.core.verify_failures == 1


def test_dispatch_gates_paths_and_methods() -> None:
    h = make_harness()
    unverified = h.peer().conn
    reply = answer(h, unverified, request("GET", "/accessories"))
    assert reply.status == 470 and json.loads(reply.body) == {"status": HapStatus.INSUFFICIENT_PRIVILEGES}
    peer, _ = h.paired_peer()
    reply = answer(h, peer.conn, request("GET", "/nowhere"))
    assert reply.status == 404 and json.loads(reply.body) == {"status": HapStatus.RESOURCE_DOES_NOT_EXIST}
    reply = answer(h, peer.conn, request("POST", "/accessories"))
    assert reply.status == 405 and json.loads(reply.body) == {"status": HapStatus.INVALID_VALUE}
    reply = answer(h, peer.conn, request("POST", "/pair-verify", b""))
    assert reply.status == 470  # no second pair-verify inside a session
