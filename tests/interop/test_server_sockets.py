"""The asyncio adapter over real loopback sockets, driven by aiohomekit."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from aiohomekit.exceptions import AccessoryDisconnectedError, AuthenticationError
from aiohomekit.zeroconf import HomeKitService
from zeroconf.asyncio import AsyncServiceInfo

from sidecar.hap import AccessoryServer, Advertiser, CoreConfig, HapError, HapStatus
from tests.support.accessories import build_test_accessory
from tests.support.hap_client import PIN, aio_pair, second_session

from .conftest import Running

pytestmark = pytest.mark.interop


async def test_connection_limit_evicts_the_oldest_unverified_socket(tmp_path: Path) -> None:
    test = build_test_accessory()
    server = AccessoryServer(test.accessory, tmp_path / "s.json", name="T", host="127.0.0.1", setup_code=PIN,
                             config=CoreConfig(max_connections=2))
    await server.start()
    writers = []
    try:
        readers = []
        for _ in range(3):
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            readers.append(r)
            writers.append(w)
        with contextlib.suppress(ConnectionResetError):  # aborted by the server to make room
            assert await asyncio.wait_for(readers[0].read(), 5) == b""
        assert len(server.core.connections) == 2
    finally:
        for w in writers:
            w.close()
            await w.wait_closed()
        await server.stop()


async def test_hung_snapshot_times_out_without_stalling_the_server(tmp_path: Path) -> None:
    test = build_test_accessory()
    release = asyncio.Event()
    calls: list[tuple[int, int, Any]] = []

    async def snapshot(width: int, height: int, reason: int | None) -> bytes:
        calls.append((width, height, reason))
        if width == 1:
            raise HapError(HapStatus.NOT_ALLOWED_IN_CURRENT_STATE)
        if width == 2:
            return b"\xff\xd8ok\xff\xd9"
        await release.wait()  # hangs until the test ends
        return b""

    server = AccessoryServer(test.accessory, tmp_path / "s.json", name="T", host="127.0.0.1", setup_code=PIN,
                             resource_handler=snapshot, resource_timeout=0.5)
    await server.start()
    pairing = await aio_pair(server.port)
    other = second_session(pairing.pairing_data)
    try:
        await pairing._ensure_connected()
        hung = asyncio.ensure_future(pairing.connection.post_json(
            "/resource", {"resource-type": "image", "image-width": 640, "image-height": 360}))
        # Meanwhile another session is served at once.
        values = await asyncio.wait_for(other.get_characteristics([(1, test.on.iid)]), 0.4)
        assert values[(1, test.on.iid)]["value"] in (False, 0)
        assert not hung.done()
        assert await asyncio.wait_for(hung, 5) == {"status": -70408}
        assert await other.image(1, 2, 2) == b"\xff\xd8ok\xff\xd9"
        await other._ensure_connected()
        refused = await other.connection.post_json(
            "/resource", {"resource-type": "image", "image-width": 1, "image-height": 1})
        assert refused == {"status": -70412}
        assert calls[0] == (640, 360, None)
    finally:
        release.set()
        await other.shutdown()
        await pairing.shutdown()
        await server.stop()


async def test_removed_controller_loses_its_open_session(paired: tuple[Running, Any]) -> None:
    running, admin = paired
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    user_id = "c0ffee00-0000-4000-8000-000000000001"
    await admin.add_pairing(user_id, pub.hex(), "User")
    user = second_session(dict(admin.pairing_data, iOSPairingId=user_id, iOSDeviceLTSK=seed.hex(),
                               iOSDeviceLTPK=pub.hex()))
    try:
        await user.get_characteristics([(1, running.test.on.iid)])
        assert await admin.remove_pairing(user_id)
        # The server closed the user's connection; aiohomekit's reconnect then fails pair-verify.
        with pytest.raises((AccessoryDisconnectedError, AuthenticationError)):
            await asyncio.wait_for(user.get_characteristics([(1, running.test.on.iid)]), 5)
        assert user_id.encode() not in running.server.state.pairings
    finally:
        await user.shutdown()


async def test_state_survives_restart(tmp_path: Path) -> None:
    test = build_test_accessory()
    path = tmp_path / "s.json"
    server = AccessoryServer(test.accessory, path, name="T", host="127.0.0.1", setup_code=PIN)
    await server.start()
    pairing = await aio_pair(server.port)
    iids = {c.type: c.iid for c in test.accessory.characteristics()}
    device_id = server.state.device_id
    await pairing.shutdown()
    await server.stop()

    again = build_test_accessory()
    server = AccessoryServer(again.accessory, path, name="T", host="127.0.0.1")
    await server.start()
    restarted = second_session(dict(pairing.pairing_data, AccessoryPort=server.port))
    try:
        assert server.state.device_id == device_id and server.setup_code == PIN
        assert {c.type: c.iid for c in again.accessory.characteristics()} == iids
        values = await restarted.get_characteristics([(1, again.text.iid)])
        assert values[(1, again.text.iid)]["value"] == "hello"
    finally:
        await restarted.shutdown()
        await server.stop()


def test_mdns_txt_record_parses_in_aiohomekit(tmp_path: Path) -> None:
    from sidecar.hap.core import ServerCore
    from sidecar.hap.state import AccessoryState

    test = build_test_accessory()
    state = AccessoryState.create(setup_code=PIN)
    core = ServerCore(test.accessory, state, clock=lambda: 0.0)
    txt = core.txt_record()
    advertiser = Advertiser(None, ["127.0.0.1"])  # type: ignore[arg-type]  # no responder needed
    info: AsyncServiceInfo = advertiser.service_info("Front Door", 51826, txt)
    parsed = HomeKitService.from_service_info(info)
    assert parsed.id == state.device_id.lower()
    assert parsed.config_num == state.config_number
    assert parsed.state_num == 1 and parsed.feature_flags == 0 and parsed.status_flags == 1
    assert int(parsed.category) == 17 and parsed.protocol_version == "1.1" and parsed.model == "TA-1"
    assert parsed.address == "127.0.0.1" and parsed.port == 51826
    assert set(txt) == {"c#", "ff", "id", "md", "pv", "s#", "sf", "ci", "sh"}
