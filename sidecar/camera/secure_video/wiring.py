"""The secure-video model's side of one camera: its characteristics wired to the camera's parts.

:class:`SecureVideoWiring` answers the writes only the secure-video model has (motion zones,
MotionEnabled, the tier control, the WebRTC characteristics), keeps the advertised tiers in
step with what the camera delivers, sends still pictures a hub asks for over HDS, and tells the
built-in detector where to look (docs/secure-video.md §Behaviour). The rules themselves are
:class:`~.handlers.SecureVideoState`'s and :mod:`.tiers`'; this is the asyncio side that
carries them out with the camera's core, live view and snapshots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from ...hap import HapError, HapStatus, WriteContext
from ...hds import CloseReason, SnapshotStream, StreamClosedError
from ...media import Profile, Source, load_profiles, parse_source
from ...media.frames import DetectionZones
from ..live.tlv import CODEC_OPUS as LIVE_CODEC_OPUS
from ..live.tlv import AudioSelection, SelectedCommand
from ..live.tlv import Command as LiveCommand
from .handlers import SecureVideoState, detection_zones, zone_regions
from .services import SecureVideoServices
from .tiers import (
    AUDIO_BPS,
    AUDIO_PAYLOAD_TYPE,
    VIDEO_PAYLOAD_TYPE,
    audio_tiers,
    capabilities,
    plan_tiers,
    video_codec,
    video_tiers,
)
from .tlv import CODEC_H265, ControlCommand, ControlStatus, StreamingControlResponse, parse_streaming_control

if TYPE_CHECKING:
    from ..core import Action, CameraCore
    from ..live import LiveStreaming
    from ..services import CameraServices
    from ..spec import CameraSpec

__all__ = ["SecureVideoWiring"]

log = logging.getLogger(__name__)


class SecureVideoWiring:
    """One camera's secure-video characteristics (``secure``; None for the classic model, when
    only the zone queries are asked, and answer "everywhere")."""

    def __init__(self, spec: CameraSpec, core: CameraCore, services: CameraServices,
                 secure: SecureVideoServices | None, state: SecureVideoState, live: LiveStreaming, *,
                 jpeg: Callable[[int, int, int | None], Awaitable[bytes]], save_state: Callable[[], None],
                 act: Callable[[list[Action]], None],
                 spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]],
                 clock: Callable[[], float], profiles: Mapping[str, Profile] | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.core = core
        self.services = services
        self.secure = secure
        self.secure_state = state
        self.live = live
        self._jpeg = jpeg
        self._save_state = save_state
        self._act = act
        self._spawn = spawn
        self.clock = clock
        self._profiles = profiles  # None: the profile directories, read when a tier names a profile
        self._zone_observers: list[Callable[[DetectionZones], None]] = []

    def wire(self, sv: SecureVideoServices) -> None:
        state = self.secure_state
        sv.streaming_enabled.on_write = lambda value, ctx: self._act(self.core.write("rtp_active", int(value)))
        sv.zones.on_write = self._write_zones
        sv.zones.value = state.zones.encode()
        sv.zones_active.value = int(state.zones_active)
        sv.zones_active.on_write = lambda value, ctx: self._write_secure_flag("zones_active", value)
        sv.motion_enabled.value = state.motion_enabled
        sv.motion_enabled.on_write = lambda value, ctx: self._write_secure_flag("motion_enabled", value)
        answering = self.spec.setup_endpoints_answer == "write_response"
        sv.setup_endpoints.on_write = self._write_setup_answering if answering else self.live.write_setup
        sv.setup_endpoints.on_read = self.live.read_setup
        sv.solicit_offer.on_write = lambda value, ctx: state.solicit_offer(value)
        sv.provide_answer.on_write = lambda value, ctx: state.unknown_session(value)
        sv.webrtc_control.on_write = lambda value, ctx: state.unknown_session(value)
        sv.control.on_write = self._write_tier_control
        self.advertise_tiers(sv)

    def advertise_tiers(self, sv: SecureVideoServices) -> None:
        """Capabilities and tiers from what the camera delivers (the cached probe) and ``tiers:``."""
        probe = self.core.offer.cached_probe()
        plans = plan_tiers(probe, self.spec.tiers)
        video = video_tiers(plans, video_codec(probe, self.spec.tier_codec)).encode()
        audio = audio_tiers().encode()
        for char, value in ((sv.capabilities, capabilities(plans, self.spec.state_file).encode()),
                            (sv.video_tiers, video), (sv.webrtc_video_tiers, video),
                            (sv.audio_tiers, audio), (sv.webrtc_audio_tiers, audio)):
            char.set_value(value)

    def sync(self, sv: SecureVideoServices) -> None:
        """StreamingEnabled shows the core's live switch (the classic RTP Active it stands for); the
        tiers follow the latest probe."""
        enabled = bool(self.services.rtp_active.value)
        sv.streaming_enabled.set_value(enabled)
        sv.tier_streaming_enabled.set_value(enabled)
        self.advertise_tiers(sv)  # after a probe: what the camera now delivers

    def _write_zones(self, value: bytes, ctx: WriteContext) -> None:
        if self.secure_state.write_zones(value):
            self._save_state()
            log.info("%s: the hub wrote %d motion zone(s)", self.name, len(self.secure_state.zones.zones))
            self._zones_changed()

    def _write_secure_flag(self, name: str, value: Any) -> None:
        if not self.secure_state.write_flag(name, value):
            return
        self._save_state()
        if name == "zones_active":
            self._zones_changed()
        elif not value and self.core.motion.active:  # MotionEnabled off: motion ends now
            self._act(self.core.set_motion(False, "manual", self.clock(), None))

    def detection_zones(self) -> DetectionZones:
        """Where the built-in detector looks: the hub's zones (secure-video model), else everywhere."""
        if self.secure is None:
            return DetectionZones()
        high = plan_tiers(self.core.offer.cached_probe(), ())[0]
        return detection_zones(self.secure_state.regions(), high.width, high.height,
                               normalized=self.spec.zone_coordinates == "normalized")

    def add_zones_observer(self, observer: Callable[[DetectionZones], None]) -> Callable[[], None]:
        """Be told the detector's zones now and whenever the hub changes them; returns the
        function that stops it."""
        self._zone_observers.append(observer)
        observer(self.detection_zones())

        def remove() -> None:
            if observer in self._zone_observers:
                self._zone_observers.remove(observer)

        return remove

    def on_hds_snapshot(self, stream: SnapshotStream) -> None:
        """A hub asked for a still picture over HDS (secure-video model; docs/secure-video.md §Behaviour)."""
        self._spawn(self._send_hds_snapshot(stream), f"hds-snapshot-{stream.stream_id}")

    async def _send_hds_snapshot(self, stream: SnapshotStream) -> None:
        high = plan_tiers(self.core.offer.cached_probe(), ())[0]
        try:
            jpeg = await self._jpeg(high.width, high.height, None)
        except HapError as exc:
            log.info("%s: HDS snapshot %d refused: %s", self.name, stream.stream_id, exc)
            stream.fail(CloseReason.NOT_ALLOWED if exc.status is HapStatus.NOT_ALLOWED_IN_CURRENT_STATE
                        else CloseReason.UNEXPECTED_FAILURE)
            return
        try:
            await stream.send(jpeg, "image")
        except StreamClosedError:
            log.info("%s: HDS snapshot %d: the hub went away", self.name, stream.stream_id)
            return
        log.info("%s: HDS snapshot %d sent (%d bytes)", self.name, stream.stream_id, len(jpeg))

    def zone_words(self) -> tuple[str, ...]:
        """The hub's zones for the status page: "ignore: (0,0) (960,0) (960,1080)" per polygon."""
        if self.secure is None:
            return ()
        off = "" if self.secure_state.zones_active else " (zones off)"
        return tuple(f"{'ignore' if r.exclude else 'watch'}: {' '.join(f'({x},{y})' for x, y in r.points)}{off}"
                     for r in zone_regions(self.secure_state.zones))

    def _zones_changed(self) -> None:
        zones = self.detection_zones()
        for observer in list(self._zone_observers):
            observer(zones)

    def _write_setup_answering(self, value: bytes, ctx: WriteContext) -> bytes:
        """SetupEndpoints with ``setup_endpoints_answer: write_response``: the answer a read would
        give comes back in the write's response too (a hub that does not ask for one reads it)."""
        self.live.write_setup(value, ctx)
        return self.live.manager.read_setup(ctx.session.session_id)

    def _profile(self, name: str) -> Profile:
        """A tier's encoding profile (the configuration was checked: it exists and encodes H.264)."""
        if self._profiles is None:
            self._profiles = load_profiles()
        return self._profiles[name]

    def _write_tier_control(self, value: bytes, ctx: WriteContext) -> bytes:
        """RTPStreamingControl: start a tier of a session set up with SetupEndpoints, or end it.

        The tier runs on the live-view sender with the SSRCs of our SetupEndpoints answer (the
        hub filters on those), Opus at 48 kHz (so its RTP clock is 48 kHz too).
        """
        command = parse_streaming_control(value)
        session = command.session_id

        def answer(status: ControlStatus) -> bytes:
            return StreamingControlResponse(session, status).encode()

        if not self.live.has_session(session, ctx):
            return answer(ControlStatus.UNKNOWN)
        source: Source | None = None
        profile: Profile | None = None
        hevc = False
        if command.command is ControlCommand.END:
            selected = SelectedCommand(session, LiveCommand.END)
        else:
            probe = self.core.offer.cached_probe()
            plans = plan_tiers(probe, self.spec.tiers)
            hevc = video_codec(probe, self.spec.tier_codec) == CODEC_H265
            plan = next((p for p in plans if p.tier_id == command.video_tier), None)
            if plan is None:
                return answer(ControlStatus.NO_SUCH_STREAM)
            video = {"width": plan.width, "height": plan.height, "fps": plan.fps, "bitrate_kbps": plan.peak_kbps,
                     "payload_type": VIDEO_PAYLOAD_TYPE, "ssrc": command.video_ssrc or 0}
            audio = None if command.audio_tier is None else AudioSelection(
                codec=LIVE_CODEC_OPUS, sample_rate_hz=48000, bitrate_kbps=AUDIO_BPS // 1000,
                payload_type=AUDIO_PAYLOAD_TYPE, ssrc=command.audio_ssrc or 0)
            selected = SelectedCommand(session, LiveCommand.START, video, audio)
            source = None if plan.source is None else parse_source(plan.source)
            profile = None if plan.profile is None else self._profile(plan.profile)
            log.info("%s: tier %s (%dx%d@%d %s%s) asked for", self.name, plan.name, plan.width, plan.height,
                     plan.fps, "H.265" if hevc else "H.264", "" if profile is None else f", profile {profile.name}")
        try:
            self.live.start_selected(selected, ctx, source, profile, hevc)
        except HapError as exc:
            log.info("%s: tier control refused: %s", self.name, exc)
            return answer(ControlStatus.BUSY if exc.status is HapStatus.RESOURCE_BUSY else ControlStatus.ERROR)
        return answer(ControlStatus.OK)
