"""A tvOS 27 hub's view of a secure-video camera (docs/secure-video.md), over a real HAP session.

The hub steps as reports of real hub traffic describe them: read the database and find the
model's services by type (and no classic RTP stream management), decode every new
characteristic, check the links, write the Global Operating Mode and the zones, ask WebRTC for
an offer. Values are decoded with the project's codecs, which the golden tests of
tests/camera/test_secure_video_tlv.py pin to the documented layouts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from aiohomekit.controller.ip import IpPairing

from sidecar.camera.secure_video import tlv as sv
from tests.hub.database import iids_by_type, short
from tests.hub.hap_setup import setup_write

__all__ = ["FORBIDDEN", "SERVICES", "SecureVideoView", "read_model", "solicit_offer", "timed_write", "write_value",
           "write_zones"]

#: What a secure-video accessory publishes (besides AccessoryInformation and ProtocolInformation).
SERVICES = frozenset({"8010", "8032", "21A", "8021", "8031", "8033", "204", "129", "85"})
#: What it must never publish: the classic RTP stream management, and the CMAF upload's services.
FORBIDDEN = frozenset({"110", "8000", "8050", "8080"})


@dataclass
class SecureVideoView:
    """What the hub learnt from the database."""

    services: dict[str, dict[str, Any]]  # by short type
    ids: dict[tuple[str, str], int]
    linked: dict[str, set[str]]  # service type -> linked service types
    version: str
    capabilities: sv.CameraCapabilities
    video_tiers: sv.VideoTiers
    audio_tiers: sv.AudioTiers
    webrtc_video_tiers: sv.VideoTiers
    zones: sv.Zones
    contributing_sensors: tuple[bytes, ...]
    sensor_ids: tuple[bytes, ...]  # every SensorUUID characteristic
    supported_rtp: bytes


def _value(service: dict[str, Any], char_type: str) -> Any:
    (char,) = [c for c in service["characteristics"] if short(c["type"]) == char_type]
    return char.get("value")


def _tlv(service: dict[str, Any], char_type: str) -> bytes:
    return base64.b64decode(_value(service, char_type))


async def read_model(pairing: IpPairing) -> SecureVideoView:
    """Read and decode the whole database as the hub does; raises AssertionError on anything a
    hub would refuse (a missing or forbidden service, an undecodable value, a wrong link)."""
    accessories = await pairing.list_accessories_and_characteristics()
    raw = accessories[0]["services"]
    services = {short(s["type"]): s for s in raw}
    present = set(services) - {"3E", "A2"}
    assert not present & FORBIDDEN, f"forbidden services published: {sorted(present & FORBIDDEN)}"
    assert present >= SERVICES, f"missing services: {sorted(SERVICES - present)}"
    by_iid = {s["iid"]: short(s["type"]) for s in raw}
    linked = {short(s["type"]): {by_iid[i] for i in s.get("linked", [])} for s in raw}
    sensor_ids = tuple(base64.b64decode(_value(services[t], "805B")) for t in ("8031", "8033"))
    return SecureVideoView(
        services=services, ids=iids_by_type(accessories), linked=linked, version=_value(services["8010"], "37"),
        capabilities=sv.parse_capabilities(_tlv(services["8010"], "8011")),
        video_tiers=sv.parse_video_tiers(_tlv(services["8031"], "8043")),
        audio_tiers=sv.parse_audio_tiers(_tlv(services["8031"], "8044")),
        webrtc_video_tiers=sv.parse_video_tiers(_tlv(services["8033"], "8059")),
        zones=sv.parse_zones(_tlv(services["8021"], "8022")),
        contributing_sensors=sv.parse_contributing_sensors(_tlv(services["85"], "8086")),
        sensor_ids=sensor_ids, supported_rtp=_tlv(services["8031"], "116"))


async def write_value(pairing: IpPairing, view: SecureVideoView, key: tuple[str, str], value: Any) -> dict[Any, Any]:
    """One write (bytes go as base64); aiohomekit's answer, {} when it succeeded."""
    encoded = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    result: dict[Any, Any] = await pairing.put_characteristics([(1, view.ids[key], encoded)])
    return result


async def timed_write(pairing: IpPairing, view: SecureVideoView, key: tuple[str, str], value: Any,
                      pid: int = 77) -> dict[str, Any]:
    """A timed write, as a hub writes StreamingEnabled: ``/prepare``, then the write under its pid."""
    await pairing._ensure_connected()  # type: ignore[no-untyped-call]
    conn = pairing.connection
    assert await conn.put_json("/prepare", {"ttl": 5000, "pid": pid}) == {"status": 0}
    reply: dict[str, Any] = await conn.put_json("/characteristics", {"characteristics": [
        {"aid": 1, "iid": view.ids[key], "value": value}], "pid": pid}) or {}
    return reply


async def write_zones(pairing: IpPairing, view: SecureVideoView, zones: sv.Zones) -> dict[Any, Any]:
    return await write_value(pairing, view, ("8021", "8022"), zones.encode())


async def write_with_response(pairing: IpPairing, view: SecureVideoView, key: tuple[str, str],
                              value: bytes) -> dict[str, Any]:
    """A write with ``"r": true``: the reply entry (its ``value`` is the answer, base64)."""
    return await setup_write(pairing, view.ids[key], value)


async def solicit_offer(pairing: IpPairing, view: SecureVideoView) -> sv.SolicitOfferResponse:
    entry = await write_with_response(pairing, view, ("8033", "8053"), bytes.fromhex("0103010100"))
    assert entry.get("status", 0) == 0, entry
    return sv.parse_solicit_offer_response(base64.b64decode(entry["value"]))
