"""H.264 profile and level as HomeKit numbers them, for recording and live view alike.

HomeKit names three profiles (0 baseline, 1 main, 2 high) and three levels (0 = 3.1, 1 = 3.2,
2 = 4.0) in both the recording configuration TLVs and the live view's selected parameters. The
enums carry the wire value; :attr:`H264Profile.ffmpeg` / :attr:`H264Level.ffmpeg` give the names
``media/`` passes to ffmpeg, so the translation is written once.
"""

from __future__ import annotations

from enum import IntEnum

from ..media import H264Level as FfmpegLevel
from ..media import H264Profile as FfmpegProfile

__all__ = ["H264Level", "H264Profile"]

_PROFILE_NAMES: tuple[FfmpegProfile, ...] = ("baseline", "main", "high")
_LEVEL_NAMES: tuple[FfmpegLevel, ...] = ("3.1", "3.2", "4.0")


class H264Profile(IntEnum):
    BASELINE = 0
    MAIN = 1
    HIGH = 2

    @property
    def ffmpeg(self) -> FfmpegProfile:
        """``baseline`` / ``main`` / ``high``: ffmpeg's ``-profile:v`` (and the probe's names)."""
        return _PROFILE_NAMES[self.value]

    @classmethod
    def from_name(cls, name: str | None) -> H264Profile | None:
        """The profile a probe reported by name, or ``None`` when HomeKit has no such profile."""
        return cls(_PROFILE_NAMES.index(name)) if name in _PROFILE_NAMES else None


class H264Level(IntEnum):
    L3_1 = 0
    L3_2 = 1
    L4_0 = 2

    @property
    def ffmpeg(self) -> FfmpegLevel:
        """``3.1`` / ``3.2`` / ``4.0``: ffmpeg's ``-level:v``."""
        return _LEVEL_NAMES[self.value]

    @classmethod
    def bucket(cls, level: str | None) -> H264Level | None:
        """The HomeKit level a stream of this level fits (anything above 3.2 is 4.0)."""
        try:
            value = float(level or "")
        except ValueError:
            return None
        if not value:
            return None
        return cls.L3_1 if value <= 3.1 else cls.L3_2 if value <= 3.2 else cls.L4_0
