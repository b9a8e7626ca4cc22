"""Live view, the asyncio adapter: :class:`LiveStreaming` on the RTP service's characteristics.

How a live view goes (HAP-NodeJS semantics, what hubs and iPhones are used to):
the controller writes SetupEndpoints (its address, ports, SRTP keys) and reads it back to get
ours (status, our address of the same IP version, our ports, our keys, our SSRCs); it then
writes SelectedRTPStreamConfiguration with command start and the chosen resolution, bitrate,
MTU and audio; later reconfigure (new resolution/bitrate: ffmpeg is restarted with the same
keys and SSRCs) and end. Suspend and resume are refused (-70410) as HAP-NodeJS does.

The decisions are :class:`~sidecar.camera.live.streaming_manager.StreamingManager`'s; this adapter binds
our UDP ports, runs one :class:`~sidecar.media.LiveStreamProcess` per started session, ties each
session to the HAP connection that set it up, and keeps StreamingStatus current.

Why our own SRTP keys: the key we encrypt with is the key we put in the read-back, so the
controller decrypts with what we told it; the controller's own key protects what *it* sends:
its return audio, which a camera with two-way audio hands to a
:class:`~sidecar.camera.live.talkback.Talkback` for the session's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...hap import HapError, HapStatus, ReadContext, WriteContext
from ...media import (
    InputSpec,
    LiveAudio,
    LiveStreamProcess,
    LiveStreamSpec,
    LiveVideo,
    Profile,
    RecordingSettings,
    Source,
    build_live_argv,
    copy_bsf_for,
)
from ...media.sources import SourceKind
from ..spec import TwoWayAudio
from .streaming_manager import Action, LiveSession, Start, Stop, StreamingManager, source_fits
from .talkback import Talkback
from .tlv import CODEC_OPUS, SelectedCommand, SetupRequest

__all__ = ["LiveStreaming"]

log = logging.getLogger(__name__)


class _RtcpWatch(asyncio.DatagramProtocol):
    """Our advertised port: the controller's RTCP reports arrive here and prove it is alive.

    On the audio port, the controller's own RTP (return audio, when the person talks) arrives
    too: ``forward`` gets those packets (RTCP packet types are 200-204)."""

    def __init__(self, seen: Callable[[], None], forward: Callable[[bytes], None] | None = None) -> None:
        self._seen = seen
        self._forward = forward

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._seen()
        if self._forward is not None and len(data) >= 12 and not 200 <= data[1] <= 204:
            self._forward(data)


@dataclass
class _Runner:
    session: LiveSession
    sockets: list[socket.socket]
    task: asyncio.Task[None] | None = None
    process: LiveStreamProcess | None = None
    restart: bool = False
    last_rtcp: float | None = None
    starts: int = 0
    talk: Talkback | None = None


class LiveStreaming:
    """A camera's live streaming, wired onto its RTP service's characteristics.

    Attributes tests and benchmarks may tune: ``stall_timeout_s`` (no frames from ffmpeg),
    ``rtcp_timeout_s`` (no RTCP from a controller that did send some), ``prepared_timeout_s``
    (a SetupEndpoints never followed by start).
    """

    def __init__(self, *, name: str, source: Source, ffmpeg: str = "ffmpeg", max_sessions: int = 2,
                 probe: Callable[[], Mapping[str, Any] | None] = lambda: None, copy_allowed: bool = False,
                 on_status: Callable[[bytes], object] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom, talk: TwoWayAudio | None = None,
                 talk_muted: Callable[[], bool] = lambda: False, talk_volume: Callable[[], int] = lambda: 100) -> None:
        self.name = name
        self.source = source
        self.ffmpeg = ffmpeg
        self.manager = StreamingManager(max_sessions=max_sessions, random_bytes=random_bytes)
        self._probe = probe
        self._copy_allowed = copy_allowed
        self._on_status = on_status
        self.talk = talk  # two-way audio (docs/two-way-audio.md); None: the controller's audio is ignored
        self._talk_muted = talk_muted
        self._talk_volume = talk_volume
        self._runners: dict[bytes, _Runner] = {}
        self._owner_unregister: dict[int, Callable[[], None]] = {}
        self._prepared_timers: dict[bytes, asyncio.TimerHandle] = {}
        self._pending_sockets: list[socket.socket] = []  # bound by _bind, taken by write_setup
        self._session_sources: dict[bytes, Source] = {}  # sessions fed by another stream than the camera's
        self._session_profiles: dict[bytes, Profile] = {}  # sessions encoded with an encoding profile
        self._session_hevc: set[bytes] = set()  # H.265 sessions (a secure-video H.265 tier)
        self.stall_timeout_s = 6.0
        self.startup_timeout_s = 15.0
        self.rtcp_timeout_s = 30.0
        self.prepared_timeout_s = 30.0
        self.keyframe_interval_s = 2.0
        self.sessions_started = 0

    # -- characteristic handlers -----------------------------------------------------------------
    def write_setup(self, value: bytes, ctx: WriteContext) -> None:
        owner = ctx.session.session_id
        session = self.manager.setup(value, owner, self._bind)
        if owner not in self._owner_unregister:
            self._owner_unregister[owner] = ctx.session.add_close_callback(lambda: self._owner_closed(owner))
        if session is None:
            log.info("%s: live view refused: busy (%d sessions)", self.name, len(self.manager.sessions))
            return
        runner = _Runner(session, self._pending_sockets)
        self._pending_sockets = []
        self._runners[session.session_id] = runner
        self._prepared_timers[session.session_id] = asyncio.get_running_loop().call_later(
            self.prepared_timeout_s, self._end, session.session_id, "never started")
        log.info("%s: live session %s set up for %s (video %d, audio %d)", self.name, session.label,
                 session.request.address, session.request.video_port, session.request.audio_port)
        self._publish_status()

    def read_setup(self, ctx: ReadContext) -> bytes:
        return self.manager.read_setup(ctx.session.session_id)

    def write_selected(self, value: bytes, ctx: WriteContext) -> None:
        self._carry_out(self.manager.select(value, ctx.session.session_id))

    def start_selected(self, selected: SelectedCommand, ctx: WriteContext, source: Source | None = None,
                       profile: Profile | None = None, hevc: bool = False) -> None:
        """A decoded selection from another model's control (a secure-video tier start or end).

        ``source``: the session's pictures come from this stream (a camera's substream) instead
        of the camera's main stream; it is always encoded at the selected size, and carries audio
        only when the source says it has some. ``profile``: the session is encoded with this
        encoding profile (never copied) instead of the built-in libx264 settings. ``hevc``: the
        session is H.265 (the camera's H.265 copied when it fits, else encoded with libx265).
        """
        action = self.manager.select_command(selected, ctx.session.session_id)
        if isinstance(action, Start):
            if source is not None:
                self._session_sources[action.session.session_id] = source
            if profile is not None:
                self._session_profiles[action.session.session_id] = profile
            if hevc:
                self._session_hevc.add(action.session.session_id)
        self._carry_out(action)

    def has_session(self, session_id: bytes, ctx: WriteContext) -> bool:
        """Whether ``session_id`` was set up over this HAP session."""
        session = self.manager.sessions.get(session_id)
        return session is not None and session.owner == ctx.session.session_id

    def _carry_out(self, action: Action) -> None:
        runner = self._runners.get(action.session.session_id)
        if runner is None:  # the manager knew it, the adapter did not: never expected
            self.manager.remove(action.session.session_id)
            raise HapError(HapStatus.SERVICE_COMMUNICATION_FAILURE)
        if isinstance(action, Stop):
            self._end(action.session.session_id, "the controller ended it")
        elif isinstance(action, Start):
            timer = self._prepared_timers.pop(action.session.session_id, None)
            if timer is not None:
                timer.cancel()
            runner.task = asyncio.get_running_loop().create_task(
                self._run(runner), name=f"{self.name}:live-{action.session.label}")
            self._publish_status()  # streaming: in use
        else:
            runner.restart = True
            if runner.process is not None:
                runner.process.request_stop("reconfigure")

    def read_selected(self, ctx: ReadContext) -> bytes:
        return self.manager.read_selected()

    def set_enabled(self, enabled: bool) -> None:
        """RTP Active and HomeKitCameraActive (both must be 1): off ends every session."""
        for session in self.manager.set_enabled(enabled):
            self._end(session.session_id, "streaming switched off")
        self._publish_status()

    async def aclose(self) -> None:
        """End every session and wait until every ffmpeg is reaped."""
        for session_id in list(self._runners):
            self._end(session_id, "camera stopping")
        tasks = [r.task for r in self._runners.values() if r.task is not None]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for unregister in self._owner_unregister.values():
            unregister()
        self._owner_unregister.clear()

    @property
    def active_sessions(self) -> int:
        return sum(1 for r in self._runners.values() if r.task is not None and not r.task.done())

    def pids(self) -> list[int]:
        return [r.process.pid for r in self._runners.values() if r.process is not None and r.process.pid]

    # -- internals ----------------------------------------------------------------------------------
    def _bind(self, request: SetupRequest) -> tuple[str, int, int]:
        """Our address towards the controller (the route the kernel picks; a connected UDP
        socket sends nothing) and two bound UDP ports that receive its RTCP."""
        family = socket.AF_INET if request.ip_version == 0 else socket.AF_INET6
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((request.address, request.video_port))
            address = str(probe.getsockname()[0]).split("%")[0]
        sockets: list[socket.socket] = []
        try:
            for _ in range(2):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.setblocking(False)
                sock.bind((address, 0))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        self._pending_sockets = sockets
        return address, sockets[0].getsockname()[1], sockets[1].getsockname()[1]

    def _publish_status(self) -> None:
        if self._on_status is not None:
            self._on_status(self.manager.status_value())

    def _owner_closed(self, owner: int) -> None:
        self._owner_unregister.pop(owner, None)
        for session in self.manager.owner_closed(owner):
            self._end(session.session_id, "its HAP session closed")
        self._publish_status()

    def _end(self, session_id: bytes, reason: str) -> None:
        """End a session whatever its state; the runner task (if any) reaps ffmpeg."""
        self.manager.remove(session_id)
        timer = self._prepared_timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        runner = self._runners.get(session_id)
        if runner is None:
            return
        if runner.task is None or runner.task.done():
            self._forget(runner, reason)
        else:
            runner.restart = False
            if runner.process is not None:
                runner.process.request_stop(reason)
            else:
                runner.task.cancel()
        self._publish_status()

    def _forget(self, runner: _Runner, reason: str) -> None:
        if self._runners.get(runner.session.session_id) is runner:
            del self._runners[runner.session.session_id]
            self._session_sources.pop(runner.session.session_id, None)
            self._session_profiles.pop(runner.session.session_id, None)
            self._session_hevc.discard(runner.session.session_id)
            for sock in runner.sockets:
                sock.close()
            log.info("%s: live session %s ended: %s", self.name, runner.session.label, reason)
        self.manager.remove(runner.session.session_id)
        self._publish_status()

    def spec_for(self, session: LiveSession) -> LiveStreamSpec:
        """The ffmpeg spec of a started session (public for the benchmark and tests)."""
        video = session.video
        assert video is not None
        response = session.response
        assert response.video_srtp is not None and response.audio_srtp is not None
        source = self._session_sources.get(session.session_id, self.source)
        own = source is self.source
        profile = self._session_profiles.get(session.session_id)
        hevc = session.session_id in self._session_hevc
        copy = own and profile is None and source_fits(self._probe(), video, copy_allowed=self._copy_allowed,
                                                       hevc=hevc)
        inputs: tuple[InputSpec, ...] = source.inputs()
        encoder, encoder_filter, encoder_options = None if copy else ("libx265" if hevc else "libx264"), None, None
        if profile is not None:
            # The profile's own encoder, filter and options, rendered for this stream (its input
            # options too: a hardware profile decodes on the device its filter scales on).
            settings = RecordingSettings(
                width=video.width, height=video.height, fps=video.fps, bitrate_kbps=max(50, video.bitrate_kbps),
                profile=video.profile.ffmpeg, level=video.level.ffmpeg,
                iframe_interval_ms=max(500, round(self.keyframe_interval_s * 1000)), audio=False)
            encoder = profile.video_codec
            encoder_filter, options = profile.render_video(settings)
            encoder_options = tuple(options.items())
            first = inputs[0]
            inputs = (InputSpec(first.url, {**profile.render_input(settings), **first.options}), *inputs[1:])
        live_video = LiveVideo(
            port=session.request.video_port, ssrc=response.video_ssrc, width=video.width, height=video.height,
            fps=video.fps, bitrate_kbps=video.bitrate_kbps, mtu=session.mtu, payload_type=video.payload_type,
            encoder=encoder, profile=video.profile.ffmpeg,
            level=video.level.ffmpeg, keyframe_interval_s=self.keyframe_interval_s,
            srtp_key_b64=response.video_srtp.key_salt_b64, copy_bsf=copy_bsf_for(source, hevc=hevc),
            encoder_filter=encoder_filter, encoder_options=encoder_options)
        audio: LiveAudio | None = None
        audio_map = self._audio_map() if own else ("0:a:0" if source.has_audio else None)
        sel = session.audio
        if sel is not None and sel.codec == CODEC_OPUS and audio_map is not None:
            audio = LiveAudio(port=session.request.audio_port, ssrc=response.audio_ssrc,
                              sample_rate_hz=sel.sample_rate_hz, packet_time_ms=sel.packet_time_ms,
                              bitrate_kbps=max(8, min(sel.bitrate_kbps, 64)), channels=1,
                              payload_type=sel.payload_type, srtp_key_b64=response.audio_srtp.key_salt_b64)
        return LiveStreamSpec(inputs=inputs, address=session.request.address, video=live_video, audio=audio,
                              audio_map=audio_map if audio is not None else None)

    def _audio_map(self) -> str | None:
        if self.source.kind is SourceKind.DEMO:
            return "1:a:0"
        probe = self._probe()
        has_audio = self.source.has_audio if self.source.has_audio is not None else (
            bool(probe.get("has_audio")) if probe is not None else False)
        return "0:a:0" if has_audio else None

    async def _run(self, runner: _Runner) -> None:
        """Run ffmpeg for a session until it ends; a reconfigure restarts it with the new
        selection (same keys, SSRCs and ports)."""
        session = runner.session
        loop = asyncio.get_running_loop()
        transports: list[asyncio.DatagramTransport] = []
        reason = "cancelled"

        def seen() -> None:
            runner.last_rtcp = loop.time()

        talk_task: asyncio.Task[None] | None = None
        try:
            runner.talk = self._talkback(session)
            forwards = [None, runner.talk.datagram if runner.talk is not None else None]
            for sock, forward in zip(runner.sockets, forwards, strict=True):
                transport, _ = await loop.create_datagram_endpoint(
                    lambda forward=forward: _RtcpWatch(seen, forward), sock=sock)  # type: ignore[misc]
                transports.append(transport)
            if runner.talk is not None:
                talk_task = loop.create_task(runner.talk.run(), name=f"{self.name}:talk-{session.label}")
            while True:
                spec = self.spec_for(session)
                argv = build_live_argv(spec, self.ffmpeg)
                process = LiveStreamProcess(argv, name=f"{self.name}:{session.label}",
                                            startup_timeout_s=self.startup_timeout_s,
                                            stall_timeout_s=self.stall_timeout_s)
                runner.process = process
                runner.restart = False
                runner.starts += 1
                self.sessions_started += 1
                v = spec.video
                log.info("%s: live session %s %s %dx%d@%d %d kbps MTU %d, audio %s", self.name, session.label,
                         "copying" if v.encoder is None else "encoding", v.width, v.height, v.fps,
                         v.bitrate_kbps, v.mtu,
                         "off" if spec.audio is None else f"opus {spec.audio.sample_rate_hz} Hz")
                watch = loop.create_task(self._watch_rtcp(runner, process), name=f"{self.name}:rtcp")
                try:
                    reason = await process.run()
                finally:
                    watch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watch
                runner.process = None
                if not (runner.restart and session.session_id in self.manager.sessions):
                    break
        except Exception as exc:  # a bug here must end the session cleanly, and be seen
            log.exception("%s: live session %s failed", self.name, session.label)
            reason = f"internal error: {exc!r}"
        finally:
            if runner.talk is not None:
                runner.talk.stop()
            if talk_task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await talk_task
            for transport in transports:
                transport.close()
            self._forget(runner, reason)

    def _talkback(self, session: LiveSession) -> Talkback | None:
        """The session's talk path: only for a camera with two-way audio, and a controller that
        selected audio (its return audio is Opus, like ours)."""
        sel = session.audio
        if self.talk is None or sel is None or sel.codec != CODEC_OPUS:
            return None
        return Talkback(name=self.name, config=self.talk, source_url=self.source.url,
                        srtp_key_b64=session.request.audio_srtp.key_salt_b64, payload_type=sel.payload_type,
                        sample_rate_hz=sel.sample_rate_hz, ffmpeg=self.ffmpeg, muted=self._talk_muted,
                        volume=self._talk_volume)

    async def _watch_rtcp(self, runner: _Runner, process: LiveStreamProcess) -> None:
        """A controller that reported once and then went silent is gone (a phone put away
        without closing HAP): end its session."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.rtcp_timeout_s / 2))
            if runner.last_rtcp is not None and loop.time() - runner.last_rtcp > self.rtcp_timeout_s:
                process.request_stop(f"no RTCP from the controller for {self.rtcp_timeout_s:.0f} s")
                return
