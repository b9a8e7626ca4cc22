"""docs/hap-server.md checklist items 10-24: secure session, /pairings, characteristics, events,
/resource, /identify and persistence, driven in memory with a fake clock."""

from __future__ import annotations

import base64
import json
import logging
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sidecar import tlv8
from sidecar.hap import catalog
from sidecar.hap.core import CoreConfig, ServerCore
from sidecar.hap.pairing_tlv import T
from sidecar.hap.secure_channel import SecureChannel
from sidecar.hap.state import MAX_PAIRINGS, AccessoryState
from sidecar.hap.status import TlvErrorCode
from tests.support.accessories import build_test_accessory

from .memory import PIN, FakeClock, Peer, make_harness


def chars(msg_body: bytes) -> dict[int, dict[str, object]]:
    return {c["iid"]: c for c in json.loads(msg_body)["characteristics"]}


# -- 10 -----------------------------------------------------------------------------------------
def test_10_secure_session_framing_rules() -> None:
    h = make_harness()
    peer, data = h.paired_peer()
    assert peer.channel is not None
    # Several requests in one frame, then one request split across frames.
    two = peer.encode_request("GET", "/accessories") + peer.encode_request(
        "GET", f"/characteristics?id=1.{h.test.on.iid}")
    responses = peer.feed(peer.channel.encrypt(two))
    assert [r.status for r in responses] == [200, 200]
    big = peer.encode_request("PUT", "/characteristics",
                              json.dumps({"characteristics": [{"aid": 1, "iid": h.test.text.iid, "value": "x"}],
                                          "pad": "y" * 3000}).encode())
    sealed = peer.channel.encrypt(big)
    assert len(sealed) > 3 * 1042  # at least 3 frames
    for i in range(0, len(sealed), 700):  # and deliver them in arbitrary pieces
        out = peer.feed(sealed[i : i + 700])
    assert [r.status for r in out] == [204]
    # A zero-length frame is valid and harmless.
    assert peer.feed(peer.channel.encrypt(b"")) == []  # encrypt(b"") produces no frame at all
    empty_frame = b"\x00\x00" + peer.channel._enc.encrypt(
        b"\x00" * 4 + peer.channel._send_counter.to_bytes(8, "little"), b"", b"\x00\x00")
    peer.channel._send_counter += 1
    assert peer.feed(empty_frame) == [] and not peer.closed
    assert peer.get_json("/accessories").status == 200

    # Wrong tag closes.
    frame = bytearray(peer.channel.encrypt(peer.encode_request("GET", "/accessories")))
    frame[-1] ^= 1
    peer.conn.receive_data(bytes(frame), h.clock())
    assert peer.closed and peer.conn.data_to_send() == b""

    # A replayed frame (old counter) closes.
    p2 = h.session_peer(data)
    assert p2.channel is not None
    frame2 = p2.channel.encrypt(p2.encode_request("GET", "/accessories"))
    p2.feed(frame2)
    p2.conn.receive_data(frame2, h.clock())
    assert p2.closed

    # A frame length over 1024 closes.
    p3 = h.session_peer(data)
    p3.conn.receive_data(b"\x01\x04" + b"\x00" * 1041, h.clock())
    assert p3.closed


def test_10_counters_are_64_bit_little_endian() -> None:
    a = SecureChannel(b"k" * 32, b"j" * 32)
    b = SecureChannel(b"j" * 32, b"k" * 32)
    a._send_counter = b._recv_counter = 2**32 + 5
    assert b.decrypt(a.encrypt(b"hello")) == b"hello"


def test_10_http_size_limits() -> None:
    h = make_harness()
    peer = h.peer()
    responses = peer.feed(b"GET /accessories HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n")
    assert responses[0].status in (400, 431) and peer.closed
    peer = h.peer()
    responses = peer.feed(b"PUT /characteristics HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
    assert responses[0].status == 413 and peer.closed


# -- 11 -----------------------------------------------------------------------------------------
def test_11_timeouts_connection_limit_and_slow_loris() -> None:
    h = make_harness(CoreConfig(max_connections=3, unverified_timeout=10, idle_timeout=100))
    peer, data = h.paired_peer()
    loris = h.peer()
    loris.feed(b"GET /acc")  # a partial request, then silence
    third = h.peer()
    assert h.core.open_connection(h.clock()) is not None  # full: the oldest unverified one makes room
    assert loris.closed and loris.conn.evicted and not third.closed and not peer.closed
    loris = Peer(h.core, h.clock, h.core.connections[max(h.core.connections)])
    loris.feed(b"GET /acc")

    def run_timers_until(t: float) -> None:
        while (deadline := h.core.next_deadline()) is not None and deadline <= t:
            h.clock.now = max(h.clock.now, deadline)
            h.core.handle_timers(h.clock())
        h.clock.now = t

    start = h.clock()
    run_timers_until(start + 9.5)
    assert not loris.closed
    run_timers_until(start + 11.5)  # timeouts are checked on a 1 s tick
    assert loris.closed and third.closed and not peer.closed
    run_timers_until(start + 102)
    assert peer.closed
    assert data


def test_11_eviction_spares_verified_sessions_and_the_other_hosts() -> None:
    h = make_harness(CoreConfig(max_connections=4))
    hub, data = h.paired_peer(host="10.0.0.2")
    other_hub = h.peer("10.0.0.3")  # unverified, but alone on its host
    flood = [h.core.open_connection(h.clock(), "10.0.0.66") for _ in range(2)]
    assert all(c is not None for c in flood)
    h.clock.now += 1
    evicted: list[int] = []
    for _ in range(50):  # the flooding host only ever evicts its own sockets
        before = {c.id for c in h.core.connections.values()}
        conn = h.core.open_connection(h.clock(), "10.0.0.66")
        assert conn is not None
        evicted += sorted(before - set(h.core.connections))
        h.clock.now += 0.01
    assert len(evicted) == 50 and not hub.closed and not other_hub.closed
    assert len(h.core.connections) == 4
    # A newcomer from a third host evicts the flood's oldest, never a verified session.
    assert h.core.open_connection(h.clock(), "10.0.0.9") is not None
    assert not hub.closed and not other_hub.closed
    # Every slot verified: the newcomer is refused.
    h2 = make_harness(CoreConfig(max_connections=2))
    a, data2 = h2.paired_peer()
    b = h2.session_peer(data2)
    assert h2.core.open_connection(h2.clock(), "10.0.0.66") is None
    assert not a.closed and not b.closed
    assert data


def test_11_default_limits() -> None:
    h = make_harness()  # the defaults a real camera runs with
    assert h.core.config.max_connections == 64
    idle = h.peer()
    for _ in range(9):
        h.clock.now += 1
        h.core.handle_timers(h.clock())
    assert not idle.closed
    for _ in range(2):  # 10 s to finish pair-verify (checked on a 1 s tick)
        h.clock.now += 1
        h.core.handle_timers(h.clock())
    assert idle.closed


def test_11_pair_setup_in_progress_outlives_the_verify_timeout() -> None:
    h = make_harness(CoreConfig(unverified_timeout=10))
    setup = h.peer()
    m1 = tlv8.encode([(T.STATE, 1), (T.METHOD, 0)])
    assert tlv8.decode_dict(setup.tlv("/pair-setup", m1))[T.STATE] == b"\x02"
    idle = h.peer()
    for _ in range(25):  # the user types the code for 25 s
        h.clock.now += 1
        h.core.handle_timers(h.clock())
    assert idle.closed and not setup.closed
    h.clock.now += 10
    h.core.handle_timers(h.clock())
    assert setup.closed  # pair-setup's own 30 s limit still applies


# -- 12 ------------------------------------------------------------------------------------------
def _add_pairing(peer: Peer, identifier: bytes, public_key: bytes, admin: bool) -> bytes:
    return peer.tlv("/pairings", tlv8.encode([(T.STATE, 1), (T.METHOD, 3), (T.IDENTIFIER, identifier),
                                              (T.PUBLIC_KEY, public_key), (T.PERMISSIONS, 1 if admin else 0)]))


def _new_controller() -> tuple[bytes, Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return str(uuid.uuid4()).encode(), key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _as(data: dict[str, object], identifier: bytes, key: Ed25519PrivateKey) -> dict[str, object]:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return dict(data, iOSPairingId=identifier.decode(), iOSDeviceLTSK=seed.hex(), iOSDeviceLTPK=pub.hex())


def test_12_pairings_are_admin_only() -> None:
    h = make_harness()
    admin, data = h.paired_peer()
    ident, key, pub = _new_controller()
    assert T.ERROR not in tlv8.decode_dict(_add_pairing(admin, ident, pub, admin=False))
    user = h.session_peer(_as(data, ident, key))
    for method_items in ([(T.METHOD, 5)], [(T.METHOD, 4), (T.IDENTIFIER, b"x")],
                         [(T.METHOD, 3), (T.IDENTIFIER, b"y"), (T.PUBLIC_KEY, pub), (T.PERMISSIONS, 1)]):
        body = user.tlv("/pairings", tlv8.encode([(T.STATE, 1), *method_items]))
        assert tlv8.decode_dict(body)[T.ERROR][0] == TlvErrorCode.AUTHENTICATION
    assert set(h.state.pairings) == {data["iOSPairingId"].encode(), ident}


# -- 13 -----------------------------------------------------------------------------------------
def test_13_add_existing_update_and_max_peers() -> None:
    h = make_harness()
    admin, _ = h.paired_peer()
    ident, _key, pub = _new_controller()
    _add_pairing(admin, ident, pub, admin=False)
    _, _, other_pub = _new_controller()
    assert tlv8.decode_dict(_add_pairing(admin, ident, other_pub, admin=True))[T.ERROR][0] == TlvErrorCode.UNKNOWN
    assert h.state.pairings[ident].admin is False
    assert T.ERROR not in tlv8.decode_dict(_add_pairing(admin, ident, pub, admin=True))
    assert h.state.pairings[ident].admin is True
    assert MAX_PAIRINGS >= 16
    while len(h.state.pairings) < MAX_PAIRINGS:
        i, _, p = _new_controller()
        assert T.ERROR not in tlv8.decode_dict(_add_pairing(admin, i, p, admin=False))
    i, _, p = _new_controller()
    assert tlv8.decode_dict(_add_pairing(admin, i, p, admin=False))[T.ERROR][0] == TlvErrorCode.MAX_PEERS


# -- 14 -----------------------------------------------------------------------------------------
def test_14_remove_closes_sessions_and_last_admin_resets() -> None:
    h = make_harness()
    admin, data = h.paired_peer()
    ident, key, pub = _new_controller()
    _add_pairing(admin, ident, pub, admin=False)
    user_a = h.session_peer(_as(data, ident, key))
    user_b = h.session_peer(_as(data, ident, key))
    closed_callbacks = []
    assert user_a.conn.session is not None
    user_a.conn.session.add_close_callback(lambda: closed_callbacks.append("a"))
    remove = tlv8.encode([(T.STATE, 1), (T.METHOD, 4), (T.IDENTIFIER, ident)])
    assert T.ERROR not in tlv8.decode_dict(admin.tlv("/pairings", remove))
    assert user_a.closed and user_b.closed and not admin.closed
    user_a.close()
    assert closed_callbacks == ["a"]
    # Unknown id: success.
    assert T.ERROR not in tlv8.decode_dict(admin.tlv("/pairings", remove))
    # Removing the last admin wipes everything, closes the caller after the response.
    i2, k2, p2 = _new_controller()
    _add_pairing(admin, i2, p2, admin=False)
    other = h.session_peer(_as(data, i2, k2))
    me = tlv8.encode([(T.STATE, 1), (T.METHOD, 4), (T.IDENTIFIER, data["iOSPairingId"].encode())])
    assert T.ERROR not in tlv8.decode_dict(admin.tlv("/pairings", me))
    assert admin.closed and other.closed
    assert h.state.pairings == {} and h.core.txt_record()["sf"] == "1"
    assert h.peer().pair()  # pair-setup works again


# -- 15 -----------------------------------------------------------------------------------------
def test_15_list_pairings_echoes_identifiers_with_separators() -> None:
    h = make_harness()
    admin, data = h.paired_peer()
    odd = b"AbCdEf-Mixed-Case-Id"
    _, _, pub = _new_controller()
    _add_pairing(admin, odd, pub, admin=False)
    body = admin.tlv("/pairings", tlv8.encode([(T.STATE, 1), (T.METHOD, 5)]))
    raw = tlv8.decode(body)
    assert raw[0] == (T.STATE, b"\x02")
    groups = tlv8.split_list(raw[1:], delimiter=T.SEPARATOR)
    assert [dict(g)[T.IDENTIFIER] for g in groups] == [data["iOSPairingId"].encode(), odd]
    assert [dict(g)[T.PERMISSIONS] for g in groups] == [b"\x01", b"\x00"]
    assert sum(1 for t, v in raw if t == T.SEPARATOR and v == b"") == 1


# -- 16 / 17 / 18 / 20 --------------------------------------------------------------------------
def test_16_permission_errors() -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    t = h.test
    msg = peer.get_json(f"/characteristics?id=1.{t.identify.iid},1.{t.on.iid},1.9999,7.{t.on.iid}")
    assert msg.status == 207
    got = [(c["aid"], c["iid"], c["status"]) for c in json.loads(msg.body)["characteristics"]]
    assert got == [(1, t.identify.iid, -70405), (1, t.on.iid, 0), (1, 9999, -70409), (7, t.on.iid, -70409)]
    msg = peer.put_json("/characteristics", {"characteristics": [
        {"aid": 1, "iid": t.manufacturer.iid, "value": "evil"},
        {"aid": 1, "iid": t.manufacturer.iid, "ev": True},
        {"aid": 1, "iid": 4242, "value": 1},
    ]})
    assert [c["status"] for c in json.loads(msg.body)["characteristics"]] == [-70404, -70406, -70409]
    assert t.manufacturer.value == "hksv-sidecar"


@pytest.mark.parametrize(
    ("attr", "value"),
    [("brightness", "x"), ("brightness", 101), ("brightness", -1), ("on", 2), ("on", "true"),
     ("hue", float("inf")), ("timed", 3), ("text", "x" * 17), ("tlv", "%%%not-base64"), ("tlv", 5),
     ("brightness", None)],
)
def test_17_invalid_values(attr: str, value: object) -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    char = getattr(h.test, attr)
    before = char.value
    payload = json.dumps({"characteristics": [{"aid": 1, "iid": char.iid, "value": value}]},
                         allow_nan=True).replace("Infinity", "1e999")
    if attr == "timed":
        peer.put_json("/prepare", {"ttl": 5000, "pid": 7})
        payload = payload[:-1] + ', "pid": 7}'
    msg = peer.request("PUT", "/characteristics", payload.encode())
    assert msg.status == 207 and json.loads(msg.body)["characteristics"][0]["status"] == -70410
    assert char.value == before


def test_17_mixed_batch_and_all_success() -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    t = h.test
    ok = peer.put_json("/characteristics", {"characteristics": [
        {"aid": 1, "iid": t.on.iid, "value": 1}, {"aid": 1, "iid": t.brightness.iid, "value": 40}]})
    assert ok.status == 204 and ok.body == b"" and "content-length" not in ok.headers
    mixed = peer.put_json("/characteristics", {"characteristics": [
        {"aid": 1, "iid": t.on.iid, "value": False}, {"aid": 1, "iid": t.brightness.iid, "value": 400},
        {"aid": 1, "iid": t.reject.iid, "value": 13}]})
    assert mixed.status == 207
    assert [c["status"] for c in json.loads(mixed.body)["characteristics"]] == [0, -70410, -70412]
    assert t.on.value is False and t.brightness.value == 40 and t.reject.value == 0


def test_17_admin_only_write() -> None:
    h = make_harness()
    admin, data = h.paired_peer()
    ident, key, pub = _new_controller()
    _add_pairing(admin, ident, pub, admin=False)
    user = h.session_peer(_as(data, ident, key))
    body = {"characteristics": [{"aid": 1, "iid": h.test.admin_only.iid, "value": 9}]}
    assert json.loads(user.put_json("/characteristics", body).body)["characteristics"][0]["status"] == -70401
    assert admin.put_json("/characteristics", body).status == 204


def test_18_write_response_only_on_wr() -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    t = h.test
    value = base64.b64encode(b"\x01\x02").decode()
    msg = peer.put_json("/characteristics", {"characteristics": [
        {"aid": 1, "iid": t.tlv.iid, "value": value, "r": True},
        {"aid": 1, "iid": t.write_response.iid, "value": value, "r": True}]})
    entries = json.loads(msg.body)["characteristics"]
    assert msg.status == 207
    assert entries[0]["status"] == -70410 and "value" not in entries[0]
    assert entries[1]["status"] == 0 and base64.b64decode(entries[1]["value"]) == b"\x02\x01"


def test_19_timed_writes() -> None:
    h = make_harness()
    peer, data = h.paired_peer()
    other = h.session_peer(data)
    t = h.test
    write = {"characteristics": [{"aid": 1, "iid": t.timed.iid, "value": 1}]}
    # tw characteristic without pid.
    assert chars(peer.put_json("/characteristics", write).body)[t.timed.iid]["status"] == -70410
    # pid prepared on another connection.
    assert json.loads(other.put_json("/prepare", {"ttl": 5000, "pid": 5}).body) == {"status": 0}
    assert chars(peer.put_json("/characteristics", {**write, "pid": 5}).body)[t.timed.iid]["status"] == -70410
    # Expired pid: refused, and a non-tw characteristic in the same batch is not changed either.
    peer.put_json("/prepare", {"ttl": 100, "pid": 6})
    h.clock.advance(0.2)
    both = {"characteristics": [*write["characteristics"], {"aid": 1, "iid": t.on.iid, "value": True}], "pid": 6}
    result = chars(peer.put_json("/characteristics", both).body)
    assert result[t.timed.iid]["status"] == -70410 and result[t.on.iid]["status"] == -70410
    assert t.timed.value == 0 and t.on.value is False
    # Unknown pid.
    assert chars(peer.put_json("/characteristics", {**write, "pid": 99}).body)[t.timed.iid]["status"] == -70410
    # Valid pid, once.
    peer.put_json("/prepare", {"ttl": 5000, "pid": 7})
    assert peer.put_json("/characteristics", {**write, "pid": 7}).status == 204 and t.timed.value == 1
    assert chars(peer.put_json("/characteristics", {**write, "pid": 7}).body)[t.timed.iid]["status"] == -70410
    assert peer.put_json("/prepare", {"ttl": "soon", "pid": 8}).status == 400


def test_20_query_flags() -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    b = h.test.brightness
    plain = json.loads(peer.get_json(f"/characteristics?id=1.{b.iid}").body)["characteristics"][0]
    assert plain == {"aid": 1, "iid": b.iid, "value": 0}
    peer.put_json("/characteristics", {"characteristics": [{"aid": 1, "iid": b.iid, "ev": True}]})
    full = json.loads(peer.get_json(f"/characteristics?id=1.{b.iid}&meta=1&perms=1&type=1&ev=1").body)
    entry = full["characteristics"][0]
    assert entry["format"] == "int" and entry["minValue"] == 0 and entry["maxValue"] == 100
    assert entry["unit"] == "percentage" and entry["perms"] == ["pr", "pw", "ev"]
    assert entry["type"] == "8" and entry["ev"] is True


# -- 21 -----------------------------------------------------------------------------------------
def test_21_event_rules() -> None:
    h = make_harness()
    writer, data = h.paired_peer()
    listener = h.session_peer(data)
    idle = h.session_peer(data)  # never subscribes
    t = h.test
    for p in (writer, listener):
        p.put_json("/characteristics", {"characteristics": [
            {"aid": 1, "iid": c.iid, "ev": True} for c in (t.brightness, t.motion, t.button)]})
    # A write: the listener gets an event, the writer does not.
    writer.put_json("/characteristics", {"characteristics": [{"aid": 1, "iid": t.brightness.iid, "value": 10}]})
    listener.collect()
    assert listener.events == [{"characteristics": [{"aid": 1, "iid": t.brightness.iid, "value": 10}]}]
    assert writer.events == [] and idle.events == []
    # No change, no event.
    t.brightness.set_value(10)
    listener.collect()
    assert len(listener.events) == 1
    # Coalescing: changes within 1 s merge into one event carrying the latest value ...
    t.brightness.set_value(11)
    t.brightness.set_value(12)
    t.motion.set_value(True)
    listener.collect()
    assert len(listener.events) == 1
    assert h.core.next_deadline() == pytest.approx(h.clock() + 1.0)  # the coalescing window
    h.clock.advance(1.0)
    h.core.handle_timers(h.clock())
    listener.collect()
    assert listener.events[-1]["characteristics"] == [
        {"aid": 1, "iid": t.brightness.iid, "value": 12}, {"aid": 1, "iid": t.motion.iid, "value": True}]
    # ... but a button press is never delayed, and a repeated press is still an event.
    t.button.set_value(0)
    t.button.set_value(0)
    listener.collect()
    presses = [e for e in listener.events if e["characteristics"][0]["iid"] == t.button.iid]
    assert len(presses) == 2
    # Unsubscribe: a pending change is dropped and nothing arrives after the response.
    t.brightness.set_value(13)
    listener.put_json("/characteristics", {"characteristics": [{"aid": 1, "iid": t.brightness.iid, "ev": False}]})
    count = len(listener.events)
    h.clock.advance(5)
    h.core.handle_timers(h.clock())
    t.brightness.set_value(14)
    h.clock.advance(5)
    h.core.handle_timers(h.clock())
    listener.collect()
    assert all(c["iid"] != t.brightness.iid for e in listener.events[count:] for c in e["characteristics"])
    # Closed sessions are dropped from the fan-out.
    listener.close()
    t.motion.set_value(False)
    assert listener.conn.id not in h.core.connections
    # Bounded: a storm of changes never queues more entries than there are characteristics.
    storm = h.session_peer(data)
    storm.put_json("/characteristics", {"characteristics": [{"aid": 1, "iid": t.brightness.iid, "ev": True}]})
    for i in range(10_000):
        t.brightness.set_value(i % 100)
    assert len(storm.conn.events) <= 1


# -- 22 / 23 ------------------------------------------------------------------------------------
def test_22_resource_validation() -> None:
    h = make_harness()
    h.core.callbacks.has_resource = True
    peer, _ = h.paired_peer()
    cases = [
        (b"", 400), (b"not json", 400), (b'{"resource-type":"video","image-width":1,"image-height":1}', 404),
        (b'{"resource-type":"image","image-width":0,"image-height":360}', 400),
        (b'{"resource-type":"image","image-width":"640","image-height":360}', 400),
        (b'{"resource-type":"image","image-width":640,"image-height":360,"aid":9}', 404),
        (b'{"resource-type":"image","image-width":640,"image-height":360,"reason":7}', 400),
    ]
    for body, status in cases:
        assert peer.request("POST", "/resource", body).status == status, body
    peer.conn.receive_data(peer.channel.encrypt(peer.encode_request(  # type: ignore[union-attr]
        "POST", "/resource", b'{"resource-type":"image","image-width":640,"image-height":360,"reason":1}')), h.clock())
    assert peer.conn.pending_resource is not None and peer.conn.pending_resource.reason == 1
    # A request queued behind the pending snapshot waits for it (HTTP order is kept).
    peer.conn.receive_data(peer.channel.encrypt(peer.encode_request("GET", "/accessories")), h.clock())  # type: ignore[union-attr]
    assert peer.collect() == []
    peer.conn.complete_resource(b"\xff\xd8jpeg\xff\xd9", None, h.clock())
    responses = peer.collect()
    assert [r.status for r in responses] == [200, 200]
    assert responses[0].headers["content-type"] == "image/jpeg" and responses[0].body.startswith(b"\xff\xd8")


def test_23_identify() -> None:
    h = make_harness()
    identified = []
    h.core.callbacks.on_identify = lambda: identified.append(True)
    msg = h.peer().request("POST", "/identify")
    assert msg.status == 204 and identified == [True]
    h.paired_peer()
    msg = h.peer().request("POST", "/identify")
    assert (msg.status, json.loads(msg.body)) == (400, {"status": -70401})
    assert identified == [True]


# -- 24 -----------------------------------------------------------------------------------------
def test_24_state_file_atomic_private_and_no_secrets_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "acc.json"
    state = AccessoryState.load_or_create(path, PIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    h = make_harness(state=state)
    h.core.callbacks.on_state_dirty = lambda: state.save(path)
    peer, data = h.paired_peer()
    peer.get_json("/accessories")
    reloaded = AccessoryState.load(path)
    assert set(reloaded.pairings) == {data["iOSPairingId"].encode()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["acc.json"]  # no temporary left behind
    secrets_ = [PIN, state.signing_seed.hex(), data["iOSDeviceLTSK"], repr(state.signing_seed)]
    assert peer.conn.session is not None
    secrets_.append(peer.conn.session.shared_secret.hex())
    logged = caplog.text + repr(state) + repr(peer.conn.session)
    for secret in secrets_:
        assert secret not in logged


def test_24_iids_stable_and_config_number_only_on_shape_change() -> None:
    state = AccessoryState.create(setup_code=PIN)
    first = build_test_accessory()
    ServerCore(first.accessory, state, clock=FakeClock())
    c0 = state.config_number
    before = {c.type + str(c.iid) for c in first.accessory.characteristics()}
    # Restart with values changed: same iids, same c#.
    again = build_test_accessory()
    again.brightness.value = 77
    ServerCore(again.accessory, state, clock=FakeClock())
    assert {c.type + str(c.iid) for c in again.accessory.characteristics()} == before
    assert state.config_number == c0
    # A new service: existing iids unchanged, c# bumped once.
    grown = build_test_accessory()
    grown.accessory.services.insert(1, catalog.temperature_sensor())
    ServerCore(grown.accessory, state, clock=FakeClock())
    assert before <= {c.type + str(c.iid) for c in grown.accessory.characteristics()}
    assert state.config_number == c0 + 1


def test_24_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    from sidecar.hap.state import StateError

    path = tmp_path / "acc.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        AccessoryState.load_or_create(path)
    assert path.read_text() == "{not json"  # never silently replaced
    with pytest.raises(StateError):
        AccessoryState.create(setup_code="123-45-678")


def test_close_callbacks_can_be_unregistered() -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    session = peer.conn.session
    assert session is not None
    calls: list[str] = []
    remove = session.add_close_callback(lambda: calls.append("removed"))
    session.add_close_callback(lambda: calls.append("kept"))
    remove()
    peer.close()
    assert calls == ["kept"]
    session.add_close_callback(lambda: calls.append("late"))  # after close: runs at once
    assert calls == ["kept", "late"]


def test_20_escaped_query_parameters() -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    t = h.test
    msg = peer.get_json(f"/characteristics?id=1.{t.on.iid}%2C1.{t.brightness.iid}&meta=1&ev=0")
    entries = json.loads(msg.body)["characteristics"]
    assert msg.status == 200 and [e["iid"] for e in entries] == [t.on.iid, t.brightness.iid]
    assert "format" in entries[0] and "ev" not in entries[0]
    assert peer.get_json("/characteristics?id=1.x").status == 400
    assert peer.get_json("/characteristics?meta=1").status == 400
