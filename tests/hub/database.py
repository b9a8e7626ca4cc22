"""Reading an accessory database the way a hub does: iids found by type, never assumed."""

from __future__ import annotations

from typing import Any

__all__ = ["iids_by_type", "short"]


def short(uuid: str) -> str:
    """Apple's full UUID → the short upper-case form ("00000022-0000-1000-8000-..." → "22")."""
    return uuid.split("-")[0].lstrip("0").upper() or "0"


def iids_by_type(accessories: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """{(service type, characteristic type): iid} for aid 1, types in short form."""
    out: dict[tuple[str, str], int] = {}
    for svc in accessories[0]["services"]:
        for char in svc["characteristics"]:
            out[(short(svc["type"]), short(char["type"]))] = char["iid"]
    return out
