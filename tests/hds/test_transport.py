"""DataStreamTransportManagement: setup validation (-70410), responses, prepared sessions."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from sidecar import tlv8
from sidecar.hds import transport
from sidecar.hds.errors import SetupError
from sidecar.hds.transport import TransportManager, parse_setup_write
from tests.hub.hds_client import build_setup_write, parse_setup_response

from .peers import ACCESSORY_SALT, CONTROLLER_SALT, SECRET, make_pair


def test_constants() -> None:
    assert base64.b64encode(transport.SUPPORTED_CONFIGURATION).decode() == transport.SUPPORTED_CONFIGURATION_B64
    assert transport.SUPPORTED_CONFIGURATION_B64 == "AQMBAQA="
    assert transport.VERSION == "1.0"


def test_real_hub_write_shape_is_accepted() -> None:
    value = bytes.fromhex("010100020100") + b"\x03\x20" + CONTROLLER_SALT
    assert len(value) == 40
    assert parse_setup_write(value).controller_salt == CONTROLLER_SALT
    assert parse_setup_write(base64.b64encode(value).decode()).controller_salt == CONTROLLER_SALT


@pytest.mark.parametrize(
    "value",
    [
        build_setup_write(CONTROLLER_SALT, command=1),
        build_setup_write(CONTROLLER_SALT, transport=1),
        build_setup_write(CONTROLLER_SALT[:31]),
        build_setup_write(CONTROLLER_SALT + b"\x00"),
        tlv8.encode([(2, 0), (3, CONTROLLER_SALT)]),  # no command
        tlv8.encode([(1, 0), (3, CONTROLLER_SALT)]),  # no transport
        tlv8.encode([(1, 0), (2, 0)]),  # no salt
        tlv8.encode([(1, b"\x00\x00"), (2, 0), (3, CONTROLLER_SALT)]),  # 2-byte command
        b"\x01",  # truncated TLV
        b"",
        "not base64!",
    ],
)
def test_bad_writes_raise_setup_error(value: bytes | str) -> None:
    with pytest.raises(SetupError):
        parse_setup_write(value)
    with pytest.raises(SetupError):
        TransportManager().setup(value, shared_secret=SECRET, port=40000, now=0.0)


def test_write_response_layout_and_read_back() -> None:
    manager = TransportManager(random_bytes=lambda n: ACCESSORY_SALT[:n])
    assert manager.read_value() == b""
    response = manager.setup(build_setup_write(CONTROLLER_SALT), shared_secret=SECRET, port=42745, now=0.0)
    assert response == bytes.fromhex("010100020401 02f9a6 0320".replace(" ", "")) + ACCESSORY_SALT
    parsed = parse_setup_response(response)
    assert (parsed.status, parsed.port, parsed.accessory_salt) == (0, 42745, ACCESSORY_SALT)
    assert manager.read_value() == bytes.fromhex("01010002040102f9a6")


def test_every_setup_gets_a_fresh_salt() -> None:
    manager = TransportManager()
    salts = {
        parse_setup_response(
            manager.setup(build_setup_write(CONTROLLER_SALT), shared_secret=SECRET, port=40000, now=0.0)
        ).accessory_salt
        for _ in range(5)
    }
    assert len(salts) == 5 and manager.pending == 5


def test_empty_shared_secret_is_refused() -> None:
    with pytest.raises(SetupError):
        TransportManager().setup(build_setup_write(CONTROLLER_SALT), shared_secret=b"", port=40000, now=0.0)


def test_prepared_session_expires_after_10_s() -> None:
    pair = make_pair(now=0.0)
    assert pair.manager.next_deadline() == 10.0
    pair.manager.expire(9.99)
    assert pair.manager.pending == 1
    # a hello arriving after expiry matches nothing
    pair.conn.receive_data(pair.hub.hello(), 10.0)
    assert pair.conn.closed and pair.manager.pending == 0


def test_hap_close_before_connect_discards_the_session() -> None:
    pair = make_pair()
    (hook,) = pair.hap_close_callbacks
    hook()
    assert pair.manager.pending == 0
    pair.conn.receive_data(pair.hub.hello(), 1.0)
    assert pair.conn.closed


def test_hap_close_after_connect_closes_the_bound_connection() -> None:
    pair = make_pair()
    pair.exchange(pair.hub.hello())
    events = pair.conn.events()
    session = events[0].session  # type: ignore[union-attr]
    closed: list[str] = []
    session.bind(lambda: closed.append("closed"))
    (hook,) = pair.hap_close_callbacks
    hook()
    hook()  # a second call is harmless
    assert closed == ["closed"]


def test_unregister_is_called_when_the_session_is_done() -> None:
    unregistered: list[int] = []
    hooks: list[Callable[[], None]] = []

    def register(callback: Callable[[], None]) -> Callable[[], None]:
        hooks.append(callback)
        return lambda: unregistered.append(1)

    manager = TransportManager()
    manager.setup(build_setup_write(CONTROLLER_SALT), shared_secret=SECRET, port=40000, now=0.0, on_hap_close=register)
    manager.expire(11.0)
    assert unregistered == [1]
    hooks[0]()  # the hook is an empty shell now: nothing happens
    assert manager.pending == 0


def test_pending_sessions_are_bounded() -> None:
    manager = TransportManager(max_pending=3)
    for _ in range(10):
        manager.setup(build_setup_write(CONTROLLER_SALT), shared_secret=SECRET, port=40000, now=0.0)
    assert manager.pending == 3


def test_two_hubs_each_match_their_own_session() -> None:
    pair = make_pair()
    hub2, conn2, _ = pair.another_connection(secret=b"\x02" * 32)
    assert pair.manager.pending == 2
    conn2.receive_data(hub2.hello(), 0.0)
    assert conn2.state == "ready"
    pair.conn.receive_data(pair.hub.hello(), 0.0)
    assert pair.conn.state == "ready"
    assert pair.manager.pending == 0
