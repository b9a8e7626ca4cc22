"""Runs inside a private network namespace (see test_mdns_namespace.py): our server advertises
over mDNS on that namespace's loopback only, aiohomekit discovers it, pairs, and sees the TXT
record change from unpaired (sf=1) to paired (sf=0). Prints one JSON line of findings."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from aiohomekit import Controller
from aiohomekit.zeroconf import HAP_TYPE_TCP, HAP_TYPE_UDP, ZeroconfServiceListener
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from sidecar.hap import AccessoryServer, Advertiser, open_zeroconf
from tests.support.accessories import build_test_accessory

PIN = "031-45-154"


async def txt_of(zc: AsyncZeroconf, name: str) -> dict[str, str]:
    info = AsyncServiceInfo(HAP_TYPE_TCP, name)
    await info.async_request(zc.zeroconf, 3000)
    return {k: v for k, v in info.decoded_properties.items() if v is not None}


async def main() -> None:
    server_zc = open_zeroconf(["127.0.0.1"])
    test = build_test_accessory()
    with tempfile.TemporaryDirectory() as tmp:
        server = AccessoryServer(test.accessory, Path(tmp) / "s.json", name="Netns Camera", host="127.0.0.1",
                                 setup_code=PIN, advertiser=Advertiser(server_zc, ["127.0.0.1"]))
        await server.start()
        client_zc = AsyncZeroconf(interfaces=["127.0.0.1"])
        browser = AsyncServiceBrowser(client_zc.zeroconf, [HAP_TYPE_TCP, HAP_TYPE_UDP],
                                      listener=ZeroconfServiceListener())
        result: dict[str, object] = {}
        try:
            async with Controller(async_zeroconf_instance=client_zc) as controller:
                discovery = await controller.async_find(server.state.device_id, timeout=10)
                desc = discovery.description
                result["found"] = {"id": desc.id, "sf": int(desc.status_flags), "c#": desc.config_num,
                                   "port": desc.port, "name": desc.name}
                pairing = await discovery.async_start_pairing("netns")
                paired = await pairing(PIN)
                await paired.list_accessories_and_characteristics()
                for _ in range(50):  # the TXT update goes out after the M6 response
                    txt = await txt_of(client_zc, f"{desc.name}.{HAP_TYPE_TCP}")
                    if txt.get("sf") == "0":
                        break
                    await asyncio.sleep(0.1)
                result["after_pairing"] = txt
                await paired.remove_pairing(paired.pairing_data["iOSPairingId"])
                await paired.shutdown()
                await discovery.close()
        finally:
            await browser.async_cancel()
            await client_zc.async_close()
            await server.stop()
            await server_zc.async_close()
    print(json.dumps(result), flush=True)


asyncio.run(main())
