"""Fixtures: our HAP server on 127.0.0.1 with the test accessory, and aiohomekit helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohomekit.controller.ip import IpPairing

from sidecar.hap import AccessoryServer, CoreConfig
from tests.support.accessories import TestAccessory, build_test_accessory
from tests.support.hap_client import PIN, aio_pair


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


@pytest.fixture
async def paired(hap_server: Running) -> AsyncIterator[tuple[Running, IpPairing]]:
    pairing = await aio_pair(hap_server.port)
    try:
        yield hap_server, pairing
    finally:
        await pairing.shutdown()
