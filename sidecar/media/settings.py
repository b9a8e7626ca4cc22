"""The recording settings a hub selects, in the terms ffmpeg needs.

The camera layer decodes the hub's ``SelectedCameraRecordingConfiguration`` TLV and hands the
pipeline one of these; ``media/`` never sees HAP types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["H264Level", "H264Profile", "RecordingSettings"]

H264Profile = Literal["baseline", "main", "high"]
H264Level = Literal["3.1", "3.2", "4.0"]

_PROFILES = ("baseline", "main", "high")
_LEVELS = ("3.1", "3.2", "4.0")


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    """One recording configuration: what a transcoding profile encodes to.

    A copy profile honours only ``audio`` (and the audio format): the rest is the camera's.
    """

    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate_kbps: int = 2000
    profile: H264Profile = "high"
    level: H264Level = "4.0"
    iframe_interval_ms: int = 4000
    audio: bool = True
    audio_bitrate_kbps: int = 64
    audio_sample_rate: int = 32000
    audio_channels: int = 1

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 7680 and 16 <= self.height <= 4320):
            raise ValueError(f"unsupported resolution {self.width}x{self.height}")
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even for yuv420p")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"unsupported frame rate {self.fps}")
        if not 50 <= self.bitrate_kbps <= 100_000:
            raise ValueError(f"unsupported bitrate {self.bitrate_kbps} kbps")
        if self.profile not in _PROFILES:
            raise ValueError(f"unsupported H.264 profile {self.profile!r}")
        if self.level not in _LEVELS:
            raise ValueError(f"unsupported H.264 level {self.level!r}")
        if not 500 <= self.iframe_interval_ms <= 10_000:
            raise ValueError(f"unsupported I-frame interval {self.iframe_interval_ms} ms")
        if self.audio_sample_rate not in (8000, 16000, 24000, 32000, 44100, 48000):
            raise ValueError(f"unsupported audio sample rate {self.audio_sample_rate}")
        if self.audio_channels not in (1, 2):
            raise ValueError("audio must be mono or stereo")
        if not 8 <= self.audio_bitrate_kbps <= 320:
            raise ValueError(f"unsupported audio bitrate {self.audio_bitrate_kbps} kbps")

    @property
    def gop_frames(self) -> int:
        """Frames between keyframes: fps x I-frame interval (60 at 15 fps and 4 s)."""
        return max(1, round(self.fps * self.iframe_interval_ms / 1000))

    def template_values(self) -> dict[str, str]:
        """Values for the ``{placeholders}`` in profile files (see ``ffmpeg_profiles/``)."""
        iframe_s = self.iframe_interval_ms / 1000
        return {
            "width": str(self.width),
            "height": str(self.height),
            "fps": str(self.fps),
            "bitrate": str(self.bitrate_kbps),
            "bufsize": str(2 * self.bitrate_kbps),
            "gop": str(self.gop_frames),
            "iframe_s": f"{iframe_s:g}",
            "profile": self.profile,
            "level": self.level,
            "audio_bitrate": str(self.audio_bitrate_kbps),
            "audio_sample_rate": str(self.audio_sample_rate),
            "audio_channels": str(self.audio_channels),
        }
