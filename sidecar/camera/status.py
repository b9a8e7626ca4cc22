"""A camera's state as one frozen value, for the status page, ``/healthz``, ``/metrics`` and the API.

Observers (web/, the parent protocol) must never reach into ``hap/`` or ``hds/``: they read a
:class:`CameraStatus` built by ``Camera.status()`` and follow ``Camera.events``. Every
field is plain data (numbers, strings, tuples), so a status can be rendered, serialised to
JSON or turned into metrics without touching the live objects, and it can never leak a
password: the source is already masked when it is put here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MODE_LABELS", "CameraStatus", "ControllerInfo", "MediaStatus", "short_controller_id"]

# The Home app's words for the four camera modes (CameraSettings.mode_name -> label).
MODE_LABELS = {
    "off": "Off",
    "detect activity": "Detect Activity",
    "stream": "Stream",
    "stream and allow recording": "Stream & Allow Recording",
}


def short_controller_id(identifier: bytes | str) -> str:
    """The first 8 characters of a controller's pairing id: enough to tell two apart in a log,
    not the whole identity."""
    text = identifier.decode("ascii", "replace") if isinstance(identifier, bytes) else identifier
    return text[:8] + ("…" if len(text) > 8 else "")


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    id: str  # shortened
    admin: bool


@dataclass(frozen=True, slots=True)
class MediaStatus:
    """What the recording ffmpeg is doing and what it measures."""

    wanted: bool  # recording on and camera active: ffmpeg should run
    state: str  # stopped, starting, running, backoff, stopping
    last_error: str | None  # the cause in words, credentials masked
    restarts: int
    width: int | None
    height: int | None
    fps: float | None
    bitrate_kbps: float | None
    keyframe_interval_s: float | None
    warning: str | None  # e.g. "keyframes every 8 s: set the camera's I-frame interval to ..."
    prebuffer_s: float
    fragments: int  # produced since start
    bytes_in: int  # fMP4 bytes read from ffmpeg since start
    last_fragment_age_s: float | None  # None: no fragment in this run yet


@dataclass(frozen=True, slots=True)
class CameraStatus:
    name: str
    slug: str
    source: str  # password masked
    profile: str
    doorbell: bool
    hap_port: int
    hap_listening: bool
    paired: bool
    controllers: tuple[ControllerInfo, ...]
    setup_code: str | None  # only while unpaired
    setup_uri: str | None  # X-HM:// payload, only while unpaired
    mode: str  # MODE_LABELS value
    recording_active: bool
    selection: str | None  # "1920x1080@30 2000 kbps, prebuffer 4000 ms"
    hap_sessions: int  # verified HAP connections
    pair_verify_failures: int
    failed_setup_attempts: int
    live_sessions: int
    motion: bool
    recording: bool  # a recording stream is open now
    recordings: int  # opened since start
    prebuffer_ms: int  # the most a hub may select
    media: MediaStatus
    record_codec: str = "h264"  # the record_codec setting, and why ``auto`` fell back to H.264 if it did
    homekit_model: str = "classic"  # or "secure_video" (docs/secure-video.md): its own accessory and pairing
    zones: tuple[str, ...] = ()  # secure_video: the hub's activity zones, in words
    motion_enabled: bool = True  # secure_video: the hub's MotionEnabled

    def healthy(self, *, stale_after_s: float) -> tuple[bool, str]:
        """Whether this camera works, and in words why not (the ``/healthz`` rule)."""
        if not self.hap_listening:
            return False, "the HAP server is not listening"
        m = self.media
        if not m.wanted:
            return True, "ok (recording off: ffmpeg not needed)"
        if m.last_fragment_age_s is None:
            error = f": {m.last_error}" if m.last_error else ""
            return False, f"ffmpeg has produced no fragment yet (state {m.state}){error}"
        if m.last_fragment_age_s > stale_after_s:
            return False, f"no fragment from ffmpeg for {m.last_fragment_age_s:.0f} s (state {m.state})"
        return True, "ok"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["controllers"] = [asdict(c) for c in self.controllers]
        return data
