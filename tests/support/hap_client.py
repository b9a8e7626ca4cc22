"""aiohomekit as the controller: pair with a setup code over loopback (no mDNS involved)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohomekit import Controller
from aiohomekit.controller.ip import IpDiscovery, IpPairing
from aiohomekit.model.categories import Categories
from aiohomekit.model.feature_flags import FeatureFlags
from aiohomekit.model.status_flags import StatusFlags
from aiohomekit.zeroconf import HomeKitService

__all__ = ["PIN", "CharacteristicWatch", "aio_pair", "description", "pair_off_loop", "second_session",
           "unverified_status", "watch"]

PIN = "031-45-154"


def description(port: int, *, with_auth: bool = False) -> HomeKitService:
    return HomeKitService(
        name="dut", id="00:00:00:00:00:00", model="",
        feature_flags=FeatureFlags(1 if with_auth else 0),
        status_flags=StatusFlags.UNPAIRED, config_num=1, state_num=1,
        category=Categories.OTHER, protocol_version="1.1", type="_hap._tcp.local.",
        address="127.0.0.1", addresses=["127.0.0.1"], port=port,
    )


async def unverified_status(port: int) -> bytes:
    """The status line the accessory on ``port`` answers ``GET /accessories`` with on a connection
    that never verified (HAP's 470: connection authorization required)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /accessories HTTP/1.1\r\nHost: dut\r\n\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        await writer.wait_closed()


async def aio_pair(port: int, pin: str = PIN, *, with_auth: bool = False) -> IpPairing:
    """Pair with aiohomekit exactly as a user would with a setup code (no mDNS involved)."""
    discovery = IpDiscovery(Controller(), description(port, with_auth=with_auth))
    try:
        finish = await discovery.async_start_pairing("dut")
        return await finish(pin)
    finally:
        await discovery.close()


def second_session(pairing_data: dict[str, Any]) -> IpPairing:
    """Another HAP session of the same controller (its own connection, same keys)."""
    return IpPairing(Controller(), dict(pairing_data))


async def pair_off_loop(port: int, pin: str) -> dict[str, Any]:
    """Pair-setup with aiohomekit in a thread with its own loop; returns the pairing data.

    aiohomekit's SRP runs in the caller's loop (about 0.2 s of CPU, several times that on a
    loaded machine), which the suite's loop-blocking check would report. Pair-verify (what
    ``second_session`` does with the data) is fast enough for the test's loop.
    """

    async def pair() -> dict[str, Any]:
        pairing = await aio_pair(port, pin)
        data = dict(pairing.pairing_data)
        await pairing.shutdown()
        return data

    with ThreadPoolExecutor(1) as pool:  # its own thread, joined here: no thread outlives the test
        return await asyncio.get_running_loop().run_in_executor(pool, asyncio.run, pair())


class CharacteristicWatch:
    """The values an aiohomekit subscriber receives for one characteristic (aid 1), in order;
    ``arrived`` is set at each one (clear it to wait for the next)."""

    def __init__(self, iid: int) -> None:
        self.iid = iid
        self.seen: list[Any] = []
        self.arrived = asyncio.Event()

    def __call__(self, events: dict[tuple[int, int], dict[str, Any]]) -> None:
        if (1, self.iid) in events:
            self.seen.append(events[(1, self.iid)]["value"])
            self.arrived.set()


async def watch(pairing: IpPairing, iid: int) -> CharacteristicWatch:
    """Subscribe ``pairing`` to characteristic ``iid`` of accessory 1 and collect its events."""
    watcher = CharacteristicWatch(iid)
    pairing.dispatcher_connect(watcher)
    await pairing.subscribe([(1, iid)])
    return watcher
