"""The secure-video model's state and write rules, sans-IO (docs/secure-video.md §Behaviour).

Holds what the hub wrote (motion zones, MotionEnabled) as plain data the camera persists, turns
the zones into the detector's include and exclude regions, and
answers the WebRTC writes while no WebRTC engine exists: SolicitOffer with status "error",
ProvideAnswer and StreamingControl with "unknown session". Every write is parsed with
:mod:`.tlv`, so a malformed one is a :class:`~sidecar.hap.HapError` and leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from ... import tlv8
from ...hap import HapError, HapStatus
from ...media.frames import DetectionZones
from ...tlv8 import TLVError
from . import tlv

__all__ = ["NORMALIZED_FULL_SCALE", "STATE_KEY", "SecureVideoState", "ZoneRegion", "detection_zones", "zone_regions"]

#: Where the state lives in the accessory's app state (``state.app``).
STATE_KEY = "secure_video"


@dataclass(frozen=True, slots=True)
class ZoneRegion:
    """One polygon of a zone, in the hub's coordinates, and whether motion inside is ignored."""

    points: tuple[tuple[int, int], ...]
    exclude: bool


def zone_regions(zones: tlv.Zones) -> list[ZoneRegion]:
    """The zones as polygons (polygons with fewer than three corners enclose nothing: dropped)."""
    return [ZoneRegion(p.points, z.excludes) for z in zones.zones for p in z.polygons if len(p.points) >= 3]


class SecureVideoState:
    """The hub-written state of one secure-video camera, kept in ``app[STATE_KEY]``."""

    def __init__(self, app: MutableMapping[str, Any], new_session_id: Callable[[], bytes]) -> None:
        self._app = app
        self._new_session_id = new_session_id
        stored = app.get(STATE_KEY)
        self._data: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        self.zones = tlv.Zones(())
        raw = self._data.get("zones")
        if isinstance(raw, str):
            try:
                self.zones = tlv.parse_zones(bytes.fromhex(raw))
            except (ValueError, HapError):
                self.zones = tlv.Zones(())  # a damaged entry: no zones, as before any write

    @property
    def motion_enabled(self) -> bool:
        return bool(self._data.get("motion_enabled", True))

    @property
    def zones_active(self) -> bool:
        return bool(self._data.get("zones_active", True))

    def regions(self) -> list[ZoneRegion]:
        """The zones the detector applies (none while the hub switched zones off)."""
        return zone_regions(self.zones) if self.zones_active else []

    def _save(self) -> None:
        self._app[STATE_KEY] = dict(self._data)

    # -- writes (each returns whether the state changed) -----------------------------------------
    def write_zones(self, value: bytes) -> bool:
        zones = tlv.parse_zones(value)
        if zones == self.zones:
            return False
        self.zones = zones
        self._data["zones"] = zones.encode().hex()
        self._save()
        return True

    def write_flag(self, name: str, value: Any) -> bool:
        """``motion_enabled`` or ``zones_active``; the value is already validated by its format."""
        flag = bool(value)
        if self._data.get(name, True) == flag:
            return False
        self._data[name] = flag
        self._save()
        return True

    # -- WebRTC without an engine ----------------------------------------------------------------
    def solicit_offer(self, value: bytes) -> bytes:
        tlv.parse_solicit_offer(value)
        return tlv.SolicitOfferResponse(self._new_session_id(), tlv.WebRTCStatus.ERROR).encode()

    @staticmethod
    def unknown_session(value: bytes) -> bytes:
        """ProvideAnswer and StreamingControl: {1 session, 2 status 1 (unknown session)}."""
        try:
            d = tlv8.decode_dict(value, allow_repeats=True)
        except TLVError as exc:
            raise HapError(HapStatus.INVALID_VALUE, str(exc)) from None
        session = d.get(1, b"")
        if len(session) != tlv.UUID_LENGTH:
            raise HapError(HapStatus.INVALID_VALUE, "session id must be 16 bytes")
        return tlv8.encode([(1, session), (2, 1)])


#: The full scale of a normalized zone corner (``zone_coordinates: normalized``): u16's range.
NORMALIZED_FULL_SCALE = 0xFFFF


def detection_zones(regions: list[ZoneRegion], sensor_width: int, sensor_height: int, *,
                    normalized: bool = False) -> DetectionZones:
    """The zones as the detector takes them: corners relative to the picture (0-1, clamped), so
    they fit the detector's frame size whatever it is. Zone corners are sensor pixels (divided by
    the sensor's size), or with ``normalized`` fractions of :data:`NORMALIZED_FULL_SCALE`: which
    one real hubs write is not known (docs/secure-video.md §Certain and uncertain)."""
    width, height = (NORMALIZED_FULL_SCALE, NORMALIZED_FULL_SCALE) if normalized else (sensor_width, sensor_height)

    def relative(points: tuple[tuple[int, int], ...]) -> tuple[tuple[float, float], ...]:
        return tuple((min(1.0, x / max(1, width)), min(1.0, y / max(1, height))) for x, y in points)

    include = tuple(relative(r.points) for r in regions if not r.exclude)
    exclude = tuple(relative(r.points) for r in regions if r.exclude)
    return DetectionZones(include=include, exclude=exclude)
