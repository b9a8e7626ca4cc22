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
from pathlib import Path
from typing import Any

from .. import __version__
from ..hap import Accessory, AccessoryServer, Advertiser, catalog
from ..hds import HDSServer, RecordingStream
from ..hds.sealing_pool import SealingPool
from ..media import MediaPipeline, PipelineConfig, PipelineEvent, Profile, RecordingSettings, parse_source
from ..media.detect_feed import DetectFeed
from ..media.frames import DetectionZones, FrameCallback
from .camera_media import SNAPSHOT_TIMEOUT_S, CameraMedia, FrameObservers
from .characteristics import CharacteristicWiring
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
from .recording import Recorder, RecordingSession, RecordingSink
from .recording.configuration import MIN_PREBUFFER_MS
from .secure_video.handlers import SecureVideoState
from .secure_video.services import SecureVideoServices, build_secure_video
from .secure_video.tiers import sensor_id
from .secure_video.wiring import SecureVideoWiring
from .services import OptionalModes, build_services
from .settings import CameraSettings
from .spec import CameraSpec
from .status import MODE_LABELS, CameraStatus, ControllerInfo, MediaStatus, short_controller_id

__all__ = ["CATEGORY_IP_CAMERA", "Camera"]

log = logging.getLogger(__name__)

CATEGORY_IP_CAMERA = 17

class Camera:
    """One camera. ``start()``/``stop()`` own every task and process it creates.

    ``ffmpeg`` is the binary every ffmpeg of the camera runs, except the long-lived recording
    pipeline's while it copies, when ``recording_ffmpeg`` is given (the App's ``copy_ffmpeg`` for
    copy-mode cameras); a transcode fallback runs ``ffmpeg`` again.
    """

    def __init__(self, spec: CameraSpec, state_dir: Path, *, host: str, port: int,
                 advertiser: Advertiser | None, ffmpeg: str = "ffmpeg", reset_damaged_state: bool = False,
                 profiles: Mapping[str, Profile] | None = None, clock: Callable[[], float] = time.monotonic,
                 sealing_pool: SealingPool | None = None, recording_ffmpeg: str | None = None) -> None:
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
            self.secure = build_secure_video(s, sensor_id(spec.state_file),
                                             setup_write_response=spec.setup_endpoints_answer == "write_response")
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
            transcode_fallback=spec.transcode_fallback, ffmpeg_bin=ffmpeg, copy_ffmpeg_bin=recording_ffmpeg,
            profiles=profiles,
            record_codec="h264" if spec.record_codec == "h264" else "hevc",
            prebuffer_serve_ms=MIN_PREBUFFER_MS,  # the stored selection's, from startup()
            settings=RecordingSettings(audio=audio),  # no selection yet: the source's size, our audio
            detect=spec.detect if spec.detect_source is None else None), on_event=self._on_pipeline_event, clock=clock)
        self.core = CameraCore(spec, self.state.app, copy=self.pipeline.profile.is_copy, paired=self.server.paired)
        self.frames = FrameObservers()  # the detector's frames, from the pipeline or a separate feed
        self.pipeline.on_frame = self.frames
        self.pipeline.restart_gate = self.core.restart_wanted  # never end a recording in flight
        detect_feed = None if spec.detect is None or spec.detect_source is None else DetectFeed(
            parse_source(spec.detect_source), self.frames, detect=spec.detect, name=spec.name, ffmpeg_bin=ffmpeg)
        self.hds = HDSServer(gate=self.core, on_stream=self._on_stream, host=host, on_snapshot=(
            (lambda stream: self.secure_video.on_hds_snapshot(stream)) if spec.secure_video else None),
            pool=sealing_pool)  # shared by the App's cameras: idle sealing memory bounded, not per camera
        self.media = CameraMedia(spec, self.core, self.pipeline, detect_feed, self.hds, source=self.source,
                                 ffmpeg=ffmpeg, act=self._act, spawn=self._spawn)
        self._live_sessions = 0
        self.live = LiveStreaming(name=spec.name, source=self.source, ffmpeg=ffmpeg,
                                  max_sessions=spec.max_live_streams, probe=self.core.offer.cached_probe,
                                  copy_allowed=self.pipeline.profile.is_copy, on_status=self._live_status,
                                  talk=spec.two_way_audio, talk_muted=s.talk_muted,
                                  talk_volume=s.talk_volume)
        self._stream_task: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        #: Objects given exactly what each recording sent to the hub (e.g. a local clip archive):
        #: ``begin(stream_id, init)``, ``write(fragment)``, ``end(RecordingEnded)``.
        self.recording_sinks: list[RecordingSink] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.secure_state = SecureVideoState(self.state.app, lambda: os.urandom(16))
        self.secure_video = SecureVideoWiring(
            spec, self.core, self.services, self.secure, self.secure_state, self.live,
            jpeg=lambda width, height, reason: self.media.jpeg(width, height, reason),
            save_state=self.server.save_state, act=self._act, spawn=self._spawn, clock=clock, profiles=profiles)
        CharacteristicWiring(self.services, self.core, self.hds, self.live, self._act).wire()
        if self.secure is not None:
            self.secure_video.wire(self.secure)
        self._act(self.core.startup())

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
            self.secure_video.sync(self.secure)
        # The selection may have changed: the ring keeps what a recording is sent (a smaller
        # request drops older fragments with the next one; a larger one fills as ffmpeg goes).
        self.pipeline.prebuffer.serve_ms = self.core.prebuffer_ms
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

    # -- the secure-video model's motion zones (docs/secure-video.md) ---------------------------
    def detection_zones(self) -> DetectionZones:
        """Where the built-in detector looks: the hub's zones (secure-video model), else everywhere."""
        return self.secure_video.detection_zones()

    def add_zones_observer(self, observer: Callable[[DetectionZones], None]) -> Callable[[], None]:
        """Be told the detector's zones now and whenever the hub changes them; returns the
        function that stops it."""
        return self.secure_video.add_zones_observer(observer)

    # -- what the pipeline and live view report -----------------------------------------------------
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
        session = RecordingSession(stream.stream_id, self.clock(),
                                   prebuffer_ms=self.core.prebuffer_ms,
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
            zones=self.secure_video.zone_words(),
            motion_enabled=self.secure is None or self.secure_state.motion_enabled)
