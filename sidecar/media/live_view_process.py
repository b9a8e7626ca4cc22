"""One live-view stream: an ffmpeg that sends a camera as SRTP to a HomeKit controller.

Knows nothing of HAP (docs/architecture.md): the camera layer turns the negotiated TLVs into the
plain values of :class:`LiveStreamSpec`, :func:`build_live_argv` turns those into an argv,
and :class:`LiveStreamProcess` runs it.

Why a process of its own per session: the recording ffmpeg must never be disturbed by a
viewer (its prebuffer is what a hub records from), and each controller negotiates its own
resolution, bitrate, keys and SSRCs.

Why ``-progress``: ffmpeg's RTP output gives us no byte stream to watch, so the only sign of
life is its progress report. A run whose frame counter stops moving (a hung camera that did
not trip the socket timeout) is killed by the stall watchdog; a run that exits (the camera
dropped) ends the session. A live view is never restarted behind the controller's back: the
Home app sets up a new session when it wants one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .runner import FfmpegRun
from .sources import InputSpec, Source, SourceKind

__all__ = [
    "SRTP_SUITE_AES_CM_128_HMAC_SHA1_80",
    "LiveAudio",
    "LiveStreamProcess",
    "LiveStreamSpec",
    "LiveVideo",
    "build_live_argv",
    "copy_bsf_for",
]

log = logging.getLogger(__name__)

SRTP_SUITE_AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
OPUS_RTP_CLOCK_HZ = 48000  # the clock ffmpeg's RTP muxer gives every Opus stream


@dataclass(frozen=True, slots=True)
class LiveVideo:
    """The selected video stream, in ffmpeg's terms.

    ``encoder`` ``None`` means copy (the source already is H.264, or H.265 for a secure-video
    H.265 tier, at this size); otherwise it is the encoder name (``libx264``, or ``libx265`` for an
    H.265 tier) and width/height/fps/bitrate/profile/level apply.
    ``encoder_options`` set: the encoder comes from an encoding profile (``ffmpeg_profiles/``,
    a secure-video tier's ``profile``), whose rendered filter and options replace the built-in
    libx264 ones (payload type, SSRC and SRTP stay ours).
    ``srtp_key_b64`` is base64(master key || master salt); ``None`` sends plain RTP.
    ``copy_bsf``: in copy mode, the bitstream filter that puts SPS/PPS in band before every
    keyframe (a controller gets no SDP from us, so it needs them in the stream):
    ``dump_extra`` for Annex B sources (RTSP), ``h264_mp4toannexb`` for MP4 files, ``None``
    for a looped file (ffmpeg 5.1 flushes output filters at each loop and then refuses every
    packet: "A non-NULL packet sent after an EOF"); see :func:`copy_bsf_for`.
    """

    port: int
    ssrc: int
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    mtu: int = 1378
    payload_type: int = 99
    encoder: str | None = "libx264"
    profile: str = "main"
    level: str = "3.1"
    keyframe_interval_s: float = 2.0
    srtp_key_b64: str | None = None
    copy_bsf: str | None = "dump_extra=freq=keyframe"
    encoder_filter: str | None = None
    encoder_options: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True, slots=True)
class LiveAudio:
    """The selected audio stream: Opus at ``sample_rate_hz`` with ``packet_time_ms`` frames."""

    port: int
    ssrc: int
    sample_rate_hz: int = 24000
    packet_time_ms: int = 20
    bitrate_kbps: int = 24
    channels: int = 1
    payload_type: int = 110
    srtp_key_b64: str | None = None


@dataclass(frozen=True, slots=True)
class LiveStreamSpec:
    """Everything one live ffmpeg needs.

    ``audio_map`` is the ``-map`` selector of the source's audio (``"1:a:0"`` for the demo's
    tone, ``"0:a:0"`` for a camera); ``None`` or ``audio=None`` sends video only.
    """

    inputs: Sequence[InputSpec]
    address: str
    video: LiveVideo
    audio: LiveAudio | None = None
    audio_map: str | None = None
    stats_period_s: float = 0.5


def _srtp_output(address: str, port: int, mtu: int, key_b64: str | None) -> list[str]:
    # rtcpport = the RTP port: HomeKit multiplexes RTCP on the RTP port (docs/protocol.md §Live-view TLVs).
    host = f"[{address}]" if ":" in address else address
    query = f"rtcpport={port}&pkt_size={mtu}"
    if key_b64 is None:
        return ["-f", "rtp", f"rtp://{host}:{port}?{query}"]
    return ["-f", "rtp", "-srtp_out_suite", SRTP_SUITE_AES_CM_128_HMAC_SHA1_80, "-srtp_out_params", key_b64,
            f"srtp://{host}:{port}?{query}"]


def build_live_argv(spec: LiveStreamSpec, ffmpeg: str = "ffmpeg") -> list[str]:
    """The argv of one live stream: video (and audio) as two RTP outputs, progress on stdout.

    Flags checked against Debian's ffmpeg 5.1 (``ffmpeg -h muxer=rtp``, ``-h protocol=srtp``):
    the RTP muxer takes ``-payload_type`` and ``-ssrc`` (a signed int: our SSRCs have their top
    byte zeroed, so they always fit); the srtp protocol takes the suite and base64 key||salt.
    """
    v = spec.video
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
            "-progress", "pipe:1", "-stats_period", f"{spec.stats_period_s:g}"]
    for inp in spec.inputs:
        argv += inp.argv()
    argv += ["-map", "0:v:0", "-an", "-sn", "-dn"]
    if v.encoder is None:
        # In-band SPS/PPS before every keyframe: a viewer joining mid-stream needs them, and
        # a camera's RTSP stream may carry them only out of band.
        argv += ["-c:v", "copy"]
        if v.copy_bsf is not None:
            argv += ["-bsf:v", v.copy_bsf]
    elif v.encoder_options is not None:
        argv += ["-c:v", v.encoder]
        if v.encoder_filter is not None:
            argv += ["-vf", v.encoder_filter]
        for key, value in v.encoder_options:
            argv += [f"-{key}"] if value is None else [f"-{key}", value]
    elif v.encoder == "libx265":
        # A secure-video H.265 tier: every keyframe an IDR with VPS/SPS/PPS in band (a hub gets no
        # SDP from us), no B-frames, the lowest latency x265 has.
        gop = max(1, round(v.fps * v.keyframe_interval_s))
        argv += ["-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-x265-params",
                 f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:bframes=0:repeat-headers=1:log-level=error",
                 "-pix_fmt", "yuv420p", "-vf", f"scale={v.width}:{v.height}", "-r", str(v.fps),
                 "-b:v", f"{v.bitrate_kbps}k", "-maxrate", f"{v.bitrate_kbps}k", "-bufsize", f"{v.bitrate_kbps * 2}k"]
    else:
        gop = max(1, round(v.fps * v.keyframe_interval_s))
        argv += ["-c:v", v.encoder]
        if v.encoder == "libx264":
            argv += ["-preset", "veryfast", "-tune", "zerolatency"]
        argv += ["-profile:v", v.profile, "-level:v", v.level, "-pix_fmt", "yuv420p",
                 "-vf", f"scale={v.width}:{v.height}", "-r", str(v.fps), "-g", str(gop), "-bf", "0",
                 "-b:v", f"{v.bitrate_kbps}k", "-maxrate", f"{v.bitrate_kbps}k",
                 "-bufsize", f"{v.bitrate_kbps * 2}k"]
    argv += ["-payload_type", str(v.payload_type), "-ssrc", str(v.ssrc)]
    argv += _srtp_output(spec.address, v.port, v.mtu, v.srtp_key_b64)
    a = spec.audio
    if a is not None and spec.audio_map is not None:
        # aresample=async=1 fills gaps and drops overlaps in the source's audio timestamps (an
        # RTSP camera's can jump back near the start), so every Opus packet follows the last by
        # exactly its duration: a controller plays RTP time as it comes.
        argv += ["-map", spec.audio_map, "-vn", "-sn", "-dn", "-af", "aresample=async=1",
                 "-c:a", "libopus", "-application", "lowdelay", "-frame_duration", str(a.packet_time_ms),
                 "-ar", str(a.sample_rate_hz), "-ac", str(a.channels), "-b:a", f"{a.bitrate_kbps}k",
                 "-vbr", "on"]
        argv += _opus_output(spec.address, a)
    return argv


def _opus_output(address: str, a: LiveAudio) -> list[str]:
    """The Opus output: an RTP muxer behind a one-slave ``tee``, so that RTP timestamps count
    samples at the selected rate while ffmpeg still sees the stream run in real time.

    ffmpeg's RTP muxer always clocks Opus at 48 kHz (RFC 7587: 960 per 20 ms); HomeKit clocks it
    at the selected rate (320 per 20 ms at 16 kHz) and plays 960 as choppy audio (see
    docs/streaming.md). The encoder's timestamps already count samples at the selected rate
    (its time base is 1/sample rate), so the slave's ``setts`` relabels them as 1/48000 without
    changing a value, and the muxer writes them as they are. It has to happen inside the tee:
    ffmpeg schedules its outputs by the timestamps it hands each muxer, so an output whose
    timestamps run slower than real time (a ``setts`` on the output itself) holds the whole
    process, video included, to that slower rate. The tee is handed real-time timestamps.
    """
    host = f"[{address}]" if ":" in address else address
    # Slave options are ':'-separated key=value pairs; base64 keys and these values hold no ':'.
    options = ["f=rtp", f"payload_type={a.payload_type}", f"ssrc={a.ssrc}",
               f"bsfs/a=setts=time_base=1/{OPUS_RTP_CLOCK_HZ}"]
    scheme = "rtp"
    if a.srtp_key_b64 is not None:
        options += [f"srtp_out_suite={SRTP_SUITE_AES_CM_128_HMAC_SHA1_80}", f"srtp_out_params={a.srtp_key_b64}"]
        scheme = "srtp"
    # Opus packets are small: an audio MTU of 188 bytes is what HomeKit cameras use.
    return ["-f", "tee", f"[{':'.join(options)}]{scheme}://{host}:{a.port}?rtcpport={a.port}&pkt_size=188"]


def copy_bsf_for(source: Source, *, hevc: bool = False) -> str | None:
    """The copy-mode bitstream filter for a source (see :class:`LiveVideo`); ``hevc``: the source
    sends H.265 (a secure-video H.265 tier)."""
    if source.kind is SourceKind.FILE:
        return None if source.loop else ("hevc_mp4toannexb" if hevc else "h264_mp4toannexb")
    return "dump_extra=freq=keyframe"


class LiveStreamProcess:
    """Runs one live ffmpeg until it exits, stalls or is stopped; always reaps it.

    A thin layer over :class:`~.runner.FfmpegRun`: the consumer parses ``-progress`` blocks
    and counts progress when the frame counter moves. ``await run()`` returns the reason the
    run ended, in words ("connection refused", "stalled: no frames for 5 s", or the reason
    given to ``request_stop``). ``request_stop(reason)`` ends it from outside (the controller
    said stop, its HAP session closed, it went silent); cancelling the task that awaits
    ``run()`` also stops and reaps ffmpeg before the cancellation goes on.
    """

    def __init__(self, argv: Sequence[str], *, name: str = "live", startup_timeout_s: float = 15.0,
                 stall_timeout_s: float = 5.0, stop_timeout_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.argv = tuple(argv)
        self.name = name
        self.frames = 0
        self._progress_key: tuple[str, str] | None = None
        self._run = FfmpegRun(
            self.argv, name=name, consume=self._read_progress, startup_timeout_s=startup_timeout_s,
            stall_timeout_s=stall_timeout_s, startup_message="stalled: no frames within {s} s",
            stall_message="stalled: no frames for {s} s", stop_timeout_s=stop_timeout_s,
            on_stderr=lambda line: log.debug("%s: ffmpeg: %s", name, line), clock=clock,
        )
        self.first_frame = self._run.first_progress

    @property
    def pid(self) -> int | None:
        return self._run.pid

    @property
    def returncode(self) -> int | None:
        return self._run.returncode

    @property
    def stderr_tail(self) -> tuple[str, ...]:
        """ffmpeg's last stderr lines, masked."""
        return self._run.stderr.snapshot()

    def request_stop(self, reason: str = "stopped") -> None:
        self._run.request_stop(reason)

    async def run(self) -> str:
        result = await self._run.run()
        return result.reason

    async def _read_progress(self, stdout: asyncio.StreamReader, run: FfmpegRun) -> str | None:
        """Parse ``-progress`` blocks (``key=value`` lines); any other line (the SDP the RTP
        muxer prints) is ignored. Progress counts when the frame count or output time moves."""
        block: dict[str, str] = {}
        while line := await stdout.readline():
            key, sep, value = line.decode("utf-8", "replace").strip().partition("=")
            if not sep:
                continue
            block[key] = value
            if key != "progress":
                continue
            marker = (block.get("frame", ""), block.get("out_time_us", ""))
            if marker != self._progress_key and block.get("frame", "0") not in ("", "0"):
                self._progress_key = marker
                with contextlib.suppress(ValueError):
                    self.frames = int(block.get("frame", "0"))
                run.progress()
            block = {}
        return None
