"""Detector frames from a second stream of the camera (its substream), by a separate ffmpeg.

Decoding a 1080p or 4K main stream just to look at 100 gray rows five times a second costs a
good part of a core; most cameras offer a small substream, and Frigate's advice is to detect on
it. :class:`DetectFeed` runs one small ffmpeg on that URL (``detect_source``) whose stdout is
the y4m stream of :mod:`.frames`, read as fast as it comes with only the newest frame handed on.
The recording ffmpeg is not touched.

It uses the shared runner (:class:`.runner.FfmpegRun`: spawn, masked stderr, the cause in
words, reaping) and restart schedule (:class:`.restart.RestartSchedule`): any exit (an RTSP
camera dropping makes ffmpeg exit 0, docs/cameras-and-nvrs.md §RTSP drops) or ``silence_timeout_s`` without a
frame starts it again after a backoff that a healthy run resets; one log line per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from .frames import DetectOutput, FrameCallback, GrayFrame, Y4mError, Y4mReader
from .restart import RestartSchedule
from .runner import FfmpegRun
from .sources import Source

__all__ = ["DetectFeed", "detect_argv"]

log = logging.getLogger(__name__)


def detect_argv(source: Source, detect: DetectOutput, ffmpeg_bin: str = "ffmpeg") -> list[str]:
    """ffmpeg reading ``source``'s first video stream, writing detector frames to stdout."""
    video = source.inputs()[0]
    return [ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", *video.argv(),
            "-map", "0:v:0", *detect.argv(), "pipe:1"]


class DetectFeed:
    """A supervised ffmpeg that feeds ``on_frame`` from ``source``. ``start()``/``stop()``."""

    def __init__(self, source: Source, on_frame: FrameCallback, *, detect: DetectOutput | None = None,
                 name: str = "camera", ffmpeg_bin: str = "ffmpeg", backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 30.0, silence_timeout_s: float = 10.0, startup_timeout_s: float = 20.0,
                 stop_timeout_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.on_frame = on_frame
        self.detect = detect or DetectOutput()
        self.name = name
        self.ffmpeg_bin = ffmpeg_bin
        self.silence_timeout_s, self.startup_timeout_s = silence_timeout_s, startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._schedule = RestartSchedule(backoff_initial_s, backoff_max_s)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.dropped = 0
        self.runs = 0
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"detect:{self.name}")

    async def stop(self) -> None:
        """Stop and reap the detector's ffmpeg (the runner reaps it on cancellation)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._schedule.reset()

    async def _main(self) -> None:
        while True:
            self.runs += 1
            run = FfmpegRun(detect_argv(self.source, self.detect, self.ffmpeg_bin), name=f"{self.name}:detect",
                            consume=self._consume, startup_timeout_s=self.startup_timeout_s,
                            stall_timeout_s=self.silence_timeout_s,
                            startup_message="no detector frames from the substream within {s} s",
                            stall_message="no detector frames for {s} s", stop_timeout_s=self.stop_timeout_s,
                            clock=self._clock)
            if self.runs == 1 or not self._schedule.in_outage:
                log.info("%s: detector ffmpeg on %s (%s)", self.name, self.source.describe(), self.detect.filter)
            result = await run.run()
            self.last_error = result.reason
            end = self._schedule.run_ended(self._clock(), result.reason)
            # One line per outage (and per change of cause); the attempts in between are debug.
            log.log(logging.WARNING if end.worth_logging else logging.DEBUG,
                    "%s: detector ffmpeg stopped (%s); retrying in %.0f s", self.name, result.reason, end.delay_s)
            await asyncio.sleep(end.delay_s)

    async def _consume(self, stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
        reader = Y4mReader()
        healthy = False
        while data := await stdout.read(1 << 18):
            try:
                frames = reader.feed(data)
            except Y4mError as exc:
                return f"unreadable detector frames: {exc}"
            if not frames:
                continue
            run.progress()
            if not healthy:
                healthy = True
                self.last_error = None  # it belonged to a failed run; this one is healthy
                recovery = self._schedule.healthy(self._clock())
                if recovery is not None:
                    log.info("%s: detector frames flow again", self.name)
            self.frames += len(frames)
            self.dropped += len(frames) - 1
            self._deliver(replace(frames[-1], skipped=len(frames) - 1))
        return None

    def _deliver(self, frame: GrayFrame) -> None:
        try:
            self.on_frame(frame, self._clock())
        except Exception:  # a consumer's bug must not stop the reading
            log.exception("%s: detector frame consumer failed", self.name)
