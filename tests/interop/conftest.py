"""Fixtures: our HAP server on 127.0.0.1 with the test accessory, and aiohomekit helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohomekit import Controller
from aiohomekit.controller.ip import IpDiscovery, IpPairing
from aiohomekit.model.categories import Categories
from aiohomekit.model.feature_flags import FeatureFlags
from aiohomekit.model.status_flags import StatusFlags
from aiohomekit.zeroconf import HomeKitService

from sidecar.hap import AccessoryServer, CoreConfig
from tests.hap.accessories import TestAccessory, build_test_accessory

PIN = "031-45-154"


class Running:
    def __init__(self, server: AccessoryServer, test: TestAccessory) -> None:
        self.server = server
        self.test = test

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
async def hap_server(tmp_path: Path) -> AsyncIterator[Running]:
    test = build_test_accessory()
    server = AccessoryServer(
        test.accessory, tmp_path / "state.json", name="Test", host="127.0.0.1", setup_code=PIN,
        config=CoreConfig(event_interval=0.2),
    )
    await server.start()
    try:
        yield Running(server, test)
    finally:
        await server.stop()


def description(port: int, *, with_auth: bool = False) -> HomeKitService:
    return HomeKitService(
        name="dut", id="00:00:00:00:00:00", model="",
        feature_flags=FeatureFlags(1 if with_auth else 0),
        status_flags=StatusFlags.UNPAIRED, config_num=1, state_num=1,
        category=Categories.OTHER, protocol_version="1.1", type="_hap._tcp.local.",
        address="127.0.0.1", addresses=["127.0.0.1"], port=port,
    )


async def aio_pair(port: int, pin: str = PIN, *, with_auth: bool = False) -> IpPairing:
    """Pair with aiohomekit exactly as a user would with a setup code (no mDNS involved)."""
    discovery = IpDiscovery(Controller(), description(port, with_auth=with_auth))
    try:
        finish = await discovery.async_start_pairing("dut")
        return await finish(pin)
    finally:
        await discovery.close()


@pytest.fixture
async def paired(hap_server: Running) -> AsyncIterator[tuple[Running, IpPairing]]:
    pairing = await aio_pair(hap_server.port)
    try:
        yield hap_server, pairing
    finally:
        await pairing.shutdown()


def second_session(pairing_data: dict[str, Any]) -> IpPairing:
    return IpPairing(Controller(), dict(pairing_data))
