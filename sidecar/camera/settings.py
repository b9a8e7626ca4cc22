"""A camera's HKSV settings: operating modes, recording switches and the hub's selection.

Persisted in the accessory's state file (``app["camera"]``) so a restart never silently turns
recording off or forgets the selection (docs/field-lessons.md #12): hubs do not always re-send them.
The snapshot rules of docs/protocol.md §Snapshots live here because they depend only on these flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..hap import HapStatus

__all__ = ["CameraSettings", "snapshot_refusal"]

_KEY = "camera"


@dataclass
class CameraSettings:
    recording_active: int = 0
    recording_audio_active: int = 0
    homekit_active: int = 1
    event_snapshots: int = 1
    periodic_snapshots: int = 1
    rtp_active: int = 1
    indicator: bool = True
    night_vision: bool = False
    selection: str = ""  # base64 of the hub's raw 0x209 value, as it wrote it
    supported_hash: str = ""  # the supported configuration the selection was made against

    @classmethod
    def load(cls, app: dict[str, Any]) -> CameraSettings:
        raw = app.get(_KEY)
        if not isinstance(raw, dict):
            return cls()
        settings = cls()
        for f in fields(cls):
            value = raw.get(f.name)
            default = getattr(settings, f.name)
            if value is not None and type(value) is type(default):  # ignore damaged entries
                setattr(settings, f.name, value)
        return settings

    def store(self, app: dict[str, Any]) -> None:
        app[_KEY] = asdict(self)

    def factory_reset(self) -> None:
        """What unpairing the last admin does (HAP-NodeJS's rules, docs/protocol.md §Unpairing)."""
        fresh = CameraSettings()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    @property
    def mode_name(self) -> str:
        """The Home app's name for the current combination (docs/protocol.md §Camera states)."""
        if not self.homekit_active:
            return "off"
        if not self.rtp_active:
            return "detect activity"
        return "stream and allow recording" if self.recording_active else "stream"


def snapshot_refusal(settings: CameraSettings, reason: int | None) -> HapStatus | None:
    """None when a snapshot may be taken, else the HAP status to refuse it with.

    The checks run in the order of docs/protocol.md §Snapshots.
    """
    if not settings.rtp_active or not settings.homekit_active:
        return HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    if not settings.event_snapshots:
        if reason is None:
            return HapStatus.INSUFFICIENT_PRIVILEGES
        if reason == 1:
            return HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    if not settings.periodic_snapshots:
        if reason is None:
            return HapStatus.INSUFFICIENT_PRIVILEGES
        if reason == 0:
            return HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
    return None
