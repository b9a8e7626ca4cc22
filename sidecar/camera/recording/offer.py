"""What a camera offers hubs to record, and what the hub chose: :class:`RecordingOffer`.

The supported recording configurations (0x205-0x207) are computed from what the source really
delivers: a probe, cached in the accessory's state file so a restart advertises the same thing
at once. The hub's selection (0x209) is validated against them and kept in the state file as
the hub wrote it, with the hash of what it was made against; when what we advertise changes,
the stored selection is dropped so the hub selects again (an old one could ask the pipeline for
what the source no longer has). No I/O: the caller saves the state file when told to.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from ...hap import HapError, HapStatus
from ...media import SourceProbe
from ..settings import CameraSettings
from .configuration import (
    RecordingSelection,
    SupportedRecording,
    parse_selection,
    selected_video_codec,
    supported_for_source,
)

__all__ = ["FPS_JITTER", "PROBE_KEY", "RecordingOffer"]

log = logging.getLogger(__name__)

PROBE_KEY = "probe"
FPS_JITTER = 0.25  # a re-measured frame rate within this fraction of the known one is the same


class RecordingOffer:
    """The supported configurations, the selection and the cached probe, over the state's ``app`` dict.

    Methods that change the persisted state return True when the state file must be saved.
    """

    def __init__(self, name: str, app: dict[str, Any], settings: CameraSettings, *, copy: bool,
                 prebuffer_ms: int, doorbell: bool, hevc: bool = False, advertise_hevc: bool = False) -> None:
        self.name = name
        self.hevc = hevc  # H.265 recordings allowed (record_codec hevc or auto; docs/h265.md)
        self.advertise_hevc = hevc and advertise_hevc  # offer codec 1 in 0x206 too (unverified; docs/h265.md)
        self.app = app
        self.settings = settings
        self.copy = copy
        self.prebuffer_ms = prebuffer_ms
        self.doorbell = doorbell
        self.supported = self._supported_from(self.cached_probe())
        self.selection: RecordingSelection | None = None

    def cached_probe(self) -> dict[str, Any] | None:
        """The last probe's record (``app["probe"]``), or None before the first one worked."""
        cached = self.app.get(PROBE_KEY)
        return cached if isinstance(cached, dict) else None

    def _supported_from(self, probe: dict[str, Any] | None) -> SupportedRecording:
        transcode = not self.copy
        if probe is None:
            width, height, fps = 1920, 1080, 30.0
            transcode = True  # unknown source: offer the standard list until the probe says more
        else:
            width, height, fps = int(probe["width"]), int(probe["height"]), float(probe.get("fps") or 30)
        profile, level = (probe or {}).get("h264_profile"), (probe or {}).get("h264_level")
        return supported_for_source(width, height, fps, transcode=transcode, prebuffer_ms=self.prebuffer_ms,
                                    doorbell=self.doorbell,
                                    h264_profile=profile if isinstance(profile, str) else None,
                                    h264_level=level if isinstance(level, str) else None,
                                    hevc=self.advertise_hevc)

    def load_selection(self) -> bool:
        """Take the stored selection if it was made against what we advertise now; else drop it."""
        st = self.settings
        if not st.selection:
            return False
        if st.supported_hash != self.supported.config_hash():
            log.info("%s: what the camera supports changed; the hub will select again", self.name)
            return self._drop_selection()
        try:
            self.selection = parse_selection(base64.b64decode(st.selection), self.supported)
        except (HapError, ValueError):
            return self._drop_selection()
        return False

    def _drop_selection(self) -> bool:
        self.settings.selection, self.settings.supported_hash = "", ""
        self.settings.store(self.app)
        return True

    def select(self, value: bytes) -> bool:
        """The hub wrote a selection: HapError(-70410) when it is not one we offered; returns
        whether it differs from the stored one (then it is stored: the caller saves)."""
        codec = selected_video_codec(value)
        log.info("%s: the hub selected video codec %s (%s)", self.name, codec,
                 {0: "H.264", 1: "H.265"}.get(codec if codec is not None else -1, "unknown"))
        selection = parse_selection(value, self.supported)
        raw = base64.b64encode(value).decode()
        if raw == self.settings.selection and self.settings.supported_hash == self.supported.config_hash():
            return False
        self.selection = selection
        self.settings.selection, self.settings.supported_hash = raw, self.supported.config_hash()
        self.settings.store(self.app)
        return True

    def read_selection(self) -> bytes:
        """The selection as the hub wrote it; reading before any was written fails as HAP-NodeJS does."""
        if not self.settings.selection:
            raise HapError(HapStatus.SERVICE_COMMUNICATION_FAILURE, "no selection yet")
        return base64.b64decode(self.settings.selection)

    def probed(self, probe: SourceProbe) -> tuple[bool, bool]:
        """A probe worked: cache it and recompute what we advertise. Returns (save the state
        file, the supported configurations changed)."""
        if self.copy and self.hevc and probe.codec in ("hvc1", "hev1"):
            log.info("%s: the camera sends H.265: recordings are H.265 (the hubs must run tvOS 27)", self.name)
        elif self.copy and not probe.is_h264:
            log.error("%s: the camera sends %s, not H.264: copy mode cannot record it; use a transcoding "
                      "profile (--profile libx264) or switch the camera's stream to H.264", self.name, probe.codec)
        fps = probe.fps
        cached_fps = (self.cached_probe() or {}).get("fps")
        if fps and isinstance(cached_fps, int | float) and cached_fps and abs(fps / cached_fps - 1) < FPS_JITTER:
            # A frame rate measured over a few fragments of a live stream jitters (17.4 for a
            # 15 fps camera under load): re-advertising would drop the hub's selection, so the
            # next recording would be refused until the hub selects again. Keep the known one.
            fps = cached_fps
        record = {"width": probe.width, "height": probe.height, "fps": fps, "codec": probe.codec,
                  "has_audio": probe.has_audio, "h264_profile": probe.h264_profile, "h264_level": probe.h264_level}
        save = False
        if record != self.cached_probe():
            self.app[PROBE_KEY] = record
            save = True
        supported = self._supported_from(record)
        changed = supported.config_hash() != self.supported.config_hash()
        if changed:
            self.supported = supported
            save = self.load_selection() or save
        sizes = sorted({(r.width, r.height) for r in self.supported.resolutions}, reverse=True)
        log.info("%s: source is %dx%d@%s %s%s; advertising %s", self.name, probe.width, probe.height,
                 probe.fps, probe.codec, " with audio" if probe.has_audio else "",
                 ", ".join(f"{w}x{h}" for w, h in sizes[:6]) + (" ..." if len(sizes) > 6 else ""))
        return save, changed

    def forget_selection(self) -> None:
        """Factory reset: no selection (the settings were reset by the caller)."""
        self.selection = None
