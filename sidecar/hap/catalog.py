"""Factories for the Apple-defined services and characteristics the sidecar uses.

Formats, permissions and ranges follow the HAP definitions as HAP-NodeJS ships them (the form
proven with real hubs). Layers above add their own (camera services) the same way.
"""

from __future__ import annotations

from typing import Any

from .model import Characteristic, Format, Service, perms

__all__ = [
    "accessory_information",
    "lightbulb",
    "motion_sensor",
    "name",
    "programmable_switch_event",
    "protocol_information",
    "stateless_programmable_switch",
    "switch",
    "temperature_sensor",
]

PR = perms("pr")
PR_EV = perms("pr", "ev")
PR_PW_EV = perms("pr", "pw", "ev")


def name(value: str) -> Characteristic:
    return Characteristic("23", Format.STRING, PR, value=value)


def accessory_information(
    display_name: str,
    manufacturer: str = "hksv-sidecar",
    model: str = "hksv-sidecar",
    serial: str = "0",
    firmware: str = "0.1.0",
    **extra: Any,
) -> Service:
    return Service(
        "3E",
        [
            Characteristic("14", Format.BOOL, perms("pw"), **extra),
            Characteristic("20", Format.STRING, PR, value=manufacturer),
            Characteristic("21", Format.STRING, PR, value=model),
            name(display_name),
            Characteristic("30", Format.STRING, PR, value=serial),
            Characteristic("52", Format.STRING, PR, value=firmware),
        ],
    )


def protocol_information(version: str = "1.1.0") -> Service:
    return Service("A2", [Characteristic("37", Format.STRING, PR, value=version)])


def motion_sensor(key: str = "") -> Service:
    return Service(
        "85",
        [
            Characteristic("22", Format.BOOL, PR_EV),
            Characteristic("75", Format.BOOL, PR_EV, value=True),
        ],
        key=key,
    )


def lightbulb(key: str = "") -> Service:
    return Service(
        "43",
        [
            Characteristic("25", Format.BOOL, PR_PW_EV),
            Characteristic("8", Format.INT, PR_PW_EV, min_value=0, max_value=100, min_step=1,
                           unit="percentage"),
            Characteristic("13", Format.FLOAT, PR_PW_EV, min_value=0, max_value=360, min_step=1,
                           unit="arcdegrees"),
            Characteristic("2F", Format.FLOAT, PR_PW_EV, min_value=0, max_value=100, min_step=1,
                           unit="percentage"),
        ],
        key=key,
    )


def switch(key: str = "") -> Service:
    return Service("49", [Characteristic("25", Format.BOOL, PR_PW_EV)], key=key)


def programmable_switch_event() -> Characteristic:
    """Button presses: never coalesced, and a repeated press is still an event."""
    return Characteristic("73", Format.UINT8, PR_EV, valid_values=(0, 1, 2), immediate=True,
                          always_notify=True)


def stateless_programmable_switch(key: str = "") -> Service:
    return Service("89", [programmable_switch_event()], key=key)


def temperature_sensor(key: str = "") -> Service:
    return Service(
        "8A",
        [Characteristic("11", Format.FLOAT, PR_EV, min_value=-270, max_value=100, min_step=0.1,
                        unit="celsius")],
        key=key,
    )
