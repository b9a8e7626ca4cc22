"""One HomeKit Secure Video camera: where the HAP server, HDS and the media pipeline meet.

The camera owns its accessory (standalone, category IP camera, own port and pairing), its
settings (operating modes, recording switches, the hub's selection; persisted in the
accessory's state file), its ffmpeg pipeline and its HDS listener. Its life in brief:

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
  it (tvOS 16+ ignores end-of-stream, docs/field-lessons.md #1), the configured maximum event length
  passes, the camera is switched off (reason 1), or ffmpeg restarts (the init segment changed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__
from ..hap import (
    Accessory,
    AccessoryServer,
    Advertiser,
    HapError,
    HapStatus,
    PairingNotice,
    WriteContext,
    catalog,
)
from ..hap.model import ReadContext
from ..hds import HDSServer, RecordingStream, SetupError
from ..media import (
    MediaPipeline,
    PipelineConfig,
    PipelineEvent,
    ProbeError,
    Profile,
    RecordingSettings,
    SourceProbe,
    parse_source,
    probe_source,
)
from ..media.detect_feed import DetectFeed
from ..media.frames import FrameCallback, GrayFrame
from .events import (
    DoorbellPressed,
    EventBus,
    LiveSessionsChanged,
    MotionChanged,
    MotionSource,
    PairingChanged,
    PipelineChanged,
    RecordingOpened,
    SetupCodeRejected,
)
from .live_view import LiveStreaming
from .modes import CameraSettings, snapshot_refusal
from .recorder import Recorder
from .recording import RecordingSession
from .recording_config import RecordingSelection, SupportedRecording, parse_selection, supported_for_source
from .rtp_config import supported_audio_stream, supported_rtp, supported_video_stream
from .services import OptionalModes, build_services
from .sink import RecordingSink
from .snapshot import SnapshotError, jpeg_from_fmp4, jpeg_from_input, jpeg_from_url
from .spec import CameraSpec
from .status import MODE_LABELS, CameraSnapshot, ControllerInfo, MediaStatus, short_controller_id

__all__ = ["CATEGORY_IP_CAMERA", "Camera"]

log = logging.getLogger(__name__)

CATEGORY_IP_CAMERA = 17
PROBE_KEY = "probe"
SNAPSHOT_TIMEOUT_S = 8.0
FPS_JITTER = 0.25  # a re-measured frame rate within this fraction of the known one is the same


class Camera:
    """One camera. ``start()``/``stop()`` own every task and process it creates."""

    def __init__(self, spec: CameraSpec, state_dir: Path, *, host: str, port: int,
                 advertiser: Advertiser | None, ffmpeg: str = "ffmpeg", reset_damaged_state: bool = False,
                 profiles: Mapping[str, Profile] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.clock = clock  # monotonic seconds, for the pipeline and the recordings alike
        self.name = spec.name
        self.events = EventBus()  # observers: status page, MQTT, the parent protocol (camera/events.py)
        self._ffmpeg = ffmpeg
        self.services = s = build_services(doorbell=spec.doorbell, optional=OptionalModes(
            spec.operating_mode_indicator, spec.night_vision, spec.manually_disabled))
        info = catalog.accessory_information(spec.name, manufacturer="hksv-sidecar",
                                             model="hksv-sidecar camera", serial=spec.slug, firmware=__version__)
        self.accessory = Accessory(category=CATEGORY_IP_CAMERA).add(info, catalog.protocol_information(), *s.all())
        self.server = AccessoryServer(
            self.accessory, state_dir / f"{spec.slug}.json", name=spec.name, host=host, port=port,
            setup_code=spec.setup_code, advertiser=advertiser, resource_handler=self._snapshot,
            resource_timeout=SNAPSHOT_TIMEOUT_S + 2, on_factory_reset=self._factory_reset,
            reset_damaged_state=reset_damaged_state,
        )
        self.state = self.server.state
        self.server.core.callbacks.on_pairing = self._on_pairing_notice
        self._listening = False
        self.settings = CameraSettings.load(self.state.app)
        self.source = parse_source(spec.source)
        self.pipeline = MediaPipeline(PipelineConfig(
            source=self.source, profile=spec.profile, name=spec.name,
            transcode_fallback=spec.transcode_fallback, ffmpeg_bin=ffmpeg, profiles=profiles,
            prebuffer_capacity_s=max(12.0, spec.prebuffer_ms / 1000 + 8),
            settings=self._recording_settings(None),
            detect=spec.detect if spec.detect_source is None else None), on_event=self._on_pipeline_event, clock=clock)
        self._frame_observers: list[FrameCallback] = []
        self.pipeline.on_frame = self._on_frame
        self.detect_feed = None if spec.detect is None or spec.detect_source is None else DetectFeed(
            parse_source(spec.detect_source), self._on_frame, detect=spec.detect, name=spec.name, ffmpeg_bin=ffmpeg)
        self._motion_raised_by: MotionSource | None = None
        self.hds = HDSServer(gate=self, on_stream=self._on_stream, host=host)
        self._live_sessions = 0
        self.live = LiveStreaming(name=spec.name, source=self.source, ffmpeg=ffmpeg,
                                  max_sessions=spec.max_live_streams, probe=self._cached_probe,
                                  copy_allowed=self.pipeline.profile.is_copy,
                                  on_status=self._live_status)
        self.supported = self._supported_from(self._cached_probe())
        self.selection: RecordingSelection | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        #: Objects given exactly what each recording sent to the hub (e.g. a local clip archive):
        #: ``begin(stream_id, init)``, ``write(fragment)``, ``end(RecordingEnded)``.
        self.recording_sinks: list[RecordingSink] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._motion_reset: asyncio.TimerHandle | None = None
        self._pipeline_running = False
        self._pipeline_lock = asyncio.Lock()
        self._load_selection()
        self._publish_supported()
        self._wire()
        self._apply_settings_to_characteristics()
        self.recordings = 0

    @property
    def has_doorbell(self) -> bool:
        return self.services.doorbell_press is not None

    def _live_status(self, value: bytes) -> None:
        """StreamingStatus for the hub, and a LiveSessionsChanged for observers when the count moves."""
        self.services.streaming_status.set_value(value)
        sessions = self.live.active_sessions
        if sessions != self._live_sessions:
            self._live_sessions = sessions
            self.events.emit(LiveSessionsChanged(camera=self.name, sessions=sessions))

    @property
    def http_motion(self) -> bool:
        """Whether HTTP triggers may raise motion (the camera's ``motion:`` list names http)."""
        return self.spec.http_motion

    # -- OpenGate (asked by HDS before a dataSend open is accepted) ----------------------------
    def recording_active(self) -> bool:
        return bool(self.settings.recording_active)

    def camera_active(self) -> bool:
        return bool(self.settings.homekit_active)

    def has_selected_configuration(self) -> bool:
        return self.selection is not None

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.server.start()
        self._listening = True
        self._spawn(self._probe_until_known(), "probe")
        await self._apply_pipeline_gate()
        if self.spec.motion_every:
            self._spawn(self._demo_motion(self.spec.motion_every), "demo-motion")

    async def stop(self) -> None:
        if self._motion_reset is not None:
            self._motion_reset.cancel()
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
        if self.detect_feed is not None:
            await self.detect_feed.stop()
        await self.pipeline.stop()
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

    # -- motion and doorbell ----------------------------------------------------------------------
    def set_motion(self, active: bool, *, auto_reset_s: float | None = None, source: MotionSource = "manual") -> None:
        """Raise or clear motion. Hubs open a recording when they see it rise.

        The detector's OFF does not clear motion another source raised after it (an HTTP or
        MQTT trigger keeps its own timeout); every other clear is explicit and wins.
        """
        if not active and source == "detector" and self._motion_raised_by not in (None, "detector"):
            return
        if active:
            self._motion_raised_by = source
        if self._motion_reset is not None:
            self._motion_reset.cancel()
            self._motion_reset = None
        if self.services.motion.set_value(active):
            log.info("%s: motion %s (%s)", self.name, "detected" if active else "cleared", source)
            self.events.emit(MotionChanged(camera=self.name, active=active, source=source))
        if active and auto_reset_s:
            self._motion_reset = asyncio.get_running_loop().call_later(
                auto_reset_s, partial(self.set_motion, False, source="timeout"))

    def trigger_motion(self, source: MotionSource = "http") -> None:
        """Motion from a trigger (HTTP, MQTT, detector): clears itself after ``motion_timeout_s``."""
        self.set_motion(True, auto_reset_s=self.spec.motion_timeout_s or None, source=source)

    def ring_doorbell(self, source: MotionSource = "http") -> None:
        """A press: the doorbell event, and motion too (hubs never select the doorbell trigger)."""
        if self.services.doorbell_press is not None:
            self.services.doorbell_press.set_value(0)
            self.events.emit(DoorbellPressed(camera=self.name, source=source))
        self.trigger_motion(source="doorbell")

    def add_frame_observer(self, observer: FrameCallback) -> Callable[[], None]:
        """Receive the detector frames (``spec.detect``) while the camera is active; returns the
        function that stops them. Called in the event loop: observers must be quick."""
        self._frame_observers.append(observer)

        def remove() -> None:
            if observer in self._frame_observers:
                self._frame_observers.remove(observer)

        return remove

    def _on_frame(self, frame: GrayFrame, now: float) -> None:
        for observer in list(self._frame_observers):
            observer(frame, now)

    def unpair(self) -> bool:
        """Forget every paired controller (the user removed the camera elsewhere); see the server."""
        return self.server.remove_all_pairings()

    async def _demo_motion(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.set_motion(not self.services.motion.value, source="demo")

    # -- characteristic handlers --------------------------------------------------------------
    def _wire(self) -> None:
        s = self.services
        s.recording_active.on_write = self._write_recording_active
        s.homekit_active.on_write = self._write_homekit_active
        s.event_snapshots.on_write = lambda v, ctx: self._update(event_snapshots=v)
        s.periodic_snapshots.on_write = lambda v, ctx: self._update(periodic_snapshots=v)
        s.recording_audio_active.on_write = self._write_recording_audio
        s.rtp_active.on_write = self._write_rtp_active
        if s.indicator is not None:
            s.indicator.on_write = lambda v, ctx: self._update(indicator=bool(v))
        if s.night_vision is not None:
            s.night_vision.on_write = lambda v, ctx: self._update(night_vision=bool(v))
        s.selected.on_write = self._write_selection
        s.selected.on_read = self._read_selection
        s.setup_data_stream.on_write = self._write_setup_data_stream
        s.setup_data_stream.on_read = lambda ctx: self.hds.read_value()
        s.supported_video_stream.value = supported_video_stream()
        s.supported_audio_stream.value = supported_audio_stream()
        s.supported_rtp.value = supported_rtp()
        s.setup_endpoints.on_write = self.live.write_setup
        s.setup_endpoints.on_read = self.live.read_setup
        s.selected_rtp.on_write = self.live.write_selected
        s.selected_rtp.on_read = self.live.read_selected

    def _apply_settings_to_characteristics(self) -> None:
        s, st = self.services, self.settings
        s.recording_active.value = st.recording_active
        s.recording_audio_active.value = st.recording_audio_active
        s.homekit_active.value = st.homekit_active
        s.event_snapshots.value = st.event_snapshots
        s.periodic_snapshots.value = st.periodic_snapshots
        s.rtp_active.value = st.rtp_active
        s.motion_status_active.value = bool(st.homekit_active)
        self.live.set_enabled(bool(st.rtp_active and st.homekit_active))
        if s.indicator is not None:
            s.indicator.value = st.indicator
        if s.night_vision is not None:
            s.night_vision.value = st.night_vision

    def _update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.settings, key, value)
        self.settings.store(self.state.app)
        self.server.save_state()

    def _write_recording_active(self, value: int, ctx: WriteContext) -> None:
        if value != self.settings.recording_active:
            self._update(recording_active=value)
            log.info("%s: recording %s (%s)", self.name, "on" if value else "off", self.settings.mode_name)
            if not value and self._recorder is not None:
                self._recorder.switched_off("recording was switched off")
            self._spawn(self._apply_pipeline_gate(), "pipeline-gate")

    def _write_homekit_active(self, value: int, ctx: WriteContext) -> None:
        if value == self.settings.homekit_active:
            return
        self._update(homekit_active=value)
        self.services.motion_status_active.set_value(bool(value))
        self.live.set_enabled(bool(value and self.settings.rtp_active))
        if not value and self._recorder is not None:
            self._recorder.switched_off("the camera was switched off")
        self._spawn(self._apply_pipeline_gate(), "pipeline-gate")

    def _write_rtp_active(self, value: int, ctx: WriteContext) -> None:
        self._update(rtp_active=value)
        self.live.set_enabled(bool(value and self.settings.homekit_active))

    def _write_recording_audio(self, value: int, ctx: WriteContext) -> None:
        if value != self.settings.recording_audio_active:
            self._update(recording_audio_active=value)
            self._spawn(self._reconfigure(), "reconfigure")

    def _write_selection(self, value: bytes, ctx: WriteContext) -> None:
        selection = parse_selection(value, self.supported)  # HapError(-70410) when bad
        raw = base64.b64encode(value).decode()
        if raw == self.settings.selection and self.settings.supported_hash == self.supported.config_hash():
            return
        self.selection = selection
        self._update(selection=raw, supported_hash=self.supported.config_hash())
        log.info("%s: hub selected %dx%d@%d %d kbps, prebuffer %d ms, audio %s", self.name, selection.width,
                 selection.height, selection.fps, selection.bitrate_kbps, selection.prebuffer_ms,
                 "on" if self.settings.recording_audio_active else "off")
        self._spawn(self._reconfigure(), "reconfigure")

    def _read_selection(self, ctx: ReadContext) -> bytes:
        if not self.settings.selection:
            raise HapError(HapStatus.SERVICE_COMMUNICATION_FAILURE, "no selection yet")
        return base64.b64decode(self.settings.selection)

    def _write_setup_data_stream(self, value: bytes, ctx: WriteContext) -> bytes:
        try:
            return self.hds.setup(value, shared_secret=ctx.session.shared_secret,
                                  on_hap_close=ctx.session.add_close_callback)
        except SetupError as exc:
            raise HapError(HapStatus.INVALID_VALUE, str(exc)) from None

    def _load_selection(self) -> None:
        st = self.settings
        if not st.selection:
            return
        if st.supported_hash != self.supported.config_hash():
            log.info("%s: what the camera supports changed; the hub will select again", self.name)
            self._update(selection="", supported_hash="")
            return
        try:
            self.selection = parse_selection(base64.b64decode(st.selection), self.supported)
        except (HapError, ValueError):
            self._update(selection="", supported_hash="")

    def _factory_reset(self) -> None:
        self.settings.factory_reset()
        self.selection = None
        self.settings.store(self.state.app)
        self.server.save_state()
        self._apply_settings_to_characteristics()
        if self._recorder is not None:
            self._recorder.switched_off("the accessory was reset")
        self._spawn(self._apply_pipeline_gate(), "pipeline-gate")

    # -- what we advertise ----------------------------------------------------------------------
    def _cached_probe(self) -> dict[str, Any] | None:
        cached = self.state.app.get(PROBE_KEY)
        return cached if isinstance(cached, dict) else None

    def _supported_from(self, probe: dict[str, Any] | None) -> SupportedRecording:
        transcode = not self.pipeline.profile.is_copy
        if probe is None:
            width, height, fps = 1920, 1080, 30.0
            transcode = True  # unknown source: offer the standard list until the probe says more
        else:
            width, height, fps = int(probe["width"]), int(probe["height"]), float(probe.get("fps") or 30)
        profile, level = (probe or {}).get("h264_profile"), (probe or {}).get("h264_level")
        return supported_for_source(width, height, fps, transcode=transcode, prebuffer_ms=self.spec.prebuffer_ms,
                                    doorbell=self.spec.doorbell,
                                    h264_profile=profile if isinstance(profile, str) else None,
                                    h264_level=level if isinstance(level, str) else None)

    def _publish_supported(self) -> None:
        s = self.services
        s.supported_camera.set_value(self.supported.camera_tlv())
        s.supported_video.set_value(self.supported.video_tlv())
        s.supported_audio.set_value(self.supported.audio_tlv())

    async def _probe_until_known(self) -> None:
        """Probe the source at start, retrying with backoff while the camera is unreachable."""
        delay = 5.0
        quiet = False  # one warning per outage: the retries are debug
        while not await self._refresh_probe(quiet=quiet):
            quiet = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 300.0)

    async def _refresh_probe(self, *, quiet: bool = False) -> bool:
        """Learn what the source delivers and advertise accordingly. Returns whether it worked.

        While the pipeline runs its own output is read; otherwise a short separate ffmpeg probes
        the camera: when the pipeline is off, or when it runs without the source's audio (keep-warm
        with recording audio off) and whether the camera sends audio is not known yet (the live
        view needs to know).
        """
        try:
            cached = self._cached_probe()
            audio_known = self.pipeline.status().has_audio is not None
            if self._pipeline_running and (audio_known or (cached is not None and "has_audio" in cached)):
                probe: SourceProbe = await self.pipeline.probe(timeout_s=30)
                if not audio_known and cached is not None:  # running without audio: the source's is known
                    probe = dataclasses.replace(probe, has_audio=bool(cached["has_audio"]))
            else:
                probe = await probe_source(self.source, ffmpeg_bin=self._ffmpeg, timeout_s=20)
        except Exception as exc:
            detail = str(exc) if isinstance(exc, ProbeError) else f"{type(exc).__name__}: {exc}"
            log.log(logging.DEBUG if quiet else logging.WARNING, "%s: could not probe the source (%s); advertising %s",
                    self.name, detail, "the last known configuration" if self._cached_probe() else "defaults")
            return False
        if self.pipeline.profile.is_copy and not probe.is_h264:
            log.error("%s: the camera sends %s, not H.264: copy mode cannot record it; use a transcoding "
                      "profile (--profile libx264) or switch the camera's stream to H.264", self.name, probe.codec)
        fps = probe.fps
        cached_fps = (self._cached_probe() or {}).get("fps")
        if fps and isinstance(cached_fps, int | float) and cached_fps and abs(fps / cached_fps - 1) < FPS_JITTER:
            # A frame rate measured over a few fragments of a live stream jitters (17.4 for a
            # 15 fps camera under load): re-advertising would drop the hub's selection, so the
            # next recording would be refused until the hub selects again. Keep the known one.
            fps = cached_fps
        record = {"width": probe.width, "height": probe.height, "fps": fps, "codec": probe.codec,
                  "has_audio": probe.has_audio, "h264_profile": probe.h264_profile, "h264_level": probe.h264_level}
        if record != self._cached_probe():
            self.state.app[PROBE_KEY] = record
            self.server.save_state()
        supported = self._supported_from(record)
        if supported.config_hash() != self.supported.config_hash():
            self.supported = supported
            self._publish_supported()
            self._load_selection()
        sizes = sorted({(r.width, r.height) for r in self.supported.resolutions}, reverse=True)
        log.info("%s: source is %dx%d@%s %s%s; advertising %s", self.name, probe.width, probe.height,
                 probe.fps, probe.codec, " with audio" if probe.has_audio else "",
                 ", ".join(f"{w}x{h}" for w, h in sizes[:6]) + (" ..." if len(sizes) > 6 else ""))
        return True

    # -- the pipeline -----------------------------------------------------------------------------
    def _recording_settings(self, selection: RecordingSelection | None) -> RecordingSettings:
        audio = bool(self.settings.recording_audio_active)
        if selection is None or self.pipeline_is_copy():
            # Copy mode's output never depends on the selection (the camera's video, our fixed
            # AAC): a selection write then restarts nothing.
            return RecordingSettings(audio=audio)
        return RecordingSettings(
            width=selection.width, height=selection.height, fps=selection.fps, bitrate_kbps=selection.bitrate_kbps,
            profile=selection.profile.ffmpeg, level=selection.level.ffmpeg,
            iframe_interval_ms=min(selection.iframe_ms, 4000), audio=audio,
            audio_bitrate_kbps=max(16, min(selection.audio_bitrate_kbps or 64, 128)),
            audio_sample_rate=selection.sample_rate.hz, audio_channels=selection.audio_channels)

    async def _reconfigure(self) -> None:
        result = await self.pipeline.reconfigure(self._recording_settings(self.selection))
        log.info("%s: %s", self.name, result.message)

    def pipeline_is_copy(self) -> bool:
        pipeline = getattr(self, "pipeline", None)  # None while __init__ builds the first settings
        return pipeline.profile.is_copy if pipeline is not None else self.spec.profile == "copy"

    def keep_warm_mode(self) -> str:
        """``always`` (ffmpeg runs whenever the camera is on) or ``recording`` (only while
        recording is on too); ``auto`` is ``always`` for copy mode, ``recording`` otherwise."""
        if self.spec.keep_warm != "auto":
            return self.spec.keep_warm
        return "always" if self.pipeline_is_copy() else "recording"

    def _pipeline_wanted(self) -> bool:
        if not self.settings.homekit_active:
            return False
        if self.spec.detect is not None and self.detect_feed is None:
            return True  # the detector's frames come from this ffmpeg: "Detect Activity"
        if not self.server.paired:
            return False  # no hub yet to record for: no ffmpeg, no CPU, no connection to the camera
        return self.keep_warm_mode() == "always" or bool(self.settings.recording_active)

    async def _apply_pipeline_gate(self) -> None:
        """Run ffmpeg while the camera is on and (unless kept warm) recording is on."""
        async with self._pipeline_lock:
            if self.detect_feed is not None:
                if self.settings.homekit_active:
                    await self.detect_feed.start()
                else:
                    await self.detect_feed.stop()
            wanted = self._pipeline_wanted()
            if wanted and not self._pipeline_running:
                await self.pipeline.reconfigure(self._recording_settings(self.selection))
                await self.pipeline.start()
                self._pipeline_running = True
                log.info("%s: prebuffer starting", self.name)
                self._spawn(self._announce_ready(), "prebuffer-ready")
            elif not wanted and self._pipeline_running:
                await self.pipeline.stop()
                self._pipeline_running = False
                log.info("%s: prebuffer stopped (%s off)", self.name,
                         "camera" if not self.settings.homekit_active else "recording")

    def _on_pipeline_event(self, event: PipelineEvent) -> None:
        """The recording ffmpeg's state, for observers (status page, MQTT, the parent process)."""
        self.events.emit(PipelineChanged(camera=self.name, state=event.state, error=event.error,
                                         exit_code=event.exit_code, restart_in_s=event.restart_in_s))

    async def _announce_ready(self) -> None:
        """Log when each ffmpeg run's prebuffer holds what hubs may ask for (tests watch this), and
        have the HDS sealing buffer for fragments of that size made before any hub opens."""
        while True:
            wanted = self.selection.prebuffer_ms if self.selection else 4000
            snap = await self.pipeline.wait_ready(wanted)
            log.info("%s: prebuffer ready (generation %d, %.1f s from a keyframe)", self.name, snap.generation,
                     snap.duration_s)
            if snap.fragments:  # the memory a recording will seal the prebuffer into, made now rather than then
                self.hds.reserve(max(fragment.data.nbytes for fragment in snap.fragments))
            if self.pipeline.profile.is_copy:
                await self._refresh_probe()  # a reconnected camera may have changed its stream
            await self.pipeline.wait_for(partial(self._generation_changed, snap.generation))

    def _generation_changed(self, generation: int) -> bool:
        return self.pipeline.prebuffer.generation != generation

    # -- recordings -----------------------------------------------------------------------------
    def _on_stream(self, stream: RecordingStream) -> None:
        selection = self.selection
        core = RecordingSession(stream.stream_id, self.clock(),
                                prebuffer_ms=selection.prebuffer_ms if selection else 4000,
                                max_event_s=self.spec.max_event_s)
        recorder = Recorder(self.name, stream, core, self.pipeline, clock=self.clock, sinks=self.recording_sinks)
        self._recorder = recorder
        self._stream_task = self._spawn(self._record(recorder), f"record-{stream.stream_id}")

    async def _record(self, recorder: Recorder) -> None:
        """Run one dataSend stream (camera/recorder.py) and tell the observers how it went."""
        selection, stream = self.selection, recorder.stream
        self.recordings += 1
        log.info("%s: recording stream %d opened", self.name, stream.stream_id)
        chosen = None if selection is None else (
            f"{selection.width}x{selection.height}@{selection.fps} {selection.bitrate_kbps} kbps, "
            f"prebuffer {selection.prebuffer_ms} ms")
        self.events.emit(RecordingOpened(camera=self.name, stream_id=stream.stream_id, selection=chosen))
        try:
            if not self._pipeline_running:
                await self._apply_pipeline_gate()
            event = await recorder.run()
        finally:
            if self._recorder is recorder:
                self._recorder = None
        first = "no media sent" if event.first_byte_s is None else f"first byte after {event.first_byte_s:.1f} s"
        log.info("%s: recording stream %d ended after %.1f s: %s by %s, %d bytes sent, %d fragments, %s (%s)",
                 self.name, stream.stream_id, event.duration_s, event.reason, event.closed_by, event.bytes_sent,
                 event.fragments_sent, first, event.detail)
        self.events.emit(event)

    # -- snapshots ------------------------------------------------------------------------------
    async def _snapshot(self, width: int, height: int, reason: int | None) -> bytes:
        refusal = snapshot_refusal(self.settings, reason)
        if refusal is not None:
            raise HapError(refusal)
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT_S):
                if self.spec.snapshot_url:  # {width}/{height}: the size the hub asked for
                    url = self.spec.snapshot_url.replace("{width}", str(width)).replace("{height}", str(height))
                    return await jpeg_from_url(url)
                snap = self.pipeline.fragments_since(0) if self._pipeline_running else None
                if snap is not None and snap.fragments:
                    return await jpeg_from_fmp4(bytes(snap.init.data), bytes(snap.fragments[-1].data), width,
                                                height, ffmpeg=self._ffmpeg)
                inputs = [arg for spec in self.source.inputs() for arg in spec.argv()]
                return await jpeg_from_input(inputs, width, height, ffmpeg=self._ffmpeg)
        except TimeoutError:
            raise HapError(HapStatus.OPERATION_TIMED_OUT) from None
        except SnapshotError as exc:
            log.warning("%s: snapshot failed: %s", self.name, exc)
            raise HapError(HapStatus.SERVICE_COMMUNICATION_FAILURE) from None

    # -- actions for the status page --------------------------------------------------------------
    def restart_ffmpeg(self) -> bool:
        """Start a fresh ffmpeg run now (False when ffmpeg is not wanted: recording is off)."""
        restarted = self._pipeline_running and self.pipeline.restart("restart requested from the status page")
        log.info("%s: ffmpeg restart %s", self.name, "requested" if restarted else "skipped: ffmpeg is not running")
        return restarted

    def reset_pairings(self) -> bool:
        """Remove every controller: the camera is unpaired and shows its setup code again."""
        log.warning("%s: removing all pairings (asked on the status page)", self.name)
        return self.unpair()

    # -- pairings and ffmpeg state as events -----------------------------------------------------
    def _on_pairing_notice(self, notice: PairingNotice) -> None:
        who = short_controller_id(notice.controller_id)
        if notice.kind in ("added", "removed"):
            added = notice.kind == "added"
            log.info("%s: pairing %s: controller %s (%s)", self.name, notice.kind, who,
                     "admin" if notice.admin else "not admin")
            self.events.emit(PairingChanged(camera=self.name, paired=notice.paired, added=added, controller=who,
                                            admin=notice.admin))
            self._spawn(self._apply_pipeline_gate(), "pipeline-gate")  # keep-warm follows the pairing
        elif notice.kind == "setup_failed":
            log.warning("%s: wrong setup code from a controller (%d failed attempt(s); HomeKit allows 100)",
                        self.name, notice.failed_attempts)
            self.events.emit(SetupCodeRejected(camera=self.name, failed_attempts=notice.failed_attempts))
        else:
            log.info("%s: pair-verify failed (an unknown or removed controller)", self.name)

    # -- status ---------------------------------------------------------------------------------
    def snapshot(self) -> CameraSnapshot:
        """Everything the status page, /healthz, /metrics and the API show, as plain data."""
        st = self.pipeline.status()
        last_at = self.pipeline.prebuffer.last_fragment_at
        sel = self.selection
        core = self.server.core
        paired = self.server.paired
        media = MediaStatus(
            wanted=self._pipeline_wanted(), state=st.state.value if self._pipeline_running else "stopped",
            last_error=st.last_error, restarts=st.restarts, width=st.width, height=st.height, fps=st.fps,
            bitrate_kbps=st.bitrate_kbps, keyframe_interval_s=st.keyframe_interval_s, warning=st.warning,
            prebuffer_s=st.prebuffer_s, fragments=st.fragments, bytes_in=st.bytes_in,
            last_fragment_age_s=None if last_at is None else max(0.0, self.clock() - last_at))
        return CameraSnapshot(
            name=self.name, slug=self.spec.slug, source=self.source.describe(), profile=st.profile,
            doorbell=self.spec.doorbell, hap_port=self.server.port, hap_listening=self._listening,
            paired=paired,
            controllers=tuple(ControllerInfo(short_controller_id(p.identifier), p.admin)
                              for p in self.state.pairings.values()),
            setup_code=None if paired else self.server.setup_code,
            setup_uri=None if paired else self.server.setup_uri,
            mode=MODE_LABELS.get(self.settings.mode_name, self.settings.mode_name),
            recording_active=bool(self.settings.recording_active),
            selection=None if sel is None else (f"{sel.width}x{sel.height}@{sel.fps} {sel.bitrate_kbps} kbps, "
                                                f"prebuffer {sel.prebuffer_ms} ms"),
            hap_sessions=sum(1 for c in core.connections.values() if c.session is not None),
            pair_verify_failures=core.verify_failures, failed_setup_attempts=self.state.failed_attempts,
            live_sessions=self.live.active_sessions, motion=bool(self.services.motion.value),
            recording=self._recorder is not None, recordings=self.recordings, prebuffer_ms=self.spec.prebuffer_ms,
            media=media)
