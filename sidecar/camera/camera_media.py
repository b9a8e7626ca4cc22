"""A camera's ffmpeg side, run as :class:`~sidecar.camera.core.CameraCore` wants: :class:`CameraMedia`.

It owns the recording pipeline (and so the prebuffer), the separate detector ffmpeg when the
camera has a ``detect_source``, the probes that tell the core what the source delivers, and
JPEG snapshots. It decides nothing: whether ffmpeg runs is the core's ``pipeline_wanted``, what
it encodes the core's ``recording_settings()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from ..hap import HapError, HapStatus
from ..hds import HDSServer
from ..media import MediaPipeline, ProbeError, SourceProbe, probe_source
from ..media.detect_feed import DetectFeed
from ..media.frames import FrameCallback, GrayFrame
from ..media.sources import Source
from .core import Action, CameraCore
from .snapshot import SnapshotError, jpeg_from_fmp4, jpeg_from_input, jpeg_from_url
from .spec import CameraSpec

__all__ = ["SNAPSHOT_TIMEOUT_S", "CameraMedia", "FrameObservers"]

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_S = 8.0


class FrameObservers:
    """Who gets the detector's frames (from the pipeline's second output or the separate feed)."""

    def __init__(self) -> None:
        self._observers: list[FrameCallback] = []

    def add(self, observer: FrameCallback) -> Callable[[], None]:
        """Add ``observer``; returns the function that removes it."""
        self._observers.append(observer)

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return remove

    def __call__(self, frame: GrayFrame, now: float) -> None:
        for observer in list(self._observers):
            observer(frame, now)


class CameraMedia:
    """The ffmpeg processes of one camera. ``act`` carries out the core's answers to probes."""

    def __init__(self, spec: CameraSpec, core: CameraCore, pipeline: MediaPipeline, detect_feed: DetectFeed | None,
                 hds: HDSServer, *, source: Source, ffmpeg: str, act: Callable[[list[Action]], None],
                 spawn: Callable[[Any, str], asyncio.Task[Any]]) -> None:
        self.spec = spec
        self.name = spec.name
        self.core = core
        self.pipeline = pipeline
        self.detect_feed = detect_feed
        self.hds = hds
        self.source = source
        self.ffmpeg = ffmpeg
        self._act = act
        self._spawn = spawn
        self.running = False  # the recording ffmpeg was started (and not stopped since)
        self._lock = asyncio.Lock()
        self._announcer: asyncio.Task[None] | None = None  # one for the camera's life: it follows every run

    # -- the pipeline gate ------------------------------------------------------------------------
    async def apply(self) -> None:
        """Run ffmpeg (and the detector feed) exactly when the core wants it."""
        async with self._lock:
            if self.detect_feed is not None:
                if self.core.detect_feed_wanted:
                    await self.detect_feed.start()
                else:
                    await self.detect_feed.stop()
            wanted = self.core.pipeline_wanted
            if wanted and not self.running:
                await self.pipeline.reconfigure(self.core.recording_settings())
                await self.pipeline.start()
                self.running = True
                log.info("%s: prebuffer starting", self.name)
                if self._announcer is None or self._announcer.done():
                    self._announcer = self._spawn(self._announce_ready(), "prebuffer-ready")
            elif not wanted and self.running:
                await self.pipeline.stop()
                self.running = False
                log.info("%s: prebuffer stopped (%s off)", self.name,
                         "camera" if not self.core.settings.homekit_active else "recording")

    async def reconfigure(self) -> None:
        result = await self.pipeline.reconfigure(self.core.recording_settings())
        log.info("%s: %s", self.name, result.message)

    def restart(self) -> bool:
        """Start a fresh ffmpeg run now (False when ffmpeg is not wanted: recording is off)."""
        restarted = self.running and self.pipeline.restart("restart requested from the status page")
        log.info("%s: ffmpeg restart %s", self.name, "requested" if restarted else "skipped: ffmpeg is not running")
        return restarted

    async def stop(self) -> None:
        if self.detect_feed is not None:
            await self.detect_feed.stop()
        await self.pipeline.stop()

    async def _announce_ready(self) -> None:
        """Log when each ffmpeg run's prebuffer holds what hubs may ask for (tests watch this), and
        have the HDS sealing buffer for fragments of that size made before any hub opens. One task
        follows every run, across the camera switched off and on (one per start would pile up,
        each logging every run again)."""
        while True:
            snap = await self.pipeline.wait_ready(self.core.prebuffer_ms)
            log.info("%s: prebuffer ready (generation %d, %.1f s from a keyframe)", self.name, snap.generation,
                     snap.duration_s)
            if snap.fragments:  # the memory a recording will seal the prebuffer into, made now rather than then
                self.hds.reserve(max(fragment.data.nbytes for fragment in snap.fragments))
            if self.pipeline.profile.is_copy:
                await self.refresh_probe()  # a reconnected camera may have changed its stream
            await self.pipeline.wait_for(partial(self._generation_changed, snap.generation))

    def _generation_changed(self, generation: int) -> bool:
        return self.pipeline.prebuffer.generation != generation

    # -- probes -----------------------------------------------------------------------------------
    async def probe_until_known(self) -> None:
        """Probe the source at start, retrying with backoff while the camera is unreachable."""
        delay = 5.0
        quiet = False  # one warning per outage: the retries are debug
        while not await self.refresh_probe(quiet=quiet):
            quiet = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 300.0)

    async def refresh_probe(self, *, quiet: bool = False) -> bool:
        """Learn what the source delivers and tell the core. Returns whether it worked.

        While the pipeline runs its own output is read; otherwise a short separate ffmpeg probes
        the camera: when the pipeline is off, or when it runs without the source's audio (keep-warm
        with recording audio off) and whether the camera sends audio is not known yet (the live
        view needs to know).
        """
        cached = self.core.offer.cached_probe()
        try:
            audio_known = self.pipeline.status().has_audio is not None
            if self.running and (audio_known or (cached is not None and "has_audio" in cached)):
                probe: SourceProbe = await self.pipeline.probe(timeout_s=30)
                if not audio_known and cached is not None:  # running without audio: the source's is known
                    probe = dataclasses.replace(probe, has_audio=bool(cached["has_audio"]))
            else:
                probe = await probe_source(self.source, ffmpeg_bin=self.ffmpeg, timeout_s=20)
        except Exception as exc:
            detail = str(exc) if isinstance(exc, ProbeError) else f"{type(exc).__name__}: {exc}"
            log.log(logging.DEBUG if quiet else logging.WARNING, "%s: could not probe the source (%s); advertising %s",
                    self.name, detail, "the last known configuration" if cached else "defaults")
            return False
        self._act(self.core.probed(probe, copy=self.pipeline.profile.is_copy))
        return True

    # -- snapshots --------------------------------------------------------------------------------
    async def jpeg(self, width: int, height: int, reason: int | None) -> bytes:
        """The HAP resource handler: a JPEG of about ``width`` x ``height``, if the modes allow."""
        refusal = self.core.snapshot_refusal(reason)
        if refusal is not None:
            raise HapError(refusal)
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT_S):
                if self.spec.snapshot_url:  # {width}/{height}: the size the hub asked for
                    url = self.spec.snapshot_url.replace("{width}", str(width)).replace("{height}", str(height))
                    return await jpeg_from_url(url)
                snap = self.pipeline.fragments_since(0) if self.running else None
                if snap is not None and snap.fragments:
                    return await jpeg_from_fmp4(bytes(snap.init.data), bytes(snap.fragments[-1].data), width,
                                                height, ffmpeg=self.ffmpeg)
                inputs = [arg for spec in self.source.inputs() for arg in spec.argv()]
                return await jpeg_from_input(inputs, width, height, ffmpeg=self.ffmpeg)
        except TimeoutError:
            raise HapError(HapStatus.OPERATION_TIMED_OUT) from None
        except SnapshotError as exc:
            log.warning("%s: snapshot failed: %s", self.name, exc)
            raise HapError(HapStatus.SERVICE_COMMUNICATION_FAILURE) from None
