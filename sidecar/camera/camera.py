"""One HomeKit Secure Video camera: the asyncio adapter where the HAP server, HDS and ffmpeg meet.

The camera's rules are :class:`~sidecar.camera.core.CameraCore`'s (sans-IO). This adapter
builds the accessory (standalone, category IP camera, own port and pairing), its HAP server,
its HDS listener, its ffmpeg side (:class:`~sidecar.camera.camera_media.CameraMedia`) and live
view; it feeds the core what happens (characteristic writes, probes, pairing notices, pipeline
events, recordings, motion, the clock) and carries out the actions it answers with. In brief:

* The supported recording configurations are computed from what the source really delivers
  (a probe, cached in the state file so restarts advertise the same thing at once); when that
  changes, the stored selection is dropped so the hub selects again.
* The pipeline (and so ffmpeg's CPU) runs only while recording is on and the camera is active,
  or, with the built-in motion detector, whenever the camera is active ("Detect Activity"
  means exactly that): the detector's frames are a second output of the same ffmpeg, or come
  from a separate small ffmpeg on the camera's substream (``detect_source``).
* Motion (from triggers, the demo schedule or a doorbell press) is the MotionDetected event
  that makes a hub open a recording; the hub then sets up HDS and opens a dataSend stream.
* A recording stream gets init + the selected prebuffer + live fragments until the hub closes
  it (tvOS 16+ ignores end-of-stream, docs/field-lessons.md #1), the configured maximum event
  length passes, the camera is switched off (reason 1), or ffmpeg restarts (the init segment
  changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__
from ..hap import Accessory, AccessoryServer, Advertiser, HapError, HapStatus, WriteContext, catalog
from ..hds import CloseReason, HDSServer, RecordingStream, SetupError, SnapshotStream, StreamClosedError
from ..media import MediaPipeline, PipelineConfig, PipelineEvent, Profile, RecordingSettings, parse_source
from ..media.detect_feed import DetectFeed
from ..media.frames import DetectionZones, FrameCallback
from .camera_media import SNAPSHOT_TIMEOUT_S, CameraMedia, FrameObservers
from .core import (
    Action,
    CameraCore,
    CloseRecording,
    Emit,
    Persist,
    Reconfigure,
    ReleaseRestart,
    SetCharacteristic,
    SetLiveEnabled,
    SetRecordCodec,
    UpdatePipeline,
)
from .events import EventBus, LiveSessionsChanged, MotionSource
from .live import LiveStreaming
from .live.supported_streams import supported_audio_stream, supported_rtp, supported_video_stream
from .live.tlv import CODEC_OPUS as LIVE_CODEC_OPUS
from .live.tlv import AudioSelection, SelectedCommand
from .live.tlv import Command as LiveCommand
from .recording import Recorder, RecordingSession, RecordingSink
from .secure_video.handlers import SecureVideoState, detection_zones, zone_regions
from .secure_video.services import SecureVideoServices, build_secure_video
from .secure_video.tiers import (
    AUDIO_BPS,
    AUDIO_PAYLOAD_TYPE,
    VIDEO_PAYLOAD_TYPE,
    audio_tiers,
    capabilities,
    plan_tiers,
    sensor_id,
    video_codec,
    video_tiers,
)
from .secure_video.tlv import ControlCommand, ControlStatus, StreamingControlResponse, parse_streaming_control
from .services import OptionalModes, build_services
from .settings import CameraSettings
from .spec import CameraSpec
from .status import MODE_LABELS, CameraStatus, ControllerInfo, MediaStatus, short_controller_id

__all__ = ["CATEGORY_IP_CAMERA", "Camera"]

log = logging.getLogger(__name__)

CATEGORY_IP_CAMERA = 17

# The characteristics a hub writes whose rules are the core's (names as in CameraServices).
_WRITES = ("recording_active", "homekit_active", "event_snapshots", "periodic_snapshots",
           "recording_audio_active", "rtp_active", "indicator", "night_vision", "selected")


class Camera:
    """One camera. ``start()``/``stop()`` own every task and process it creates."""

    def __init__(self, spec: CameraSpec, state_dir: Path, *, host: str, port: int,
                 advertiser: Advertiser | None, ffmpeg: str = "ffmpeg", reset_damaged_state: bool = False,
                 profiles: Mapping[str, Profile] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.clock = clock  # monotonic seconds, for the pipeline, the recordings and motion alike
        self.name = spec.name
        self.events = EventBus()  # observers: status page, MQTT, the parent protocol (camera/events.py)
        self.services = s = build_services(doorbell=spec.doorbell, optional=OptionalModes(
            spec.operating_mode_indicator or spec.secure_video, spec.night_vision, spec.manually_disabled),
            talk=spec.two_way_audio is not None and not spec.secure_video)
        #: The secure-video model's services (docs/secure-video.md), or None for the classic model.
        self.secure: SecureVideoServices | None = None
        published = s.all()
        if spec.secure_video:
            self.secure = build_secure_video(s, sensor_id(spec.state_file))
            published = self.secure.services
        info = catalog.accessory_information(spec.name, manufacturer="hksv-sidecar",
                                             model="hksv-sidecar camera", serial=spec.slug, firmware=__version__)
        self.accessory = Accessory(category=CATEGORY_IP_CAMERA).add(info, catalog.protocol_information(), *published)
        self.server = AccessoryServer(
            self.accessory, state_dir / spec.state_file, name=spec.name, host=host, port=port,
            setup_code=spec.setup_code, advertiser=advertiser,
            resource_handler=lambda width, height, reason: self.media.jpeg(width, height, reason),
            resource_timeout=SNAPSHOT_TIMEOUT_S + 2, on_factory_reset=lambda: self._act(self.core.factory_reset()),
            on_pairing=lambda notice: self._act(self.core.pairing(notice)), reset_damaged_state=reset_damaged_state,
        )
        self.state = self.server.state
        self._listening = False
        self.source = parse_source(spec.source)
        audio = bool(CameraSettings.load(self.state.app).recording_audio_active)
        self.pipeline = MediaPipeline(PipelineConfig(
            source=self.source, profile=spec.profile, name=spec.name,
            transcode_fallback=spec.transcode_fallback, ffmpeg_bin=ffmpeg, profiles=profiles,
            record_codec="h264" if spec.record_codec == "h264" else "hevc",
            prebuffer_capacity_s=max(12.0, spec.prebuffer_ms / 1000 + 8),
            settings=RecordingSettings(audio=audio),  # no selection yet: the source's size, our audio
            detect=spec.detect if spec.detect_source is None else None), on_event=self._on_pipeline_event, clock=clock)
        self.core = CameraCore(spec, self.state.app, copy=self.pipeline.profile.is_copy, paired=self.server.paired)
        self.frames = FrameObservers()  # the detector's frames, from the pipeline or a separate feed
        self.pipeline.on_frame = self.frames
        self.pipeline.restart_gate = self.core.restart_wanted  # never end a recording in flight
        detect_feed = None if spec.detect is None or spec.detect_source is None else DetectFeed(
            parse_source(spec.detect_source), self.frames, detect=spec.detect, name=spec.name, ffmpeg_bin=ffmpeg)
        self.hds = HDSServer(gate=self.core, on_stream=self._on_stream, host=host,
                             on_snapshot=self._on_hds_snapshot if spec.secure_video else None)
        self.media = CameraMedia(spec, self.core, self.pipeline, detect_feed, self.hds, source=self.source,
                                 ffmpeg=ffmpeg, act=self._act, spawn=self._spawn)
        self._live_sessions = 0
        self.live = LiveStreaming(name=spec.name, source=self.source, ffmpeg=ffmpeg,
                                  max_sessions=spec.max_live_streams, probe=self.core.offer.cached_probe,
                                  copy_allowed=self.pipeline.profile.is_copy, on_status=self._live_status,
                                  talk=spec.two_way_audio, talk_muted=self._speaker_muted,
                                  talk_volume=self._speaker_volume)
        self._stream_task: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        #: Objects given exactly what each recording sent to the hub (e.g. a local clip archive):
        #: ``begin(stream_id, init)``, ``write(fragment)``, ``end(RecordingEnded)``.
        self.recording_sinks: list[RecordingSink] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.secure_state = SecureVideoState(self.state.app, lambda: os.urandom(16))
        self._zone_observers: list[Callable[[DetectionZones], None]] = []
        self._wire()
        if self.secure is not None:
            self._wire_secure(self.secure)
        self._act(self.core.startup())

    def _speaker_muted(self) -> bool:
        mute = self.services.speaker_mute
        return mute is not None and bool(mute.value)

    def _speaker_volume(self) -> int:
        volume = self.services.speaker_volume
        return 100 if volume is None or volume.value is None else int(volume.value)

    @property
    def has_doorbell(self) -> bool:
        return self.services.doorbell_press is not None

    @property
    def http_motion(self) -> bool:
        """Whether HTTP triggers may raise motion (the camera's ``motion:`` list names http)."""
        return self.spec.http_motion

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.server.start()
        self._listening = True
        self._spawn(self.media.probe_until_known(), "probe")
        await self.media.apply()
        if self.spec.motion_every:
            self._spawn(self._demo_motion(self.spec.motion_every), "demo-motion")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        recorder, task = self._recorder, self._stream_task
        if recorder is not None:
            recorder.stopping()
            if task is not None:  # let it finish, so its RecordingEnded is emitted
                with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 2.0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.live.aclose()
        await self.hds.aclose()
        await self.media.stop()
        await self.server.stop()
        self._listening = False

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.spec.slug}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %s failed: %r", self.name, task.get_name(), task.exception())

    # -- the core's actions -----------------------------------------------------------------------
    def _act(self, actions: list[Action]) -> None:
        """Carry out the core's answer, in order, and arm its next deadline."""
        for action in actions:
            if isinstance(action, SetCharacteristic):
                char = getattr(self.services, action.name)
                if action.notify:
                    char.set_value(action.value)
                else:
                    char.value = action.value
            elif isinstance(action, Emit):
                self.events.emit(action.event)
            elif isinstance(action, Persist):
                self.server.save_state()
            elif isinstance(action, UpdatePipeline):
                self._spawn(self.media.apply(), "pipeline-gate")
            elif isinstance(action, Reconfigure):
                self._spawn(self.media.reconfigure(), "reconfigure")
            elif isinstance(action, CloseRecording):
                if self._recorder is not None:
                    self._recorder.close(action.reason, action.detail)
            elif isinstance(action, SetLiveEnabled):
                self.live.set_enabled(action.enabled)
            elif isinstance(action, ReleaseRestart):
                self.pipeline.release_restart()
            elif isinstance(action, SetRecordCodec):
                log.warning("%s: record_codec auto: %s", self.name, action.reason)
                self.pipeline.set_record_codec("hevc" if action.codec == "hevc" else "h264")
        if self.secure is not None:
            self._sync_secure(self.secure)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, deadline - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._act(self.core.timer(self.clock()))

    # -- motion and doorbell ----------------------------------------------------------------------
    def set_motion(self, active: bool, *, auto_reset_s: float | None = None, source: MotionSource = "manual") -> None:
        """Raise or clear motion. Hubs open a recording when they see it rise.

        The detector's OFF does not clear motion another source raised after it (an HTTP or
        MQTT trigger keeps its own timeout); every other clear is explicit and wins.
        With the secure-video model's MotionEnabled off, nothing raises motion.
        """
        if active and self.secure is not None and not self.secure_state.motion_enabled:
            return
        self._act(self.core.set_motion(active, source, self.clock(), auto_reset_s))

    def trigger_motion(self, source: MotionSource = "http") -> None:
        """Motion from a trigger (HTTP, MQTT, detector): clears itself after ``motion_timeout_s``."""
        self.set_motion(True, auto_reset_s=self.spec.motion_timeout_s or None, source=source)

    def ring_doorbell(self, source: MotionSource = "http") -> None:
        """A press: the doorbell event, and motion too (hubs never select the doorbell trigger)."""
        self._act(self.core.ring(source, self.clock()))

    def add_frame_observer(self, observer: FrameCallback) -> Callable[[], None]:
        """Receive the detector frames (``spec.detect``) while the camera is active; returns the
        function that stops them. Called in the event loop: observers must be quick."""
        return self.frames.add(observer)

    async def _demo_motion(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.set_motion(not self.core.motion.active, source="demo")

    # -- HAP: characteristics, pairings, snapshots ------------------------------------------------
    def _wire(self) -> None:
        s = self.services
        for name in _WRITES:
            char = getattr(s, name)
            if char is not None:
                char.on_write = partial(self._write, "selection" if name == "selected" else name)
        s.selected.on_read = lambda ctx: self.core.offer.read_selection()
        s.setup_data_stream.on_write = self._write_setup_data_stream
        s.setup_data_stream.on_read = lambda ctx: self.hds.read_value()
        s.supported_video_stream.value = supported_video_stream()
        s.supported_audio_stream.value = supported_audio_stream()
        s.supported_rtp.value = supported_rtp()
        s.setup_endpoints.on_write = self.live.write_setup
        s.setup_endpoints.on_read = self.live.read_setup
        s.selected_rtp.on_write = self.live.write_selected
        s.selected_rtp.on_read = self.live.read_selected

    # -- the secure-video model (docs/secure-video.md) -------------------------------------------
    def _wire_secure(self, sv: SecureVideoServices) -> None:
        state = self.secure_state
        sv.streaming_enabled.on_write = lambda value, ctx: self._act(self.core.write("rtp_active", int(value)))
        sv.zones.on_write = self._write_zones
        sv.zones.value = state.zones.encode()
        sv.zones_active.value = int(state.zones_active)
        sv.zones_active.on_write = lambda value, ctx: self._write_secure_flag("zones_active", value)
        sv.motion_enabled.value = state.motion_enabled
        sv.motion_enabled.on_write = lambda value, ctx: self._write_secure_flag("motion_enabled", value)
        sv.setup_endpoints.on_write = self.live.write_setup
        sv.setup_endpoints.on_read = self.live.read_setup
        sv.solicit_offer.on_write = lambda value, ctx: state.solicit_offer(value)
        sv.provide_answer.on_write = lambda value, ctx: state.unknown_session(value)
        sv.webrtc_control.on_write = lambda value, ctx: state.unknown_session(value)
        sv.control.on_write = self._write_tier_control
        self._advertise_tiers(sv)

    def _advertise_tiers(self, sv: SecureVideoServices) -> None:
        """Capabilities and tiers from what the camera delivers (the cached probe) and ``tiers:``."""
        probe = self.core.offer.cached_probe()
        plans = plan_tiers(probe, self.spec.tiers)
        video = video_tiers(plans, video_codec(probe)).encode()
        audio = audio_tiers().encode()
        for char, value in ((sv.capabilities, capabilities(plans, self.spec.state_file).encode()),
                            (sv.video_tiers, video), (sv.webrtc_video_tiers, video),
                            (sv.audio_tiers, audio), (sv.webrtc_audio_tiers, audio)):
            char.set_value(value)

    def _sync_secure(self, sv: SecureVideoServices) -> None:
        """StreamingEnabled shows the core's live switch (the classic RTP Active it stands for); the
        tiers follow the latest probe."""
        enabled = bool(self.services.rtp_active.value)
        sv.streaming_enabled.set_value(enabled)
        sv.tier_streaming_enabled.set_value(enabled)
        self._advertise_tiers(sv)  # after a probe: what the camera now delivers

    def _write_zones(self, value: bytes, ctx: WriteContext) -> None:
        if self.secure_state.write_zones(value):
            self.server.save_state()
            log.info("%s: the hub wrote %d motion zone(s)", self.name, len(self.secure_state.zones.zones))
            self._zones_changed()

    def _write_secure_flag(self, name: str, value: Any) -> None:
        if not self.secure_state.write_flag(name, value):
            return
        self.server.save_state()
        if name == "zones_active":
            self._zones_changed()
        elif not value and self.core.motion.active:  # MotionEnabled off: motion ends now
            self._act(self.core.set_motion(False, "manual", self.clock(), None))

    def detection_zones(self) -> DetectionZones:
        """Where the built-in detector looks: the hub's zones (secure-video model), else everywhere."""
        if self.secure is None:
            return DetectionZones()
        high = plan_tiers(self.core.offer.cached_probe(), ())[0]
        return detection_zones(self.secure_state.regions(), high.width, high.height)

    def add_zones_observer(self, observer: Callable[[DetectionZones], None]) -> Callable[[], None]:
        """Be told the detector's zones now and whenever the hub changes them; returns the
        function that stops it."""
        self._zone_observers.append(observer)
        observer(self.detection_zones())

        def remove() -> None:
            if observer in self._zone_observers:
                self._zone_observers.remove(observer)

        return remove

    def _on_hds_snapshot(self, stream: SnapshotStream) -> None:
        """A hub asked for a still picture over HDS (secure-video model; docs/secure-video.md §Behaviour)."""
        self._spawn(self._send_hds_snapshot(stream), f"hds-snapshot-{stream.stream_id}")

    async def _send_hds_snapshot(self, stream: SnapshotStream) -> None:
        high = plan_tiers(self.core.offer.cached_probe(), ())[0]
        try:
            jpeg = await self.media.jpeg(high.width, high.height, None)
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

    def _zone_words(self) -> tuple[str, ...]:
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
        source = None
        if command.command is ControlCommand.END:
            selected = SelectedCommand(session, LiveCommand.END)
        else:
            plans = plan_tiers(self.core.offer.cached_probe(), self.spec.tiers)
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
            log.info("%s: tier %s (%dx%d@%d) asked for", self.name, plan.name, plan.width, plan.height, plan.fps)
        try:
            self.live.start_selected(selected, ctx, source)
        except HapError as exc:
            log.info("%s: tier control refused: %s", self.name, exc)
            return answer(ControlStatus.BUSY if exc.status is HapStatus.RESOURCE_BUSY else ControlStatus.ERROR)
        return answer(ControlStatus.OK)

    def _write(self, name: str, value: Any, ctx: WriteContext) -> None:
        self._act(self.core.write(name, value))

    def _write_setup_data_stream(self, value: bytes, ctx: WriteContext) -> bytes:
        try:
            return self.hds.setup(value, shared_secret=ctx.session.shared_secret,
                                  on_hap_close=ctx.session.add_close_callback)
        except SetupError as exc:
            raise HapError(HapStatus.INVALID_VALUE, str(exc)) from None

    def _on_pipeline_event(self, event: PipelineEvent) -> None:
        """The recording ffmpeg's state, for observers (status page, MQTT, the parent process)."""
        self._act(self.core.pipeline_event(event, copy=self.pipeline.profile.is_copy))

    def _live_status(self, value: bytes) -> None:
        """StreamingStatus for the hub, and a LiveSessionsChanged for observers when the count moves."""
        self.services.streaming_status.set_value(value)
        sessions = self.live.active_sessions
        if sessions != self._live_sessions:
            self._live_sessions = sessions
            self.events.emit(LiveSessionsChanged(camera=self.name, sessions=sessions))

    # -- recordings -----------------------------------------------------------------------------
    def _on_stream(self, stream: RecordingStream) -> None:
        selection = self.core.selection
        session = RecordingSession(stream.stream_id, self.clock(),
                                   prebuffer_ms=selection.prebuffer_ms if selection else 4000,
                                   max_event_s=self.spec.max_event_s,
                                   wall_clock_offset_s=time.time() - self.clock())
        recorder = Recorder(self.name, stream, session, self.pipeline, clock=self.clock, sinks=self.recording_sinks)
        self._recorder = recorder
        log.info("%s: recording stream %d opened", self.name, stream.stream_id)
        self._act(self.core.recording_opened(stream.stream_id))  # from now on, switching off closes it
        self._stream_task = self._spawn(self._record(recorder), f"record-{stream.stream_id}")

    async def _record(self, recorder: Recorder) -> None:
        """Run one dataSend stream (camera/recording/recorder.py) and tell the observers how it went."""
        stream = recorder.stream
        try:
            if not self.media.running:
                await self.media.apply()
            event = await recorder.run()
        finally:
            if self._recorder is recorder:
                self._recorder = None
        first = "no media sent" if event.first_byte_s is None else f"first byte after {event.first_byte_s:.1f} s"
        log.info("%s: recording stream %d ended after %.1f s: %s by %s, %d bytes sent, %d fragments, %s (%s)",
                 self.name, stream.stream_id, event.duration_s, event.reason, event.closed_by, event.bytes_sent,
                 event.fragments_sent, first, event.detail)
        self._act(self.core.recording_ended(event))

    # -- actions for the status page and the parent process ---------------------------------------
    def restart_ffmpeg(self) -> bool:
        """Start a fresh ffmpeg run now (False when ffmpeg is not wanted: recording is off)."""
        return self.media.restart()

    def unpair(self) -> bool:
        """Forget every paired controller (the user removed the camera elsewhere); see the server."""
        return self.server.remove_all_pairings()

    def reset_pairings(self) -> bool:
        """Remove every controller: the camera is unpaired and shows its setup code again."""
        log.warning("%s: removing all pairings (asked on the status page)", self.name)
        return self.unpair()

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> CameraStatus:
        """Everything the status page, /healthz, /metrics and the API show, as plain data."""
        st = self.pipeline.status()
        last_at = self.pipeline.prebuffer.last_fragment_at
        sel, settings = self.core.selection, self.core.settings
        paired = self.server.paired
        media = MediaStatus(
            wanted=self.core.pipeline_wanted, state=st.state.value if self.media.running else "stopped",
            last_error=st.last_error, restarts=st.restarts, width=st.width, height=st.height, fps=st.fps,
            bitrate_kbps=st.bitrate_kbps, keyframe_interval_s=st.keyframe_interval_s, warning=st.warning,
            prebuffer_s=st.prebuffer_s, fragments=st.fragments, bytes_in=st.bytes_in,
            last_fragment_age_s=None if last_at is None else max(0.0, self.clock() - last_at))
        return CameraStatus(
            name=self.name, slug=self.spec.slug, source=self.source.describe(), profile=st.profile,
            doorbell=self.spec.doorbell, hap_port=self.server.port, hap_listening=self._listening,
            paired=paired,
            controllers=tuple(ControllerInfo(short_controller_id(p.identifier), p.admin)
                              for p in self.state.pairings.values()),
            setup_code=None if paired else self.server.setup_code,
            setup_uri=None if paired else self.server.setup_uri,
            mode=MODE_LABELS.get(settings.mode_name, settings.mode_name),
            recording_active=bool(settings.recording_active),
            selection=None if sel is None else (f"{sel.width}x{sel.height}@{sel.fps} {sel.bitrate_kbps} kbps, "
                                                f"prebuffer {sel.prebuffer_ms} ms"),
            hap_sessions=self.server.session_count, pair_verify_failures=self.server.verify_failures,
            failed_setup_attempts=self.state.failed_attempts,
            live_sessions=self.live.active_sessions, motion=self.core.motion.active,
            recording=self._recorder is not None, recordings=self.core.recordings, prebuffer_ms=self.spec.prebuffer_ms,
            media=media, record_codec=self.core.codec.describe(), homekit_model=self.spec.homekit_model,
            zones=self._zone_words(), motion_enabled=self.secure is None or self.secure_state.motion_enabled)
