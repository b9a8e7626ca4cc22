"""One camera's media pipeline: a supervised, long-lived ffmpeg feeding a prebuffer.

:class:`MediaPipeline` runs the loop: start ffmpeg with the command the
:class:`~.stream_policy.StreamPolicy` builds, pump its stdout into the
:class:`~.stream_intake.StreamIntake` (prebuffer, policy, probe), carry out the policy's actions,
and when the run ends, restart it at once (a planned restart) or after the :class:`~.backoff.Backoff`
wait. It owns exactly one task (``_main``) which owns, per ffmpeg run, the stdout pump and the
stderr drain; ``stop()`` cancels nothing it does not own and returns only when ffmpeg has been
reaped.

Why it restarts so readily: ffmpeg exits 0 when an RTSP camera drops, and with ``-timeout`` it
also exits when the camera stalls (docs/cameras-and-nvrs.md §RTSP drops), so *any* exit means "the source is gone".
A run that stops producing bytes (a hung source that did not trip the socket timeout) is killed
by the watchdog (docs/field-lessons.md #11). When to restart is decided by the sans-IO
:class:`~.restart.RestartSchedule` (1 s doubling to 60 s, jittered, reset by a run that
delivered media), waited out by :class:`~.backoff.Backoff`. The user hears about outages, not
attempts, and ffmpeg's stderr is logged only while media flows (it goes into the cause
otherwise). Each run is an :class:`~.runner.FfmpegRun` (spawn, watchdog, masked stderr tail, reap).

Every run is a new prebuffer generation: its init segment replaces the old one and any live
subscription of the old run is closed (``NEW_GENERATION``), because the hub cannot splice two
runs into one recording (docs/field-lessons.md #9).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from ..redact import redact
from .backoff import Backoff
from .child import PipeSource
from .fmp4_boxes import Fmp4Error
from .frames import FrameCallback, FramePipe, GrayFrame
from .pipeline_config import PipelineConfig
from .pipeline_status import PipelineEvent, PipelineSignals, PipelineState, PipelineStatus
from .prebuffer import Prebuffer, PrebufferSnapshot, SubscriptionEnd
from .prebuffer_subscription import PrebufferSubscription
from .probe import SourceProbe, probe_source
from .profiles import Profile, load_profiles
from .restart_requests import RestartRequests
from .runner import EndKind, FfmpegRun, RunResult, StderrLog
from .segments import InitSegment
from .settings import RecordingSettings
from .start_gate import take_start_slot
from .stderr import Cause, CauseKind
from .stream_intake import StreamIntake
from .stream_policy import Action, ReconfigureResult, Restart, StreamPolicy

__all__ = ["MediaPipeline"]

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20


class MediaPipeline:
    """A camera's ffmpeg, supervised, feeding :attr:`prebuffer`.

    Life cycle, for the camera layer::

        pipeline = MediaPipeline(PipelineConfig(source=parse_source(url), profile="copy"))
        await pipeline.start()                    # returns at once; ffmpeg starts in the background
        probe = await pipeline.probe()            # codec, size, fps, profile/level, audio
        await pipeline.wait_ready(4000)           # prebuffer holds 4 s from a keyframe
        snap = pipeline.fragments_since(4000)     # init + fragments (e.g. for a snapshot or test)
        async with pipeline.subscribe(4000) as sub:   # one per HKSV recording stream
            async for item in sub: ...            # InitSegment, then Fragments; ends with a reason
        await pipeline.reconfigure(settings)      # the hub selected a recording configuration
        pipeline.status()                         # PipelineStatus for the status page
        await pipeline.stop()                     # ffmpeg terminated and reaped

    Args:
        config: see :class:`PipelineConfig`.
        clock: monotonic seconds; injectable for tests of the pure parts.
    """

    def __init__(self, config: PipelineConfig, *, clock: Callable[[], float] = time.monotonic,
                 on_event: Callable[[PipelineEvent], None] | None = None) -> None:
        self.config = config
        self._clock = clock
        self._policy = StreamPolicy(config, dict(config.profiles) if config.profiles is not None else load_profiles())
        if self._policy.profile_name != config.profile:
            log.info("%s: the %s source must be encoded; using %s", config.name, config.source.describe(),
                     self._policy.profile_name)
        self.prebuffer = Prebuffer(serve_ms=config.prebuffer_serve_ms, max_bytes=config.prebuffer_max_bytes)
        self._intake = StreamIntake(self.prebuffer, self._policy)
        self._signals = PipelineSignals(config.name, on_event)
        self._stderr = StderrLog(config.name, config.stderr_burst, config.stderr_refill_s, clock,
                                 media_flows=lambda: self.state is PipelineState.RUNNING)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._release_start: Callable[[], None] = lambda: None  # the start gate's slot, while held
        self._stop_asked = asyncio.Event()  # stop() was called: no more waiting for a start slot
        # Cuts a backoff wait short (stop, reconfigure). Only stop() and restart requests set it:
        # the end of a run must never, or a dead camera would be restarted in a tight loop.
        self._interrupt = asyncio.Event()
        self._backoff = Backoff(config, clock, self._signals, self._interrupt, self._stop_asked.is_set)
        self._requests = RestartRequests(config.name, self._interrupt)
        self._run: FfmpegRun | None = None
        self._run_started: float | None = None
        self._restarts = 0
        self._runs = 0
        self._last_error: str | None = None
        self._last_exit: int | None = None
        self._last_cause: Cause | None = None
        self.starts = 0  # ffmpeg processes started, for tests and the status page
        #: Called in the event loop with each detector frame (``config.detect``), newest only.
        self.on_frame: FrameCallback | None = None
        #: Asked before a restart the sidecar wants for itself (the stream policy's rules, a
        #: reconfigure) while a run is going: False holds it until :meth:`release_restart`, and the
        #: run goes on meanwhile. The camera holds restarts while a hub is recording.
        self.restart_gate: Callable[[str], bool] | None = None

    # -- public API ----------------------------------------------------------------------------

    @property
    def state(self) -> PipelineState:
        return self._signals.state

    @property
    def profile(self) -> Profile:
        """The profile in use (it changes on a transcode fallback)."""
        return self._policy.profile

    @property
    def settings(self) -> RecordingSettings:
        return self._policy.settings

    @property
    def restarts(self) -> int:
        """ffmpeg starts after the first one, whatever their cause."""
        return self._restarts

    @property
    def restart_pending(self) -> bool:
        """A restart was asked for (reconfigure, fallback, ...): the current init segment is doomed."""
        return self._requests.reason is not None

    @property
    def pid(self) -> int | None:
        run = self._run
        return run.pid if run is not None and run.running else None

    @property
    def next_start_in_s(self) -> float | None:
        """Seconds until the next ffmpeg start while backing off, else ``None``."""
        if self._signals.state is not PipelineState.BACKOFF:
            return None
        return self._backoff.schedule.remaining(self._clock())

    async def start(self) -> None:
        """Start supervising (idempotent). Returns at once; ffmpeg starts in the background."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._stop_asked.clear()
        self._interrupt.clear()
        self._backoff.schedule.reset()
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"media:{self.config.name}")

    async def stop(self) -> None:
        """Stop ffmpeg (SIGTERM, then SIGKILL after ``stop_timeout_s``), reap it, close every
        live subscription (``STOPPED``) and empty the prebuffer. Idempotent."""
        self._stopping = True
        self._stop_asked.set()
        self._interrupt.set()
        if self._run is not None:
            self._run.request_stop("stopped")
        task = self._task
        if task is not None:
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                # Our caller is being cancelled: still make sure ffmpeg dies before we go.
                await task
                raise
        self._task = None
        self.prebuffer.reset(SubscriptionEnd.STOPPED)
        self._signals.set_state(PipelineState.STOPPED)

    def restart(self, reason: str) -> bool:
        """Ask for a fresh ffmpeg run (a user's "restart ffmpeg" button). False when not running.
        The user's restart is not held by :attr:`restart_gate`."""
        if self._task is None or self._task.done() or self._stopping:
            return False
        self._requests.ask(reason, self._run, None)
        return True

    @property
    def restart_held(self) -> str | None:
        """Why a restart the sidecar wants is waiting for :meth:`release_restart` (None: none is)."""
        return self._requests.held

    def release_restart(self) -> bool:
        """Carry out the restart :attr:`restart_gate` held, if the run it was meant for still goes on."""
        return self._requests.release(self._run, self._stopping)

    async def reconfigure(self, settings: RecordingSettings) -> ReconfigureResult:
        """Apply a hub-selected recording configuration.

        ffmpeg restarts (new generation) only if the command line changes. A copy profile keeps
        the camera's video: only audio on/off (and the audio format) can change, and the
        result says which settings were ignored.
        """
        result, actions = self._policy.reconfigure(settings)
        self._act(actions)
        if result.restarted and self._task is not None and not self._task.done():
            self._requests.ask("reconfigured", self._run, self.restart_gate)
        return result

    def set_record_codec(self, codec: Literal["h264", "hevc"]) -> None:
        """Switch what the recordings carry (docs/h265.md); ffmpeg restarts if its command changes."""
        self._act(self._policy.set_record_codec(codec))

    def fragments_since(self, ms: int) -> PrebufferSnapshot | None:
        """Init + fragments covering the last ``ms`` ms, from a keyframe (see :class:`Prebuffer`)."""
        return self.prebuffer.fragments_since(ms, self._clock())

    def subscribe(self, prebuffer_ms: int, *, max_pending: int = 16,
                  max_pending_bytes: int = 16 * 1024 * 1024, allow_empty: bool = False) -> PrebufferSubscription:
        """A bounded live subscription starting with init + the last ``prebuffer_ms``.

        Raises :class:`~sidecar.media.prebuffer.PrebufferNotReady` while warming up (with
        ``allow_empty``, only while there is no init segment).
        """
        core = self.prebuffer.subscribe(prebuffer_ms, self._clock(), max_pending=max_pending,
                                        max_pending_bytes=max_pending_bytes, allow_empty=allow_empty)
        return PrebufferSubscription(core)

    async def wait_ready(self, prebuffer_ms: int = 4000, timeout_s: float | None = None) -> PrebufferSnapshot:
        """Wait until the prebuffer serves ``prebuffer_ms`` in full; return that snapshot."""
        async with asyncio.timeout(timeout_s):
            while True:
                snap = self.prebuffer.fragments_since(prebuffer_ms, self._clock())
                if snap is not None and snap.duration_s * 1000 >= prebuffer_ms - 1:
                    return snap
                await self._signals.next_change()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float | None = None) -> None:
        """Wait until ``predicate()`` holds; it is re-checked on every pipeline event
        (state change, init segment, fragment). For tests and the camera layer alike."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._signals.next_change()

    async def probe(self, timeout_s: float = 20.0) -> SourceProbe:
        """What the source delivers: codec, size, fps, H.264 profile/level, audio.

        Copy mode reads it from this pipeline's own init segment and first fragments (no extra
        connection to the camera). A transcoding pipeline's output says nothing about the
        source, so a short separate copy-mode ffmpeg probes it (the demo source is known).
        """
        intake = self._intake
        if not self.profile.is_copy:
            if intake.probe is None:
                intake.probe = await probe_source(self.config.source, ffmpeg_bin=self.config.ffmpeg_bin,
                                                  timeout_s=timeout_s)
            return intake.probe
        await self.wait_for(
            lambda: intake.probe is not None and intake.probe.fps is not None and self._requests.reason is None,
            timeout_s,
        )
        assert intake.probe is not None
        return intake.probe

    def status(self) -> PipelineStatus:
        m = self._policy.monitor.measurement
        init = self.prebuffer.init
        video = init.video if init is not None else None
        now = self._clock()
        command = self._policy.command
        return PipelineStatus(
            name=self.config.name,
            state=self._signals.state,
            running=self._signals.state is PipelineState.RUNNING,
            pid=self.pid,
            generation=self.prebuffer.generation,
            restarts=self._restarts,
            last_error=self._last_error,
            last_exit_code=self._last_exit,
            profile=self._policy.profile_name,
            audio=command.audio.value if command is not None else "unknown",
            source=self.config.source.describe(),
            uptime_s=(now - self._run_started) if self._run_started is not None and self.pid else None,
            keyframe_interval_s=m.keyframe_interval_s,
            max_fragment_s=m.max_fragment_s,
            bitrate_kbps=m.bitrate_kbps,
            fps=m.fps,
            width=video.width if video else None,
            height=video.height if video else None,
            codec=video.codec_string if video else None,
            h264_profile=video.profile_name if video and video.profile_idc else None,
            h264_level=video.level if video and video.level_idc else None,
            has_audio=self._policy.source_has_audio,
            gop_verdict=self._policy.monitor.verdict.value,
            warning=self._policy.warning,
            prebuffer_s=self.prebuffer.duration_s,
            prebuffer_bytes=self.prebuffer.bytes,
            fragments=self._intake.fragments,
            bytes_in=self._intake.bytes_in,
            ignored_settings=command.ignored if command is not None else (),
            argv=tuple(redact(a) for a in command.argv) if command is not None else (),
            next_start_in_s=self.next_start_in_s,
        )

    # -- internals -----------------------------------------------------------------------------

    async def _main(self) -> None:
        try:
            while not self._stopping:
                self._interrupt.clear()
                self._requests.reason = None
                result: RunResult | None = None
                try:
                    result = await self._run_once()
                except Exception as exc:  # a bug must not end supervision of this camera
                    log.exception("%s: supervisor error", self.config.name)
                    self._last_error = redact(f"internal error: {exc!r}")
                    self._last_cause = Cause(self._last_error, CauseKind.OTHER)
                if self._stop_asked.is_set():  # set with _stopping, and not narrowed by the loop test
                    break
                if self.restart_pending:
                    log.info("%s: restarting ffmpeg: %s", self.config.name, self._requests.reason)
                    continue
                if result is not None and (switched := self._policy.run_ended(result.stderr, result.progressed)):
                    self._act(switched)  # copy_ffmpeg lacks what this camera needs: the full one, now
                    continue
                cause = self._last_cause or Cause(self._last_error or "unknown", CauseKind.OTHER)
                await self._backoff.wait(cause, result.exit_code if result is not None else None)
        finally:
            self._signals.set_state(PipelineState.STOPPED)
            if self._signals.announced not in (None, "stopped"):
                self._signals.emit(PipelineEvent("stopped", exit_code=self._last_exit))

    async def _run_once(self) -> RunResult:
        """One ffmpeg run, from spawn to reaping."""
        cfg = self.config

        def deliver(frame: GrayFrame, now: float) -> None:  # to whoever listens when it comes
            if self.on_frame is not None:
                self.on_frame(frame, now)

        frames = FramePipe(deliver, name=cfg.name, clock=self._clock) if cfg.detect is not None else None
        command = self._policy.start_run(frames.target) if frames is not None else self._policy.start_run()
        if self._runs:
            self._restarts += 1
        self._runs += 1
        self.starts += 1
        self._signals.set_state(PipelineState.STARTING)
        self._run_started = self._clock()
        self._intake.start_run()
        # Many cameras starting together take turns (start_gate.py); the slot is given back at
        # the init segment (in _pump) or when this run ends.
        self._release_start = await take_start_slot(self._stop_asked)
        quiet = self._backoff.schedule.in_outage  # one line per outage: the attempts are debug
        log.log(logging.DEBUG if quiet else logging.INFO, "%s: starting ffmpeg (%s, audio %s): %s", cfg.name,
                command.profile.name, command.audio.value, redact(" ".join(command.argv)))
        run = FfmpegRun(
            command.argv, name=cfg.name, consume_direct=self._pump,
            startup_timeout_s=cfg.startup_timeout_s, stall_timeout_s=cfg.silence_timeout_s,
            startup_message="no video from the source within {s} s", stall_message="no keyframe for {s} s",
            stop_timeout_s=cfg.stop_timeout_s, on_stderr=self._stderr.line, read_limit=_READ_SIZE, clock=self._clock,
            pass_fds=frames.pass_fds if frames is not None else (),
            on_spawn=(lambda _pid: frames.start()) if frames is not None else None,
        )
        self._run = run
        if self._stopping:  # stop() found no run to stop: this one ends at once
            run.request_stop("stopped")
        try:
            result = await run.run()
        finally:
            self._release_start()
            if frames is not None:
                await frames.close()  # ffmpeg is reaped: its end is closed, EOF is there
            self._run = None
            self._requests.held = None  # the next run starts with the command the held restart wanted
            self._last_exit = run.returncode
            self.prebuffer.reset(SubscriptionEnd.NEW_GENERATION if not self._stopping else SubscriptionEnd.STOPPED)
            self._signals.changed()
        if result.end is not EndKind.STOPPED and self._requests.reason is None:
            self._last_cause = result.cause or Cause(result.reason, CauseKind.OTHER)
            self._last_error = result.reason
        return result

    async def _pump(self, stdout: PipeSource, run: FfmpegRun) -> str | None:
        """The run's stdout consumer: fMP4 read straight into the intake's buffers (a fragment's
        payload into the fragment's own, :meth:`.Fmp4Reader.get_buffer`), the policy's answers
        carried out. Returns ``None`` at EOF, or the reason to stop (the runner keeps draining
        stdout while ffmpeg is stopped)."""
        intake, name = self._intake, self.config.name
        failed: str | None = None

        def updated(nbytes: int) -> bool:  # in the loop's reader callback, after each read
            nonlocal failed
            now = self._clock()
            try:
                events = intake.buffer_updated(nbytes)
            except Fmp4Error as exc:
                failed = f"malformed fMP4 from ffmpeg: {exc}"
                log.warning("%s: %s", name, failed)
                return True
            for event in events:
                run.progress()  # an init segment or a fragment (which starts on a keyframe)
                if isinstance(event, InitSegment):
                    self._release_start()  # ffmpeg is past its costly start
                    generation, actions = intake.on_init(event, now)
                    self._act(actions)
                    video = event.video
                    log.info("%s: generation %d: %s %sx%s, audio %s", name, generation,
                             video.codec_string if video else "no video", video.width if video else "?",
                             video.height if video else "?", "yes" if event.has_audio else "no")
                    self._signals.set_state(PipelineState.RUNNING)
                else:
                    if intake.run_fragments == 0:  # the run is healthy; an outage, if any, is over
                        # An error belongs to the run that produced it: a healthy run clears it,
                        # so nothing later quotes an old cause.
                        self._last_error = None
                        self._last_cause = None
                        self._backoff.media_flows(now)
                        self._signals.emit(PipelineEvent("running"))
                    self._act(intake.on_fragment(event, now))
                self._signals.changed()
            return False

        await stdout.pump(intake.get_buffer, updated)
        return failed

    def _act(self, actions: list[Action]) -> None:
        """Carry out what the stream policy answered: log its notices, ask for its restarts."""
        for action in actions:
            if isinstance(action, Restart):
                self._requests.ask(action.reason, self._run, self.restart_gate)
            else:
                log.log(logging.WARNING if action.warning else logging.INFO, "%s: %s", self.config.name, action.text)
