"""Benchmark reference server: HAP-python 5.0.0 serving the common benchmark accessory.

Usage: ``python hap_python_server.py PORT STATE_DIR``

Contract shared by every server script in this directory (``hap_bench.py`` relies on it):

* listens on 127.0.0.1:PORT only, setup code ``031-45-154``, unpaired at start (STATE_DIR is fresh);
* prints ``LISTENING 127.0.0.1:PORT`` on stdout once the socket accepts connections;
* exits on SIGTERM;
* no mDNS at all: HAP-python's advertiser is replaced by an object that does nothing, so no
  zeroconf socket is ever opened (the harness pairs by address, never by discovery).

The accessory database (aid 1, 9 services, 22 characteristics; iids are whatever HAP-python assigns,
the harness discovers them by type):

==============================  =====================================================================
service (type)                  characteristics
==============================  =====================================================================
AccessoryInformation (3E)       Identify, Manufacturer, Model, Name, SerialNumber, FirmwareRevision
ProtocolInformation (A2)        Version
Lightbulb (43) "Light"          On, Brightness, Hue, Saturation, Name
Switch (49) "Trigger"           On, Name
StatelessProgrammableSwitch     ProgrammableSwitchEvent, Name
(89) "Button"
MotionSensor (85)               MotionDetected, StatusActive
TemperatureSensor (8A)          CurrentTemperature
HumiditySensor (82)             CurrentRelativeHumidity
Fan (40)                        On, RotationSpeed
==============================  =====================================================================

Semantics the harness measures:

* writing ``On=true`` to the Trigger switch fires ProgrammableSwitchEvent = 0 (single press) on the
  Button, an *immediate* event that HAP servers must not coalesce;
* writing Lightbulb Brightness from one session produces ordinary, coalescable events to every *other*
  session subscribed to Brightness.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from pyhap.accessory import Accessory
from pyhap.accessory_driver import AccessoryDriver
from pyhap.const import CATEGORY_OTHER

SETUP_CODE = b"031-45-154"
HOST = "127.0.0.1"
MAC = "AA:BB:CC:DD:EE:02"


class _NoAdvertiser:
    """Stands in for the AsyncZeroconf that AccessoryDriver would otherwise create.

    AccessoryDriver only calls these four coroutines on its advertiser; passing this object as
    ``async_zeroconf_instance`` means no multicast socket is opened on any interface, which is what the
    workplace rule (loopback only) and a clean CPU measurement both need.
    """

    async def async_register_service(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    async def async_update_service(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    async def async_unregister_service(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    async def async_close(self) -> None:
        return None


def build_accessory(driver: AccessoryDriver) -> Accessory:
    """Build the common benchmark accessory (see the module docstring) with HAP-python's loader."""
    acc = Accessory(driver, "Bench Accessory", aid=1)
    acc.category = CATEGORY_OTHER
    acc.set_info_service(
        firmware_revision="1.0.0",
        manufacturer="hksv-sidecar bench",
        model="HAP-python",
        serial_number="B-0001",
    )

    light = acc.add_preload_service("Lightbulb", chars=["Brightness", "Hue", "Saturation", "Name"])
    light.configure_char("Name", value="Light")
    light.configure_char("Brightness", value=0)

    button = acc.add_preload_service("StatelessProgrammableSwitch", chars=["Name"])
    button.configure_char("Name", value="Button")
    press = button.get_characteristic("ProgrammableSwitchEvent")

    def on_trigger(value: Any) -> None:
        # The Trigger is a momentary input: every write of true is one press, changed or not.
        if value:
            press.set_value(0)

    trigger = acc.add_preload_service("Switch", chars=["Name"])
    trigger.configure_char("Name", value="Trigger")
    trigger.configure_char("On", setter_callback=on_trigger)

    motion = acc.add_preload_service("MotionSensor", chars=["StatusActive"])
    motion.configure_char("StatusActive", value=True)
    temp = acc.add_preload_service("TemperatureSensor")
    temp.configure_char("CurrentTemperature", value=21.5)
    humidity = acc.add_preload_service("HumiditySensor")
    humidity.configure_char("CurrentRelativeHumidity", value=45)
    acc.add_preload_service("Fan", chars=["RotationSpeed"])
    return acc


async def serve(port: int, state_dir: Path) -> None:
    """Run the driver on the current loop until SIGTERM, then stop it cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    driver = AccessoryDriver(
        address=HOST,
        listen_address=HOST,
        port=port,
        persist_file=str(state_dir / "accessory.state"),
        pincode=SETUP_CODE,
        mac=MAC,
        loop=loop,
        async_zeroconf_instance=_NoAdvertiser(),
    )
    driver.add_accessory(build_accessory(driver))
    await driver.async_start()
    print(f"LISTENING {HOST}:{port}", flush=True)
    await stop.wait()
    await driver.async_stop()


def main(argv: list[str]) -> int:
    """Parse ``PORT STATE_DIR`` and serve."""
    if len(argv) != 3:
        print(f"usage: {argv[0]} PORT STATE_DIR", file=sys.stderr)
        return 2
    state_dir = Path(argv[2])
    state_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(int(argv[1]), state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
