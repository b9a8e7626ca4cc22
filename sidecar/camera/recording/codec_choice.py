"""Which codec one camera's recordings carry (``record_codec``), and ``auto``'s fall-back: sans-IO.

``h264`` records H.264 as always; ``hevc`` records an H.265 camera's own stream (or an HEVC
encoder's) for homes whose hubs all run tvOS 27; ``auto`` starts like ``hevc`` and goes back to
H.264 for good (until the sidecar restarts) when hubs end two H.265 recordings in a row with
anything but a normal close (docs/h265.md §Turning it on). A hub that cannot take H.265 (an older
hub, or a classic camera model a hub will not record in H.265) fails such recordings; a
recording the sidecar itself ended (switched off, ffmpeg restarted) proves nothing either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..events import RecordingEnded
from ..spec import RecordCodec

__all__ = ["FAILURES_TO_FALL_BACK", "CodecChoice"]

#: H.265 recordings in a row that hubs end abnormally before ``auto`` goes back to H.264.
FAILURES_TO_FALL_BACK = 2
_HEVC_ENTRIES = ("hvc1", "hev1")


@dataclass
class CodecChoice:
    """The camera's ``record_codec`` setting and, under ``auto``, what its recordings showed."""

    setting: RecordCodec
    fell_back: str | None = None  # why ``auto`` went back to H.264, in words
    failures: int = 0  # H.265 recordings in a row that hubs ended abnormally

    @property
    def pipeline_codec(self) -> Literal["h264", "hevc"]:
        """What the media pipeline is asked to record now."""
        return "h264" if self.setting == "h264" or self.fell_back is not None else "hevc"

    def describe(self) -> str:
        """For the status page: the setting and, if it changed course, why."""
        if self.fell_back is not None:
            return f"h264 (auto fell back: {self.fell_back})"
        return self.setting

    def recording_ended(self, event: RecordingEnded) -> str | None:
        """Account for one recording; the fall-back reason when ``auto`` falls back now."""
        if self.setting != "auto" or self.fell_back is not None or event.video_codec not in _HEVC_ENTRIES:
            return None
        if event.reason == "NORMAL":
            self.failures = 0
            return None
        if event.closed_by not in ("hub", "connection"):
            return None  # we ended it: says nothing about the hub
        self.failures += 1
        if self.failures < FAILURES_TO_FALL_BACK:
            return None
        self.fell_back = (f"hubs ended {self.failures} H.265 recordings in a row without a clip (last: "
                          f"{event.reason}{', ' + event.detail if event.detail else ''}); recording H.264 "
                          "from now on: a hub is probably not on tvOS 27")
        return self.fell_back
