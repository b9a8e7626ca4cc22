"""A test accessory exercising every characteristic feature the HAP server supports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar.hap import (
    Accessory,
    Characteristic,
    Format,
    HapError,
    HapStatus,
    Service,
    WriteContext,
    catalog,
    perms,
)

CUSTOM_SERVICE = "00000001-0000-1000-8000-AABBCCDDEEFF"
STRING_CHAR = "00000002-0000-1000-8000-AABBCCDDEEFF"
TLV_CHAR = "00000003-0000-1000-8000-AABBCCDDEEFF"
WR_CHAR = "00000004-0000-1000-8000-AABBCCDDEEFF"
TIMED_CHAR = "00000005-0000-1000-8000-AABBCCDDEEFF"
ADMIN_CHAR = "00000006-0000-1000-8000-AABBCCDDEEFF"
REJECT_CHAR = "00000007-0000-1000-8000-AABBCCDDEEFF"


@dataclass
class TestAccessory:
    accessory: Accessory
    on: Characteristic
    brightness: Characteristic
    hue: Characteristic
    text: Characteristic
    tlv: Characteristic
    write_response: Characteristic
    timed: Characteristic
    admin_only: Characteristic
    reject: Characteristic
    motion: Characteristic
    button: Characteristic
    trigger: Characteristic
    identify: Characteristic
    manufacturer: Characteristic


def build_test_accessory() -> TestAccessory:
    info = catalog.accessory_information("Test Accessory", model="TA-1", serial="42")
    bulb = catalog.lightbulb()
    motion = catalog.motion_sensor()
    button = catalog.stateless_programmable_switch()
    trigger = catalog.switch(key="trigger")
    text = Characteristic(STRING_CHAR, Format.STRING, perms("pr", "pw", "ev"), value="hello", max_len=16)
    tlv = Characteristic(TLV_CHAR, Format.TLV8, perms("pr", "pw", "ev"), value=b"\x01\x01\x07")

    def answer(value: Any, ctx: WriteContext) -> bytes:
        return bytes(reversed(value))

    wr = Characteristic(WR_CHAR, Format.TLV8, perms("pr", "pw", "wr"), on_write=answer)
    timed = Characteristic(TIMED_CHAR, Format.UINT8, perms("pr", "pw", "ev", "tw"), valid_values=(0, 1))
    admin_only = Characteristic(ADMIN_CHAR, Format.UINT8, perms("pr", "pw", "ev"), admin_write=True)

    def refuse(value: Any, ctx: WriteContext) -> None:
        if value == 13:
            raise HapError(HapStatus.NOT_ALLOWED_IN_CURRENT_STATE)

    reject = Characteristic(REJECT_CHAR, Format.UINT8, perms("pr", "pw"), on_write=refuse)
    custom = Service(CUSTOM_SERVICE, [text, tlv, wr, timed, admin_only, reject])
    accessory = Accessory(aid=1, category=17).add(info, bulb, motion, button, trigger, custom)
    bulb.primary = True
    custom.link(bulb)
    press = button.characteristics[0]

    trigger_on = trigger.characteristics[0]

    def fire(value: Any, ctx: WriteContext) -> None:
        if value:
            press.set_value(0)

    trigger_on.on_write = fire
    return TestAccessory(
        accessory=accessory,
        on=bulb.get("25"),
        brightness=bulb.get("8"),
        hue=bulb.get("13"),
        text=text,
        tlv=tlv,
        write_response=wr,
        timed=timed,
        admin_only=admin_only,
        reject=reject,
        motion=motion.get("22"),
        button=press,
        trigger=trigger_on,
        identify=info.get("14"),
        manufacturer=info.get("20"),
    )
