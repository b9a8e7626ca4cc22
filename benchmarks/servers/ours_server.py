"""Benchmark server: hksv-sidecar's own HAP server serving the common benchmark accessory.

Usage: ``python ours_server.py PORT STATE_DIR``

Same contract and database as ``hap_python_server.py`` (see its docstring): 127.0.0.1:PORT,
setup code 031-45-154, fresh state, ``LISTENING 127.0.0.1:PORT`` when ready, exits on SIGTERM,
no mDNS. Writing Trigger On=true fires ProgrammableSwitchEvent 0 on the Button (immediate);
Brightness writes are ordinary coalesced events for the other subscribed sessions.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from sidecar.hap import Accessory, AccessoryServer, Characteristic, Format, Service, WriteContext, catalog, perms

PIN = "031-45-154"


def build() -> Accessory:
    light = catalog.lightbulb(key="light").add(catalog.name("Light"))
    trigger = catalog.switch(key="trigger").add(catalog.name("Trigger"))
    button = catalog.stateless_programmable_switch(key="button").add(catalog.name("Button"))
    press = button.characteristics[0]

    def fire(value: Any, ctx: WriteContext) -> None:
        if value:
            press.set_value(0)

    trigger.characteristics[0].on_write = fire
    humidity = Service(
        "82",
        [
            Characteristic(
                "10", Format.FLOAT, perms("pr", "ev"), min_value=0, max_value=100, min_step=1, unit="percentage"
            )
        ],
    )
    fan = Service(
        "40",
        [
            Characteristic("25", Format.BOOL, perms("pr", "pw", "ev")),
            Characteristic(
                "29", Format.FLOAT, perms("pr", "pw", "ev"), min_value=0, max_value=100, min_step=1, unit="percentage"
            ),
        ],
    )
    return Accessory(category=1).add(
        catalog.accessory_information("Bench", model="bench"),
        catalog.protocol_information(),
        light,
        trigger,
        button,
        catalog.motion_sensor(),
        catalog.temperature_sensor(),
        humidity,
        fan,
    )


async def main(port: int, state_dir: Path) -> None:
    server = AccessoryServer(
        build(), state_dir / "bench.json", name="Bench", host="127.0.0.1", port=port, setup_code=PIN
    )
    await server.start()
    print(f"LISTENING 127.0.0.1:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
