"""Item 25: hostile bytes at every parser. Any input ends in an error answer or a closed
connection; no exception escapes the core and the server keeps serving other connections."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sidecar import tlv8
from sidecar.hap.pair_setup import PairSetup
from sidecar.hap.pair_verify import PairVerify
from sidecar.hap.pairing_tlv import T
from sidecar.hap.pairings import handle_pairings
from sidecar.hap.secure_channel import SecureChannel, SecureChannelError
from sidecar.hap.state import AccessoryState, Pairing, StateError

from .memory import PIN, Harness, Peer, make_harness

STATE = AccessoryState.create(setup_code=PIN)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

tlv_items = st.lists(
    st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 0x13, 0xFF, 0x42]),
              st.one_of(st.binary(max_size=40), st.binary(min_size=250, max_size=600),
                        st.sampled_from([b"\x01", b"\x03", b"\x05", b"\x00"]))),
    max_size=6,
)


@FUZZ
@given(tlv_items, st.binary(max_size=300))
def test_pair_setup_answers_every_input_with_a_tlv(items: list[tuple[int, bytes]], noise: bytes) -> None:
    setup = PairSetup(AccessoryState.create(setup_code=PIN))
    for body in (tlv8.encode(items), noise):
        result = setup.handle(1, body, now=0.0)
        assert T.STATE in tlv8.decode_dict(result.body)


@FUZZ
@given(tlv_items, st.binary(max_size=300))
def test_pair_verify_answers_every_input_with_a_tlv(items: list[tuple[int, bytes]], noise: bytes) -> None:
    verify = PairVerify(STATE)
    for body in (tlv8.encode(items), noise):
        result = verify.handle(body)
        assert result.keys is None
        assert T.STATE in tlv8.decode_dict(result.body)


@FUZZ
@given(tlv_items)
def test_pairings_answers_every_input(items: list[tuple[int, bytes]]) -> None:
    state = AccessoryState.create(setup_code=PIN)
    from sidecar.hap.state import Pairing

    state.pairings[b"admin"] = Pairing(b"admin", b"\x01" * 32, True)
    result = handle_pairings(state, b"admin", tlv8.encode(items))
    assert T.STATE in tlv8.decode_dict(result.body)


@FUZZ
@given(st.binary(max_size=3000), st.integers(1, 200))
def test_secure_channel_only_raises_its_own_error(data: bytes, split: int) -> None:
    channel = SecureChannel(b"a" * 32, b"b" * 32)
    try:
        for i in range(0, len(data), split):
            channel.decrypt(data[i : i + split])
    except SecureChannelError:
        pass
    assert channel.buffered <= 2 + 1024 + 16


http_lines = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda method, path, headers, body: (
            f"{method} {path} HTTP/1.1\r\n".encode() + headers + b"\r\n" + body),
        st.sampled_from(["GET", "PUT", "POST", "DELETE", "G\x00T"]),
        st.sampled_from(["/accessories", "/characteristics?id=1.2", "/characteristics?id=x", "/pair-setup",
                         "/pair-verify", "/identify", "/pairings", "/resource", "/prepare", "*", "/%%"]),
        st.sampled_from([b"Host: x\r\n", b"Host: x\r\nContent-Length: 5\r\n", b"Content-Length: -1\r\n",
                         b"Host: x\r\nTransfer-Encoding: chunked\r\n", b"Host: x\r\nContent-Length: 99999999\r\n"]),
        st.binary(max_size=200),
    ),
)


@FUZZ
@given(st.lists(http_lines, min_size=1, max_size=4), st.integers(1, 64))
def test_plaintext_http_never_crashes_the_core(chunks: list[bytes], split: int) -> None:
    h = make_harness()
    peer = h.peer()
    data = b"".join(chunks)
    for i in range(0, len(data), split):
        peer.conn.receive_data(data[i : i + split], h.clock())
        out = peer.conn.data_to_send()
        peer.conn.sent()
        assert out == b"" or out.startswith(b"HTTP/1.1 ")
    assert not h.state.paired
    # The server still serves a well-behaved client afterwards.
    assert h.peer().request("POST", "/identify").status == 204


_SESSION: list[Peer] = []


def _shared_session() -> Peer:
    """Pairing costs ~0.2 s; one verified session serves every example of the write fuzzer."""
    if not _SESSION:
        _SESSION.append(make_harness().paired_peer()[0])
    return _SESSION[0]


@FUZZ
@given(st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["aid", "iid", "value", "ev", "r", "x"]),
                    st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.text(max_size=10),
                              st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)), max_size=5),
    st.integers(), st.text(max_size=5)), max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=3)))
def test_characteristic_writes_never_crash(items: list[object], pid: object) -> None:
    peer = _shared_session()
    body = json.dumps({"characteristics": items, "pid": pid}).encode()
    msg = peer.request("PUT", "/characteristics", body)
    assert msg.status in (204, 207, 400)
    assert peer.get_json("/accessories").status == 200


@FUZZ
@given(st.lists(http_lines, min_size=1, max_size=3), st.integers(1, 300))
def test_encrypted_http_never_crashes_the_core(chunks: list[bytes], split: int) -> None:
    """The same hostile HTTP, but inside a verified session (the authenticated attack surface)."""
    harness, data = _shared_harness()
    peer = harness.session_peer(data)
    assert peer.channel is not None
    sealed = peer.channel.encrypt(b"".join(chunks))
    for i in range(0, len(sealed), split):
        peer.conn.receive_data(sealed[i : i + split], harness.clock())
        out = peer.conn.data_to_send()
        peer.conn.sent()
        if out:
            for msg in peer.channel.decrypt(out).split(b"HTTP/1.1 ")[1:]:
                assert msg[:3].isdigit()
    peer.close()
    healthy = harness.session_peer(data)
    assert healthy.get_json("/accessories").status == 200
    healthy.close()


_HARNESS: list[tuple[Harness, dict[str, object]]] = []


def _shared_harness() -> tuple[Harness, dict[str, object]]:
    if not _HARNESS:
        h = make_harness()
        _, data = h.paired_peer()
        _HARNESS.append((h, data))
    return _HARNESS[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                         max_size=6),
                              max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_state_file_loader_raises_only_state_error(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    """Whatever a damaged disk or a user's editor leaves in a state file, loading it raises
    StateError (the camera is skipped with a message), never another exception."""
    path = tmp_path_factory.mktemp("state") / "cam.json"
    path.write_bytes(raw)
    with contextlib.suppress(StateError):
        AccessoryState.load(path)


_JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.just(float("inf"))
                        | st.text(max_size=40),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(AccessoryState.create().to_json())), _JSONISH, st.booleans())
@example("failed_attempts", float("inf"), False)  # int(inf) is an OverflowError, not a ValueError
@example("iids", {"a": [1]}, False)
def test_state_with_one_field_damaged_raises_only_state_error(key: str, value: object, drop: bool) -> None:
    """A valid state with one field replaced by any JSON value (or missing)."""
    state = AccessoryState.create()
    state.pairings[b"ctrl"] = Pairing(b"ctrl", bytes(32), True)
    data = state.to_json()
    if drop:
        del data[key]
    else:
        data[key] = value
    try:
        loaded = AccessoryState.from_json(json.loads(json.dumps(data)))
    except StateError:
        return
    assert len(loaded.signing_seed) == 32
