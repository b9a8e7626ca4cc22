"""What one camera is told to be: :class:`CameraSpec`, a small frozen value.

The wiring layer (``app.py``) builds it from the validated configuration, so ``camera/``
never depends on the configuration's pydantic models; tests and benchmarks build one directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..media.frames import DetectOutput
from .secure_video.tiers import TierSpec

__all__ = ["CameraSpec", "HomeKitModel", "KeepWarm", "RecordCodec", "SetupEndpointsAnswer", "TierCodec", "TwoWayAudio",
           "ZoneCoordinates"]

#: When ffmpeg runs (and so the prebuffer is warm): ``always`` whenever HomeKitCameraActive is 1,
#: ``recording`` only while recording is on too; ``auto``: ``always`` for copy mode (it costs
#: almost nothing), ``recording`` for a transcoding profile (it costs a core's worth of CPU).
KeepWarm = Literal["auto", "always", "recording"]
#: What the hubs record: ``h264``, ``hevc`` (every hub on tvOS 27), or ``auto`` (H.265 from an
#: H.265 camera, back to H.264 after two failed H.265 recordings in a row; docs/h265.md).
RecordCodec = Literal["h264", "hevc", "auto"]
#: Which HomeKit camera model the accessory publishes (docs/secure-video.md): ``classic``, or the
#: tvOS 27 ``secure_video`` model as its own accessory identity with its own pairing.
HomeKitModel = Literal["classic", "secure_video"]
ZoneCoordinates = Literal["sensor_pixels", "normalized"]
SetupEndpointsAnswer = Literal["read", "write_response"]
TierCodec = Literal["h264", "auto"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoWayAudio:
    """Where the Home app's voice goes (docs/two-way-audio.md).

    ``format`` ``backchannel``: the ONVIF RTSP backchannel at ``target`` (``None``: the camera's
    source URL); any other value is an ffmpeg muxer writing to ``target``. ``codec`` and
    ``sample_rate`` ``None``: the backchannel's offer, or the muxer's default codec at 16 kHz.
    """

    target: str | None = None
    format: str = "backchannel"
    codec: str | None = None
    sample_rate: int | None = None

    @property
    def backchannel(self) -> bool:
        return self.format == "backchannel"


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraSpec:
    """One camera's settings. Defaults match the configuration's (see ``sidecar/config.py``)."""

    name: str
    source: str  # rtsp://..., a file, loop:<file>, or "demo"
    profile: str = "copy"  # ffmpeg profile: copy, libx264, vaapi, ...
    setup_code: str | None = None
    transcode_fallback: bool = False
    record_codec: RecordCodec = "h264"
    advertise_hevc: bool = False  # also offer codec 1 (H.265) in the recording TLV (unverified; docs/h265.md)
    doorbell: bool = False
    snapshot_url: str | None = None
    prebuffer_ms: int = 8000  # the most a hub may select
    max_event_s: float = 180.0  # longest recording
    motion_timeout_s: float = 30.0  # trigger motion auto-reset; 0: never
    motion_every: float | None = None  # demo: toggle motion every N seconds
    operating_mode_indicator: bool = False
    night_vision: bool = False
    manually_disabled: bool = False
    max_live_streams: int = 2
    # The built-in motion detector's frames (None: no detector). From a second output of the
    # recording ffmpeg, or from a separate ffmpeg on ``detect_source`` (the camera's substream).
    detect: DetectOutput | None = None
    detect_source: str | None = None
    keep_warm: KeepWarm = "auto"
    two_way_audio: TwoWayAudio | None = None  # None: no Microphone/Speaker, no talk
    http_motion: bool = True  # whether /motion?<name> may raise motion (``motion:`` lists http)
    homekit_model: HomeKitModel = "classic"
    tiers: tuple[TierSpec, ...] = ()  # secure_video: the Medium and Low live tiers (High is the main stream)
    # secure_video, where real hubs are not known for sure (docs/secure-video.md §Certain and uncertain):
    zone_coordinates: ZoneCoordinates = "sensor_pixels"  # zone corners: sensor pixels, or 0-65535 normalized
    setup_endpoints_answer: SetupEndpointsAnswer = "read"  # read back only, or also as the write's response
    tier_codec: TierCodec = "h264"  # live tiers: H.264, or auto (H.265 from an H.265 camera)

    @property
    def secure_video(self) -> bool:
        return self.homekit_model == "secure_video"

    @property
    def state_file(self) -> str:
        """The accessory's state file: each model is its own identity with its own pairings."""
        return f"{self.slug}.secure-video.json" if self.secure_video else f"{self.slug}.json"

    @property
    def slug(self) -> str:
        """File-name-safe form of the name (the state file is ``<slug>.json``)."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "camera"
