"""One ffmpeg run, the same way for every user: spawn, watch, explain, reap.

The recording pipeline, live view, the probe and snapshots all start ffmpeg, and all start it
this one way, so that no path can leak the camera password or swallow ffmpeg's error: each
builds an :class:`FfmpegRun` and awaits :meth:`FfmpegRun.run`, which

* spawns the argv (or an ``ffmpeg-python`` stream's ``.compile()``), with extra pipes
  (``pass_fds``) for second outputs, as a child that dies with the sidecar (``process.spawn``);
* hands stdout to the caller's *consumer* coroutine (fMP4 reader, ``-progress`` parser, JPEG
  collector) and drains stderr into a bounded, masked :class:`~.stderr.StderrTail`;
* runs a progress watchdog: the consumer calls :meth:`FfmpegRun.progress` when it sees life;
  no progress within ``startup_timeout_s`` of the spawn, or for ``stall_timeout_s`` after the
  last progress, ends the run with the caller's message ("no keyframe for 10 s");
* ends on EOF, the watchdog, the consumer's own verdict or :meth:`FfmpegRun.request_stop`,
  and always terminates and reaps the child (also when the awaiting task is cancelled);
* returns a :class:`RunResult` whose ``reason`` is the cause in words, from ffmpeg's stderr
  ("connection refused", "401 unauthorized: check the user and password", "no such file").

What to do next (restart with backoff, end a live session, report a snapshot error) is the
caller's business; the restart schedule lives in ``restart.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..redact import redact
from .child import Child, PipeSource
from .process import FfmpegNotFound, spawn, terminate_and_reap
from .stderr import Cause, CauseKind, StderrTail, cause_in_words, seconds

__all__ = [
    "Compilable", "Consumer", "DirectConsumer", "EndKind", "FfmpegRun", "RunResult", "StderrLog", "argv_of",
    "run_to_completion",
]

log = logging.getLogger(__name__)


class Compilable(Protocol):
    """An ``ffmpeg-python`` output stream (anything with ``.compile() -> list[str]``)."""

    def compile(self) -> list[str]: ...


def argv_of(command: Sequence[str] | Compilable) -> list[str]:
    """An argv from a plain sequence or an ``ffmpeg-python`` stream."""
    if isinstance(command, (list, tuple)):
        return [str(a) for a in command]
    compile_ = getattr(command, "compile", None)
    if callable(compile_):
        return [str(a) for a in compile_()]
    return [str(a) for a in command]  # type: ignore[union-attr]


class EndKind(enum.Enum):
    EXITED = "exited"  # stdout reached EOF and ffmpeg exited by itself
    STALLED = "stalled"  # the progress watchdog fired
    STOPPED = "stopped"  # request_stop() (or cancellation)
    CONSUMER = "consumer"  # the consumer returned a verdict (enough data, bad data)
    SPAWN_FAILED = "spawn_failed"  # ffmpeg could not be started at all


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended. ``reason`` is in words and masked; ``cause`` is set for failures."""

    end: EndKind
    reason: str
    cause: Cause | None
    exit_code: int | None
    stderr: tuple[str, ...]
    ran_s: float
    progressed: bool

    @property
    def ok(self) -> bool:
        """ffmpeg finished by itself with exit code 0."""
        return self.end is EndKind.EXITED and self.exit_code == 0


#: Reads ffmpeg's stdout until EOF (return ``None``) or until it has a verdict (return a
#: reason: the run is then stopped at once). Call ``run.progress()`` on every sign of life.
Consumer = Callable[[asyncio.StreamReader, "FfmpegRun"], Coroutine[Any, Any, str | None]]
#: The same, reading stdout as a :class:`~.child.PipeSource` (straight into its own buffers).
DirectConsumer = Callable[[PipeSource, "FfmpegRun"], Coroutine[Any, Any, str | None]]


async def _drain(stdout: asyncio.StreamReader | PipeSource) -> None:
    while await stdout.read(1 << 16):
        pass


async def _discard(stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
    while await stdout.read(1 << 16):
        run.progress()
    return None


class FfmpegRun:
    """One ffmpeg process from spawn to reap (see the module doc).

    Args:
        command: an argv (``argv[0]`` is the ffmpeg binary) or an ``ffmpeg-python`` stream.
        name: for logs (``<camera>`` or ``<camera>:live``).
        consume: the stdout consumer; default: read and discard, every read counts as progress.
        consume_direct: a consumer of stdout as a :class:`~.child.PipeSource` instead (when set,
            ``consume`` is not used).
        stdin_data: bytes written to ffmpeg's stdin, which is then closed (``None``: /dev/null).
        pass_fds: extra descriptors ffmpeg inherits (``-f rawvideo pipe:<fd>``); the caller
            closes its copies of the child's ends once ffmpeg runs (``on_spawn``).
        on_spawn: called right after a successful spawn, with ffmpeg's pid, before any output
            is read: close the parent's copies of ``pass_fds`` there and start their readers.
        startup_timeout_s / stall_timeout_s: the watchdog (``None``: no limit).
        startup_message / stall_message: the reason when it fires; ``{s}`` is the duration.
        stop_timeout_s: SIGTERM grace before SIGKILL.
        exit_grace_s: after stdout's EOF, how long ffmpeg may take to exit by itself.
        on_stderr: called with every stderr line (masked), e.g. to log it.
        stderr_lines: how many lines the tail keeps.
    """

    def __init__(
        self,
        command: Sequence[str] | Compilable,
        *,
        name: str,
        consume: Consumer | None = None,
        consume_direct: DirectConsumer | None = None,
        stdin_data: bytes | None = None,
        pass_fds: Sequence[int] = (),
        on_spawn: Callable[[int], None] | None = None,
        startup_timeout_s: float | None = None,
        stall_timeout_s: float | None = None,
        startup_message: str = "no output from ffmpeg within {s} s",
        stall_message: str = "no output from ffmpeg for {s} s",
        stop_timeout_s: float = 3.0,
        exit_grace_s: float = 2.0,
        on_stderr: Callable[[str], None] | None = None,
        stderr_lines: int = 20,
        read_limit: int = 1 << 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.argv = argv_of(command)
        self.name = name
        self._consume = consume or _discard
        self._consume_direct = consume_direct
        self._stdin_data = stdin_data
        self.pass_fds = tuple(pass_fds)
        self._on_spawn = on_spawn
        self.startup_timeout_s = startup_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.startup_message = startup_message
        self.stall_message = stall_message
        self.stop_timeout_s = stop_timeout_s
        self.exit_grace_s = exit_grace_s
        self._on_stderr = on_stderr
        self._read_limit = read_limit
        self._clock = clock
        self.stderr = StderrTail(max_lines=stderr_lines)
        self.pid: int | None = None
        self.returncode: int | None = None
        self.spawned = asyncio.Event()
        self.first_progress = asyncio.Event()
        self.last_progress: float | None = None
        self._stop_reason: str | None = None
        self._wake = asyncio.Event()
        self._started_at: float | None = None

    # -- for the caller and the consumer --------------------------------------------------------
    def progress(self) -> None:
        """A sign of life (a fragment, a frame counter that moved): feeds the watchdog."""
        self.last_progress = self._clock()
        if not self.first_progress.is_set():
            self.first_progress.set()
            self._wake.set()  # the deadline changes from the startup to the stall timeout

    def request_stop(self, reason: str = "stopped") -> None:
        """End the run (idempotent; the first reason wins). ``run()`` still reaps ffmpeg."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake.set()

    @property
    def running(self) -> bool:
        return self.pid is not None and self.returncode is None

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        """Spawn, watch and reap; returns how the run ended. Never raises for ffmpeg's faults;
        a cancellation still terminates and reaps ffmpeg before it propagates."""
        started = self._clock()
        self._started_at = started
        try:
            proc = await spawn(
                self.argv,
                stdin=asyncio.subprocess.PIPE if self._stdin_data is not None else asyncio.subprocess.DEVNULL,
                pass_fds=self.pass_fds,
                limit=self._read_limit,
                direct_stdout=self._consume_direct is not None,
            )
        except FfmpegNotFound as exc:
            return self._result(EndKind.SPAWN_FAILED, str(exc), Cause(str(exc), CauseKind.CONFIG), None, started)
        except OSError as exc:
            text = f"cannot start ffmpeg: {exc.strerror or exc}"
            return self._result(EndKind.SPAWN_FAILED, text, Cause(text, CauseKind.CONFIG), None, started)
        self.pid = proc.pid
        self.spawned.set()
        if self._on_spawn is not None:
            try:
                self._on_spawn(proc.pid)
            except Exception:  # the run must still be watched and reaped
                log.exception("%s: on_spawn failed", self.name)
        assert proc.stdout is not None and proc.stderr is not None
        loop = asyncio.get_running_loop()
        stdout = proc.stdout
        if isinstance(stdout, PipeSource):
            assert self._consume_direct is not None
            reading = self._consume_direct(stdout, self)
        else:
            reading = self._consume(stdout, self)
        consumer = loop.create_task(reading, name=f"ffmpeg:{self.name}:stdout")
        consumer.add_done_callback(lambda _t: self._wake.set())
        helpers = [consumer, loop.create_task(self._drain_stderr(proc.stderr), name=f"ffmpeg:{self.name}:stderr")]
        if self._stdin_data is not None:
            helpers.append(loop.create_task(self._feed_stdin(proc), name=f"ffmpeg:{self.name}:stdin"))
        end, reason = EndKind.STOPPED, "cancelled"
        try:
            end, reason = await self._watch(consumer)
            if consumer.done() and proc.returncode is None:
                # The consumer is finished but ffmpeg may still write (its last fragment after
                # SIGTERM): keep draining, or it blocks on a full pipe and never exits.
                helpers.append(loop.create_task(_drain(proc.stdout), name=f"ffmpeg:{self.name}:drain"))
            if end is EndKind.EXITED:
                # EOF on stdout: ffmpeg is exiting; let it finish by itself (its exit code matters).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.exit_grace_s):
                        await proc.wait()
        finally:
            await terminate_and_reap(proc, helpers, grace_s=self.stop_timeout_s, name=self.name, log=log)
            if isinstance(stdout, PipeSource):
                stdout.close()  # a reader cancelled before EOF leaves it open (a transport closes itself)
            self.returncode = proc.returncode
        cause: Cause | None = None
        if end is EndKind.EXITED:
            cause = cause_in_words(self.stderr.snapshot(), proc.returncode)
            reason = cause.text if cause is not None else reason
        elif end is EndKind.STALLED:
            found = cause_in_words(self.stderr.snapshot())
            cause = found if found is not None else Cause(reason, CauseKind.SOURCE)
            if found is not None:
                reason = f"{reason} ({found.text})"
        elif end is EndKind.CONSUMER:
            cause = Cause(reason, CauseKind.SOURCE)
        return self._result(end, reason, cause, proc.returncode, started)

    def _result(self, end: EndKind, reason: str, cause: Cause | None, code: int | None, started: float) -> RunResult:
        return RunResult(end, reason, cause, code, self.stderr.snapshot(), self._clock() - started,
                         self.first_progress.is_set())

    async def _watch(self, consumer: asyncio.Task[str | None]) -> tuple[EndKind, str]:
        assert self._started_at is not None
        while True:
            if self._stop_reason is not None:
                return EndKind.STOPPED, self._stop_reason
            if consumer.done():
                if consumer.cancelled():
                    return EndKind.CONSUMER, "stdout reader cancelled"
                exc = consumer.exception()
                if exc is not None:
                    log.error("%s: error reading ffmpeg's output", self.name, exc_info=exc)
                    return EndKind.CONSUMER, redact(f"internal error reading ffmpeg's output: {exc!r}")
                verdict = consumer.result()
                return (EndKind.EXITED, "ffmpeg exited") if verdict is None else (EndKind.CONSUMER, verdict)
            remaining: float | None = None
            if self.last_progress is None and self.startup_timeout_s is not None:
                remaining = self._started_at + self.startup_timeout_s - self._clock()
                if remaining <= 0:
                    return EndKind.STALLED, self.startup_message.format(s=seconds(self.startup_timeout_s))
            elif self.last_progress is not None and self.stall_timeout_s is not None:
                remaining = self.last_progress + self.stall_timeout_s - self._clock()
                if remaining <= 0:
                    return EndKind.STALLED, self.stall_message.format(s=seconds(self.stall_timeout_s))
            self._wake.clear()
            if remaining is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._wake.wait()

    async def _drain_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(4096):
            for line in self.stderr.feed(chunk):
                self._emit_stderr(line)
        for line in self.stderr.close():
            self._emit_stderr(line)

    def _emit_stderr(self, line: str) -> None:
        if self._on_stderr is not None:
            try:
                self._on_stderr(line)
            except Exception:  # a logging bug must not stop the drain (ffmpeg would block)
                log.exception("%s: stderr handler failed", self.name)

    async def _feed_stdin(self, proc: Child) -> None:
        stdin = proc.stdin
        assert stdin is not None and self._stdin_data is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(self._stdin_data)
            await stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()


async def run_to_completion(
    command: Sequence[str] | Compilable,
    *,
    name: str,
    stdin_data: bytes | None = None,
    max_output: int = 16 * 1024 * 1024,
    timeout_s: float | None = None,
) -> tuple[RunResult, bytes]:
    """Run a short ffmpeg job (a snapshot) and collect its stdout, at most ``max_output`` bytes.

    ``timeout_s`` bounds silence (nothing at start, or no new output for that long: the result
    then ends ``STALLED``); callers bound the whole job with ``asyncio.timeout``, and a
    cancelled caller gets ffmpeg killed and reaped before the cancellation goes on.
    """
    out = bytearray()

    async def collect(stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
        while chunk := await stdout.read(1 << 16):
            run.progress()
            if len(out) + len(chunk) > max_output:
                return f"ffmpeg produced more than {max_output} bytes"
            out.extend(chunk)
        return None

    run = FfmpegRun(command, name=name, consume=collect, stdin_data=stdin_data,
                    startup_timeout_s=timeout_s, stall_timeout_s=timeout_s,
                    startup_message="ffmpeg produced nothing within {s} s",
                    stall_message="ffmpeg stalled for {s} s")
    result = await run.run()
    return result, bytes(out)


class StderrLog:
    """Logs a long-lived ffmpeg's stderr: rate limited (a token bucket) while media flows, at
    debug level before that (the run's cause in words says it all then)."""

    def __init__(self, name: str, burst: int, refill_s: float, clock: Callable[[], float],
                 media_flows: Callable[[], bool]) -> None:
        self.name, self.burst, self.refill_s, self.clock = name, burst, refill_s, clock
        self.media_flows = media_flows
        self.tokens = float(burst)
        self.stamp = clock()
        self.suppressed = 0

    def line(self, text: str) -> None:
        """Log one (already masked) line."""
        if not self.media_flows():
            log.debug("%s: ffmpeg: %s", self.name, text)
            return
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
