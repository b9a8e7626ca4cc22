"""Which live-view tiers a secure-video camera offers, and what each one advertises.

High is the camera's main stream passed through, at the size the probe found. Medium and Low
exist only when the camera's ``tiers:`` names them: a substream of the camera, or the main stream
through an encoder profile, at the size given. A tier that is not configured is not advertised.
Bitrates follow the targets of Apple's guide for the nearest picture height (docs/secure-video.md
§Tiers). Pure functions of the probe and the configuration.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import tlv

__all__ = ["TierPlan", "TierSpec", "audio_tiers", "capabilities", "plan_tiers", "sensor_id", "video_tiers"]

TierName = Literal["high", "medium", "low"]
TIER_IDS: dict[str, int] = {"high": 1, "medium": 2, "low": 3}
TIER_QUALITY: dict[str, int] = {"high": tlv.Quality.HIGH, "medium": tlv.Quality.MEDIUM, "low": tlv.Quality.LOW}
#: (minimum height, average kbps, peak kbps): the guide's targets, largest first.
BITRATES = ((2160, 4500, 5000), (1440, 2800, 3000), (1080, 1700, 1800), (720, 768, 800), (0, 180, 190))
VIDEO_PAYLOAD_TYPE = 99
AUDIO_PAYLOAD_TYPE = 110
AUDIO_TIER_ID = 1
AUDIO_BPS = 24000
#: The main stream's size before the first probe (replaced as soon as a probe succeeds).
UNPROBED = (1920, 1080, 30)
_NAMESPACE = uuid.UUID("5b0f1f0e-6f4c-4d0a-9a8e-3c1d2e4f5a60")


@dataclass(frozen=True, slots=True, kw_only=True)
class TierSpec:
    """A configured Medium or Low tier: the camera's substream (``source``) or its main stream,
    encoded at the tier's size with the encoding ``profile`` named (None: the live view's libx264)."""

    name: Literal["medium", "low"]
    width: int
    height: int
    fps: int = 15
    source: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class TierPlan:
    """One advertised tier and where its pictures come from (``source`` None: the main stream)."""

    name: TierName
    tier_id: int
    width: int
    height: int
    fps: int
    avg_kbps: int
    peak_kbps: int
    source: str | None = None
    profile: str | None = None  # the encoding profile of ``tiers:`` (None: High passed through, else libx264)

    @property
    def quality(self) -> int:
        return TIER_QUALITY[self.name]


def bitrates(height: int) -> tuple[int, int]:
    """The guide's average and peak kbps for a picture ``height`` pixels tall."""
    for floor, avg, peak in BITRATES:
        if height >= floor:
            return avg, peak
    raise AssertionError("unreachable: the last row's floor is 0")


def plan_tiers(probe: Mapping[str, Any] | None, configured: Sequence[TierSpec]) -> list[TierPlan]:
    """High from the probe (or :data:`UNPROBED`), then the configured Medium and Low."""
    if probe is None:
        width, height, fps = UNPROBED
    else:
        width, height = int(probe["width"]), int(probe["height"])
        fps = round(float(probe.get("fps") or 30))
    plans = [TierPlan("high", TIER_IDS["high"], width, height, max(1, min(fps, 255)), *bitrates(height))]
    for spec in sorted(configured, key=lambda t: TIER_IDS[t.name]):
        plans.append(TierPlan(spec.name, TIER_IDS[spec.name], spec.width, spec.height, spec.fps,
                              *bitrates(spec.height), source=spec.source, profile=spec.profile))
    return plans


def sensor_id(identity: str) -> bytes:
    """The camera's one sensor id: stable for an accessory identity (16 bytes)."""
    return uuid.uuid5(_NAMESPACE, f"sensor:{identity}").bytes


def _stream_id(identity: str, name: str) -> bytes:
    return uuid.uuid5(_NAMESPACE, f"stream:{identity}:{name}").bytes


#: What the probe calls an H.265 camera (as ``live.streaming_manager.HEVC_CODECS``; importing the
#: live package here would be circular: the camera's spec imports this module).
HEVC_CODECS = frozenset({"hvc1", "hev1", "hevc", "h265"})


def video_codec(probe: Mapping[str, Any] | None, tier_codec: str = "h264") -> int:
    """The codec every tier advertises and the live sender sends (one codec per characteristic):
    H.264 (a copied H.264 camera, or its encoder), or with ``tier_codec`` ``auto`` H.265 when the
    probe found an H.265 camera (docs/secure-video.md §Tiers)."""
    codec = str(probe.get("codec", "")).lower() if probe is not None else ""
    return tlv.CODEC_H265 if tier_codec == "auto" and codec in HEVC_CODECS else tlv.CODEC_H264


def video_tiers(plans: Sequence[TierPlan], codec: int) -> tlv.VideoTiers:
    return tlv.VideoTiers(codec, VIDEO_PAYLOAD_TYPE, tuple(
        tlv.VideoTier(p.tier_id, p.quality, p.avg_kbps, p.width, p.height, p.fps) for p in plans))


def audio_tiers() -> tlv.AudioTiers:
    """One Opus tier: mono, 16-bit, 20 ms packets on the 48 kHz clock."""
    return tlv.AudioTiers(tlv.CODEC_OPUS, AUDIO_PAYLOAD_TYPE, (tlv.AudioTier(AUDIO_TIER_ID, AUDIO_BPS),))


def capabilities(plans: Sequence[TierPlan], identity: str) -> tlv.CameraCapabilities:
    """One primary sensor at the main stream's size, delivering one stream per tier."""
    high = plans[0]
    streams = tuple(tlv.SensorStream(_stream_id(identity, p.name), p.quality, p.width, p.height, p.fps,
                                     p.avg_kbps, p.peak_kbps) for p in plans)
    return tlv.CameraCapabilities((tlv.Sensor(high.width, high.height, sensor_id(identity), 1, 1, streams),))
