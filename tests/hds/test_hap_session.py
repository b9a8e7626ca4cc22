"""HDS set up through a real HAP session: aiohomekit 4.0.1 pairs and pair-verifies with our HAP
server, writes SetupDataStreamTransport with ``"r": true``, and the hub-side client connects
with keys derived controller-side from that session's pair-verify secret.

The accessory built here is also the reference glue for the camera layer: a
DataStreamTransportManagement service whose 0x131 write handler calls ``HDSServer.setup`` with
``ctx.session.shared_secret`` and ``ctx.session.add_close_callback``, and maps SetupError to
-70410.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohomekit.controller.ip import IpPairing

from sidecar.hap import (
    Accessory,
    AccessoryServer,
    Characteristic,
    Format,
    HapError,
    HapStatus,
    ReadContext,
    Service,
    WriteContext,
    catalog,
    perms,
)
from sidecar.hds import (
    SUPPORTED_CONFIGURATION,
    VERSION,
    CloseReason,
    HDSServer,
    SetupError,
)
from tests.hub.hap_setup import DeriveCapture, controller_hds_keys
from tests.hub.hds_client import HubDataStreamClient, build_setup_write, parse_setup_response
from tests.support.hap_client import aio_pair
from tests.support.hds_loopback import Camera

from .peers import Gate

pytestmark = pytest.mark.interop

PIN = "031-45-154"
HOST = "127.0.0.1"


def data_stream_service(hds: HDSServer) -> tuple[Service, Characteristic]:
    """DataStreamTransportManagement (0x129), glued to ``hds`` the way the camera layer should."""

    def on_setup_write(value: Any, ctx: WriteContext) -> bytes:
        try:
            return hds.setup(
                value, shared_secret=ctx.session.shared_secret, on_hap_close=ctx.session.add_close_callback
            )
        except SetupError:
            raise HapError(HapStatus.INVALID_VALUE) from None

    def on_setup_read(ctx: ReadContext) -> bytes:
        return hds.read_value()

    setup = Characteristic("131", Format.TLV8, perms("pr", "pw", "wr"), on_write=on_setup_write, on_read=on_setup_read)
    service = Service(
        "129",
        [
            Characteristic("130", Format.TLV8, perms("pr"), value=SUPPORTED_CONFIGURATION),
            setup,
            Characteristic("37", Format.STRING, perms("pr"), value=VERSION),
        ],
    )
    return service, setup


class HapSessionRig:
    def __init__(
        self,
        hds: HDSServer,
        hap: AccessoryServer,
        setup: Characteristic,
        pairing: IpPairing,
        capture: DeriveCapture,
        camera: Camera,
    ) -> None:
        self.hds, self.hap, self.setup, self.pairing, self.capture, self.camera = (
            hds,
            hap,
            setup,
            pairing,
            capture,
            camera,
        )

    async def setup_write(self, value: bytes) -> dict[str, Any]:
        await self.pairing._ensure_connected()
        reply = await self.pairing.connection.put_json(
            "/characteristics",
            {
                "characteristics": [
                    {"aid": 1, "iid": self.setup.iid, "value": base64.b64encode(value).decode(), "r": True}
                ]
            },
        )
        entry: dict[str, Any] = reply["characteristics"][0]
        return entry

    async def hds_client(self) -> HubDataStreamClient:
        controller_salt = os.urandom(32)
        entry = await self.setup_write(build_setup_write(controller_salt))
        assert entry["status"] == 0
        response = parse_setup_response(base64.b64decode(entry["value"]))
        assert response.status == 0 and response.port >= 32768 and len(response.accessory_salt) == 32
        session_keys = controller_hds_keys(self.capture.derives[-1], controller_salt, response.accessory_salt)
        reader, writer = await asyncio.open_connection(HOST, response.port)
        return HubDataStreamClient(reader, writer, session_keys)


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HapSessionRig]:
    capture = DeriveCapture.install(monkeypatch)
    camera = Camera(fragments=[b"\x01" * 300_000, b"\x02" * 1000])
    hds = HDSServer(Gate(), camera.on_stream, host=HOST)
    service, setup = data_stream_service(hds)
    accessory = Accessory(aid=1, category=17).add(catalog.accessory_information("HDS camera"), service)
    hap = AccessoryServer(accessory, tmp_path / "state.json", name="HDS camera", host=HOST, setup_code=PIN)
    await hap.start()
    pairing: IpPairing | None = None
    try:
        pairing = await aio_pair(hap.port, PIN)
        yield HapSessionRig(hds, hap, setup, pairing, capture, camera)
    finally:
        if pairing is not None:
            await pairing.shutdown()
        await camera.stop()
        await hds.aclose()
        await hap.stop()


async def test_pair_verify_setup_write_hello_open_data_close(rig: HapSessionRig) -> None:
    client = await rig.hds_client()
    try:
        assert (await client.hello()).header.status == 0
        assert (await client.open(3)).body == {"status": 0}
        fragments, _ = await client.collect(3, fragments=3)
        assert [f.sequence for f in fragments] == [1, 2, 3]
        assert [bytes(f.data) for f in fragments[1:]] == rig.camera.fragments
        await client.close_stream(3, CloseReason.NORMAL)
        async with asyncio.timeout(5):
            await rig.camera.streams[0].wait_closed()
        assert rig.camera.streams[0].closed_by == "hub"
    finally:
        await client.aclose()


async def test_setup_read_back_and_bad_write(rig: HapSessionRig) -> None:
    bad = await rig.setup_write(build_setup_write(b"\x00" * 31))
    assert bad["status"] == HapStatus.INVALID_VALUE
    bad = await rig.setup_write(build_setup_write(b"\x00" * 32, command=1))
    assert bad["status"] == HapStatus.INVALID_VALUE
    client = await rig.hds_client()
    await client.aclose()
    values = await rig.pairing.get_characteristics([(1, rig.setup.iid)])
    read_back = base64.b64decode(values[(1, rig.setup.iid)]["value"])
    assert parse_setup_response(read_back).port == rig.hds.port
    assert parse_setup_response(read_back).accessory_salt == b""  # never the salt on a read


async def test_hap_session_closing_closes_the_hds_connection(rig: HapSessionRig) -> None:
    client = await rig.hds_client()
    try:
        await client.hello()
        await client.open(1)
        async with asyncio.timeout(5):
            await rig.camera.opened.wait()
        await rig.pairing.close()  # the hub drops its HAP connection
        assert await client.wait_eof()
        async with asyncio.timeout(5):
            await rig.camera.streams[0].wait_closed()
        assert rig.camera.streams[0].closed_by == "connection"
    finally:
        await client.aclose()


async def test_keys_from_another_hap_session_do_not_match(rig: HapSessionRig) -> None:
    controller_salt = os.urandom(32)
    entry = await rig.setup_write(build_setup_write(controller_salt))
    response = parse_setup_response(base64.b64decode(entry["value"]))
    wrong = controller_hds_keys(lambda salt, info: bytes(32), controller_salt, response.accessory_salt)
    reader, writer = await asyncio.open_connection(HOST, response.port)
    client = HubDataStreamClient(reader, writer, wrong)
    try:
        await client.send_request("control", "hello", {})
        assert await client.wait_eof()
    finally:
        await client.aclose()
