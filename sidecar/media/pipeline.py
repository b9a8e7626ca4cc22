"""One camera's media pipeline: a supervised, long-lived ffmpeg feeding a prebuffer.

:class:`MediaPipeline` is the asyncio adapter around the sans-IO parts (fMP4 reader, prebuffer,
keyframe monitor). It owns exactly one task (``_main``) which owns, per ffmpeg run, the stdout
pump and the stderr drain; ``stop()`` cancels nothing it does not own and returns only when
ffmpeg has been reaped.

Why it restarts so readily: ffmpeg exits 0 when an RTSP camera drops, and with ``-timeout`` it
also exits when the camera stalls (docs/cameras-and-nvrs.md §RTSP drops), so *any* exit means "the source is gone".
A run that stops producing bytes (a hung source that did not trip the socket timeout) is killed
by the watchdog (docs/field-lessons.md #11). When to restart is decided by the sans-IO
:class:`~.restart.RestartSchedule` (1 s doubling to 60 s, jittered, reset by a run that
delivered media); while the camera is unreachable ("connection refused") the wait is cut short
as soon as its port accepts a TCP connection again, so a camera that comes back is recording
within seconds without an ffmpeg being started every few seconds meanwhile. The user hears
about outages, not attempts: one warning when ffmpeg stops, one line when it runs again, and
ffmpeg's stderr is logged only while media flows (it goes into the cause otherwise). Each run
is an :class:`~.runner.FfmpegRun` (spawn, watchdog, masked stderr tail, reap).

Every run is a new prebuffer generation: its init segment replaces the old one and any live
subscription of the old run is closed (``NEW_GENERATION``), because the hub cannot splice two
runs into one recording (docs/field-lessons.md #9).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from ..redact import redact
from .fmp4 import Fmp4Reader
from .fmp4_boxes import Fmp4Error
from .frames import FrameCallback, FramePipe, GrayFrame
from .pipeline_config import PipelineConfig
from .prebuffer import Prebuffer, PrebufferSnapshot, SubscriptionEnd
from .prebuffer_subscription import LiveSubscription
from .probe import SourceProbe, probe_from_init, probe_source
from .profiles import Profile, load_profiles
from .restart import RestartSchedule, RunEnd
from .runner import EndKind, FfmpegRun, RunResult
from .segments import Fragment, InitSegment
from .settings import RecordingSettings
from .stderr import Cause, CauseKind, seconds
from .stream_policy import Action, ReconfigureResult, Restart, StreamPolicy

__all__ = [
    "MediaPipeline",
    "PipelineEvent",
    "PipelineState",
    "PipelineStatus",
]

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20


class PipelineState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"  # ffmpeg spawned, no init segment yet
    RUNNING = "running"  # init segment received, fragments flowing
    BACKOFF = "backoff"  # ffmpeg exited; waiting before the next start
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """A snapshot for the status page (all times monotonic seconds or durations)."""

    name: str
    state: PipelineState
    running: bool
    pid: int | None
    generation: int
    restarts: int
    last_error: str | None
    last_exit_code: int | None
    profile: str
    audio: str
    source: str
    uptime_s: float | None
    keyframe_interval_s: float | None
    max_fragment_s: float | None
    bitrate_kbps: float | None
    fps: float | None
    width: int | None
    height: int | None
    codec: str | None
    h264_profile: str | None
    h264_level: str | None
    has_audio: bool | None
    gop_verdict: str
    warning: str | None
    prebuffer_s: float
    prebuffer_bytes: int
    fragments: int
    bytes_in: int
    ignored_settings: tuple[str, ...]
    argv: tuple[str, ...]  # passwords masked
    next_start_in_s: float | None = None  # while backing off: when ffmpeg starts again


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    """The recording ffmpeg changed state; the camera layer turns it into ``PipelineChanged``.

    ``state``: ``running`` (media flows), ``restarting`` (it stopped; the next start is in
    ``restart_in_s``), ``failed`` (like restarting, but the cause needs the user: a wrong
    password or path, a codec or ffmpeg missing; we keep retrying in case it is fixed),
    ``stopped`` (recording turned off or shutdown). ``error`` is the cause in words, masked.
    """

    state: str
    error: str | None = None
    exit_code: int | None = None
    restart_in_s: float | None = None


class _StderrLog:
    """Logs ffmpeg's stderr lines with a token bucket, keeps the last few for ``last_error``."""

    def __init__(self, name: str, burst: int, refill_s: float, clock: Callable[[], float]) -> None:
        self.name, self.burst, self.refill_s, self.clock = name, burst, refill_s, clock
        self.tokens = float(burst)
        self.stamp = clock()
        self.suppressed = 0

    def line(self, text: str) -> None:
        """Log one (already masked) line, rate limited."""
        text = text.rstrip()
        if not text:
            return
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) / self.refill_s)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            if self.suppressed:
                log.warning("%s: ffmpeg: (%d lines suppressed)", self.name, self.suppressed)
                self.suppressed = 0
            log.warning("%s: ffmpeg: %s", self.name, text[:500])
        else:
            self.suppressed += 1


async def _accepts_connections(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether a TCP connect to the camera succeeds (it is closed at once, nothing is sent)."""
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


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
        self.on_event = on_event
        self._policy = StreamPolicy(config, dict(config.profiles) if config.profiles is not None else load_profiles())
        if self._policy.profile_name != config.profile:
            log.info("%s: the %s source must be encoded; using %s", config.name, config.source.describe(),
                     self._policy.profile_name)
        self.prebuffer = Prebuffer(capacity_s=config.prebuffer_capacity_s, max_bytes=config.prebuffer_max_bytes)
        self._schedule = RestartSchedule(config.backoff_initial_s, config.backoff_max_s, config.backoff_jitter)
        self._stderr = _StderrLog(config.name, config.stderr_burst, config.stderr_refill_s, clock)
        self._task: asyncio.Task[None] | None = None
        self._state = PipelineState.STOPPED
        self._stopping = False
        # Cuts a backoff wait short (stop, reconfigure). Only stop() and restart requests set it:
        # the end of a run must never, or a dead camera would be restarted in a tight loop.
        self._interrupt = asyncio.Event()
        self._early_start = False  # the current run began early because the camera's port accepted again
        self._changed = asyncio.Event()
        self._restart_reason: str | None = None  # a planned restart (reconfigure, audio, fallback)
        self._run: FfmpegRun | None = None
        self._run_started: float | None = None
        self._run_fragments = 0
        self._restarts = 0
        self._runs = 0
        self._last_error: str | None = None
        self._last_exit: int | None = None
        self._probe: SourceProbe | None = None
        self._bytes_in = 0
        self._fragments = 0
        self._last_cause: Cause | None = None
        self._announced: str | None = None  # the last PipelineEvent state emitted
        self.starts = 0  # ffmpeg processes started, for tests and the status page
        #: Called in the event loop with each detector frame (``config.detect``), newest only.
        self.on_frame: FrameCallback | None = None

    # -- public API ----------------------------------------------------------------------------

    @property
    def state(self) -> PipelineState:
        return self._state

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
        return self._restart_reason is not None

    @property
    def pid(self) -> int | None:
        run = self._run
        return run.pid if run is not None and run.running else None

    @property
    def next_start_in_s(self) -> float | None:
        """Seconds until the next ffmpeg start while backing off, else ``None``."""
        if self._state is not PipelineState.BACKOFF:
            return None
        return self._schedule.remaining(self._clock())

    async def start(self) -> None:
        """Start supervising (idempotent). Returns at once; ffmpeg starts in the background."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._interrupt.clear()
        self._schedule.reset()
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"media:{self.config.name}")

    async def stop(self) -> None:
        """Stop ffmpeg (SIGTERM, then SIGKILL after ``stop_timeout_s``), reap it, close every
        live subscription (``STOPPED``) and empty the prebuffer. Idempotent."""
        self._stopping = True
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
        self._set_state(PipelineState.STOPPED)

    def restart(self, reason: str) -> bool:
        """Ask for a fresh ffmpeg run (a user's "restart ffmpeg" button). False when not running."""
        if self._task is None or self._task.done() or self._stopping:
            return False
        self._request_restart(reason)
        return True

    async def reconfigure(self, settings: RecordingSettings) -> ReconfigureResult:
        """Apply a hub-selected recording configuration.

        ffmpeg restarts (new generation) only if the command line changes. A copy profile keeps
        the camera's video: only audio on/off (and the audio format) can change, and the
        result says which settings were ignored.
        """
        result, actions = self._policy.reconfigure(settings)
        self._act(actions)
        if result.restarted and self._task is not None and not self._task.done():
            self._request_restart("reconfigured")
        return result

    def fragments_since(self, ms: int) -> PrebufferSnapshot | None:
        """Init + fragments covering the last ``ms`` ms, from a keyframe (see :class:`Prebuffer`)."""
        return self.prebuffer.fragments_since(ms, self._clock())

    def subscribe(self, prebuffer_ms: int, *, max_pending: int = 16,
                  max_pending_bytes: int = 16 * 1024 * 1024, allow_empty: bool = False) -> LiveSubscription:
        """A bounded live subscription starting with init + the last ``prebuffer_ms``.

        Raises :class:`~sidecar.media.prebuffer.PrebufferNotReady` while warming up (with
        ``allow_empty``, only while there is no init segment).
        """
        core = self.prebuffer.subscribe(prebuffer_ms, self._clock(), max_pending=max_pending,
                                        max_pending_bytes=max_pending_bytes, allow_empty=allow_empty)
        return LiveSubscription(core)

    async def wait_ready(self, prebuffer_ms: int = 4000, timeout_s: float | None = None) -> PrebufferSnapshot:
        """Wait until the prebuffer serves ``prebuffer_ms`` in full; return that snapshot."""
        async with asyncio.timeout(timeout_s):
            while True:
                snap = self.prebuffer.fragments_since(prebuffer_ms, self._clock())
                if snap is not None and snap.duration_s * 1000 >= prebuffer_ms - 1:
                    return snap
                await self._next_change()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float | None = None) -> None:
        """Wait until ``predicate()`` holds; it is re-checked on every pipeline event
        (state change, init segment, fragment). For tests and the camera layer alike."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._next_change()

    async def probe(self, timeout_s: float = 20.0) -> SourceProbe:
        """What the source delivers: codec, size, fps, H.264 profile/level, audio.

        Copy mode reads it from this pipeline's own init segment and first fragments (no extra
        connection to the camera). A transcoding pipeline's output says nothing about the
        source, so a short separate copy-mode ffmpeg probes it (the demo source is known).
        """
        if not self.profile.is_copy:
            if self._probe is None:
                self._probe = await probe_source(self.config.source, ffmpeg_bin=self.config.ffmpeg_bin,
                                                 timeout_s=timeout_s)
            return self._probe
        await self.wait_for(
            lambda: self._probe is not None and self._probe.fps is not None and self._restart_reason is None,
            timeout_s,
        )
        assert self._probe is not None
        return self._probe

    def status(self) -> PipelineStatus:
        m = self._policy.monitor.measurement
        init = self.prebuffer.init
        video = init.video if init is not None else None
        now = self._clock()
        command = self._policy.command
        return PipelineStatus(
            name=self.config.name,
            state=self._state,
            running=self._state is PipelineState.RUNNING,
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
            fragments=self._fragments,
            bytes_in=self._bytes_in,
            ignored_settings=command.ignored if command is not None else (),
            argv=tuple(redact(a) for a in command.argv) if command is not None else (),
            next_start_in_s=self.next_start_in_s,
        )

    # -- internals -----------------------------------------------------------------------------

    def _on_detect_frame(self, frame: GrayFrame, now: float) -> None:
        if self.on_frame is not None:
            self.on_frame(frame, now)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _next_change(self) -> None:
        await self._changed.wait()

    def _set_state(self, state: PipelineState) -> None:
        if state is not self._state:
            self._state = state
            self._notify()

    def _stop_requested(self) -> bool:
        return self._stopping

    def _planned_restart(self) -> str | None:
        """The reason for a restart requested during the run (reconfigure, fallback...)."""
        return self._restart_reason

    def _request_restart(self, reason: str) -> None:
        if self._restart_reason is None:
            self._restart_reason = reason
        self._interrupt.set()
        if self._run is not None:
            self._run.request_stop(f"restart: {reason}")

    def _emit(self, event: PipelineEvent) -> None:
        self._announced = event.state
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # an observer's bug never stops the pipeline
                log.exception("%s: pipeline event observer failed", self.config.name)

    async def _main(self) -> None:
        try:
            while not self._stopping:
                self._interrupt.clear()
                self._restart_reason = None
                result: RunResult | None = None
                try:
                    result = await self._run_once()
                except Exception as exc:  # a bug must not end supervision of this camera
                    log.exception("%s: supervisor error", self.config.name)
                    self._last_error = redact(f"internal error: {exc!r}")
                    self._last_cause = Cause(self._last_error, CauseKind.OTHER)
                if self._stop_requested():
                    break
                planned = self._planned_restart()
                if planned is not None:
                    log.info("%s: restarting ffmpeg: %s", self.config.name, planned)
                    continue
                await self._back_off(result)
        finally:
            self._set_state(PipelineState.STOPPED)
            if self._announced not in (None, "stopped"):
                self._emit(PipelineEvent("stopped", exit_code=self._last_exit))

    async def _back_off(self, result: RunResult | None) -> None:
        """Wait before the next start, as the schedule says, and tell the user once per outage."""
        cause = self._last_cause or Cause(self._last_error or "unknown", CauseKind.OTHER)
        end = self._schedule.run_ended(self._clock(), cause.text)
        self._set_state(PipelineState.BACKOFF)
        exit_code = result.exit_code if result is not None else None
        self._emit(PipelineEvent("failed" if cause.needs_user else "restarting", error=cause.text,
                                 exit_code=exit_code, restart_in_s=round(end.delay_s, 3)))
        self._log_run_end(end, cause)
        await self._wait_until(end, cause)

    def _log_run_end(self, end: RunEnd, cause: Cause) -> None:
        name, cap = self.config.name, seconds(self.config.backoff_max_s)
        if end.outage_started:
            log.warning("%s: ffmpeg stopped: %s; restarting in %s s (then backing off up to %s s; "
                        "logged once per outage)", name, cause.text, seconds(end.delay_s), cap)
        elif end.cause_changed:
            log.warning("%s: still down after %s s (%d attempts), now: %s; next attempt in %s s", name,
                        seconds(end.outage_s), end.attempt, cause.text, seconds(end.delay_s))
        else:
            log.debug("%s: attempt %d failed: %s; next attempt in %s s", name, end.attempt, cause.text,
                      seconds(end.delay_s))

    async def _wait_until(self, end: RunEnd, cause: Cause) -> None:
        """Sleep until the scheduled start, unless stopped or reconfigured meanwhile, or an
        unreachable camera starts accepting connections again."""
        endpoint = self.config.source.endpoint()
        poll = self.config.reachability_poll_s
        watch_port = cause.kind is CauseKind.UNREACHABLE and endpoint is not None and poll > 0
        # The attempt that just failed was itself refused, so the camera was down: the port
        # accepting again means it is back, even at the first poll (a camera restarting just as
        # an attempt failed is common; waiting for a second refusal then cost a whole back-off
        # of up to 60 s). Only when that attempt was already an early start that failed the same
        # way (the port accepts, yet ffmpeg is refused) must a refusal be seen while waiting, so
        # such a camera is retried on the schedule rather than at every poll.
        saw_refused = end.outage_started or not self._early_start
        self._early_start = False
        while not self._stopping and not self._interrupt.is_set():
            remaining = end.next_start_at - self._clock()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, poll) if watch_port else remaining):
                    await self._interrupt.wait()
            if watch_port and not self._interrupt.is_set() and end.next_start_at - self._clock() > 0:
                assert endpoint is not None
                if await _accepts_connections(*endpoint):
                    if saw_refused:  # it was down and is back: start now
                        log.debug("%s: %s:%d accepts connections again; starting ffmpeg now", self.config.name,
                                  *endpoint)
                        self._early_start = True
                        return
                    watch_port = False  # reachable but ffmpeg failed: wait the full backoff
                else:
                    saw_refused = True

    async def _run_once(self) -> RunResult:
        """One ffmpeg run, from spawn to reaping."""
        cfg = self.config
        frames = FramePipe(self._on_detect_frame, name=cfg.name, clock=self._clock) if cfg.detect is not None else None
        command = self._policy.start_run(frames.target) if frames is not None else self._policy.start_run()
        if self._runs:
            self._restarts += 1
        self._runs += 1
        self.starts += 1
        self._set_state(PipelineState.STARTING)
        started = self._clock()
        self._run_started = started
        self._run_fragments = 0
        quiet = self._schedule.in_outage  # one line per outage: the attempts are debug
        log.log(logging.DEBUG if quiet else logging.INFO, "%s: starting ffmpeg (%s, audio %s): %s", cfg.name,
                command.profile.name, command.audio.value, redact(" ".join(command.argv)))
        run = FfmpegRun(
            command.argv, name=cfg.name, consume=partial(self._pump, Fmp4Reader()),
            startup_timeout_s=cfg.startup_timeout_s, stall_timeout_s=cfg.silence_timeout_s,
            startup_message="no video from the source within {s} s", stall_message="no keyframe for {s} s",
            stop_timeout_s=cfg.stop_timeout_s, on_stderr=self._on_stderr, read_limit=_READ_SIZE, clock=self._clock,
            pass_fds=frames.pass_fds if frames is not None else (),
            on_spawn=(lambda _pid: frames.start()) if frames is not None else None,
        )
        self._run = run
        if self._stopping:  # stop() found no run to stop: this one ends at once
            run.request_stop("stopped")
        try:
            result = await run.run()
        finally:
            if frames is not None:
                await frames.close()  # ffmpeg is reaped: its end is closed, EOF is there
            self._run = None
            self._last_exit = run.returncode
            self.prebuffer.reset(SubscriptionEnd.NEW_GENERATION if not self._stopping else SubscriptionEnd.STOPPED)
            self._notify()
        if result.end is not EndKind.STOPPED and self._restart_reason is None:
            self._last_cause = result.cause or Cause(result.reason, CauseKind.OTHER)
            self._last_error = result.reason
        return result

    def _on_stderr(self, line: str) -> None:
        """ffmpeg's warnings while media flows are news; before that, the cause says it all."""
        if self._state is PipelineState.RUNNING:
            self._stderr.line(line)
        else:
            log.debug("%s: ffmpeg: %s", self.config.name, line)

    async def _pump(self, reader: Fmp4Reader, stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
        """The run's stdout consumer: fMP4 boxes into the prebuffer. Returns ``None`` at EOF, or
        the reason to stop (the runner keeps draining stdout while ffmpeg is stopped)."""
        while chunk := await stdout.read(_READ_SIZE):
            now = self._clock()
            self._bytes_in += len(chunk)
            try:
                events = reader.feed(chunk)
            except Fmp4Error as exc:
                failed = f"malformed fMP4 from ffmpeg: {exc}"
                log.warning("%s: %s", self.config.name, failed)
                return failed
            for event in events:
                run.progress()  # an init segment or a fragment (which starts on a keyframe)
                if isinstance(event, InitSegment):
                    self._on_init(event, now)
                else:
                    self._on_fragment(event, now)
        return None

    # -- stream events -------------------------------------------------------------------------

    def _on_init(self, init: InitSegment, now: float) -> None:
        generation = self.prebuffer.start_generation(init, now)
        copy = self.profile.is_copy  # before the policy may fall back to transcoding
        actions = self._policy.on_init(init)
        if copy:
            self._probe = probe_from_init(init, has_audio=self._policy.source_has_audio)
        self._act(actions)
        video = init.video
        log.info("%s: generation %d: %s %sx%s, audio %s", self.config.name, generation,
                 video.codec_string if video else "no video", video.width if video else "?",
                 video.height if video else "?", "yes" if init.has_audio else "no")
        self._set_state(PipelineState.RUNNING)
        self._notify()

    def _on_fragment(self, fragment: Fragment, now: float) -> None:
        self._fragments += 1
        self._run_fragments += 1
        if self._run_fragments == 1:
            self._media_flows(now)
        self.prebuffer.push(fragment, now)
        copy = self.profile.is_copy  # before the policy may fall back to transcoding
        self._act(self._policy.on_fragment(fragment))
        if copy and self._probe is not None and self.prebuffer.init is not None:
            m = self._policy.monitor.measurement
            self._probe = replace(self._probe, fps=m.fps, keyframe_interval_s=m.keyframe_interval_s)
        self._notify()

    def _media_flows(self, now: float) -> None:
        """The first fragment of a run: the run is healthy; an outage, if any, is over."""
        recovery = self._schedule.healthy(now)
        if recovery is not None:
            log.info("%s: ffmpeg is running again after %s s down (%d failed attempts)", self.config.name,
                     seconds(recovery.outage_s), recovery.attempts)
        self._emit(PipelineEvent("running"))

    def _act(self, actions: list[Action]) -> None:
        """Carry out what the stream policy answered: log its notices, ask for its restarts."""
        for action in actions:
            if isinstance(action, Restart):
                self._request_restart(action.reason)
            else:
                log.log(logging.WARNING if action.warning else logging.INFO, "%s: %s", self.config.name, action.text)
