"""Live view: CameraRTPStreamManagement's SetupEndpoints / SelectedRTPStreamConfiguration.

Two layers, as everywhere in the sidecar (ARCHITECTURE.md):

* Sans-IO: the TLV codecs of hksv-protocol.md §11 and :class:`StreamingManager`, which holds
  a camera's sessions keyed by session id and decides every answer (accept, busy, refuse,
  start, stop, reconfigure) without touching a socket, a clock or a process.
* :class:`LiveStreaming`, the thin asyncio adapter: it binds our UDP ports, runs one
  :class:`~sidecar.media.LiveStreamProcess` per started session, ties each session to the HAP
  connection that set it up, and keeps StreamingStatus current.

How a live view goes (HAP-NodeJS semantics, what hubs and iPhones are used to):
the controller writes SetupEndpoints (its address, ports, SRTP keys) and reads it back to get
ours (status, our address of the same IP version, our ports, our keys, our SSRCs); it then
writes SelectedRTPStreamConfiguration with command start and the chosen resolution, bitrate,
MTU and audio; later reconfigure (new resolution/bitrate: ffmpeg is restarted with the same
keys and SSRCs) and end. Suspend and resume are refused (-70410) as HAP-NodeJS does.

Why our own SRTP keys: the key we encrypt with is the key we put in the read-back, so the
controller decrypts with what we told it; the controller's own key protects what *it* would
send (return audio, which we do not support).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .. import tlv8
from ..hap import HapError, HapStatus, ReadContext, WriteContext
from ..media import (
    InputSpec,
    LiveAudio,
    LiveStreamProcess,
    LiveStreamSpec,
    LiveVideo,
    Source,
    build_live_argv,
    copy_bsf_for,
)
from ..media.sources import SourceKind
from ..tlv8 import TLVError, read_uint_le, uint_le

__all__ = [
    "AudioSelection",
    "Command",
    "LiveStreaming",
    "SelectedCommand",
    "SessionState",
    "SetupRequest",
    "SetupResponse",
    "SrtpParams",
    "StreamingManager",
    "StreamingStatus",
    "VideoSelection",
    "parse_selected",
    "parse_setup_request",
    "source_fits",
]

log = logging.getLogger(__name__)

SUITE_AES_CM_128_HMAC_SHA1_80 = 0
SUITE_AES_256_CM_HMAC_SHA1_80 = 1
SUITE_NONE = 2
KEY_LENGTH = 16
SALT_LENGTH = 14
DEFAULT_MTU = {0: 1378, 1: 1228}  # IPv4, IPv6 (hksv-protocol.md §11.6)
SAMPLE_RATES = {0: 8000, 1: 16000, 2: 24000}
CODEC_H264 = 0
CODEC_OPUS = 3
#: The idle read-back values of hksv-protocol.md §11.5-11.6.
SETUP_IDLE = bytes.fromhex("020102")
SELECTED_IDLE = bytes.fromhex("0103020102")


class StreamingStatus(enum.IntEnum):
    AVAILABLE = 0
    IN_USE = 1
    UNAVAILABLE = 2


class SetupStatus(enum.IntEnum):
    SUCCESS = 0
    BUSY = 1
    ERROR = 2


class Command(enum.IntEnum):
    END = 0
    START = 1
    SUSPEND = 2
    RESUME = 3
    RECONFIGURE = 4


class SessionState(enum.Enum):
    PREPARED = "prepared"  # SetupEndpoints accepted, no start yet
    STREAMING = "streaming"


def _invalid(message: str) -> HapError:
    return HapError(HapStatus.INVALID_VALUE, message)


# -- TLV codecs ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SrtpParams:
    """One direction's SRTP parameters: suite 0 has a 16-byte key and a 14-byte salt."""

    suite: int
    key: bytes
    salt: bytes

    @property
    def key_salt_b64(self) -> str:
        """What ffmpeg's ``-srtp_out_params`` and an SDP ``a=crypto`` line take."""
        return base64.b64encode(self.key + self.salt).decode("ascii")

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.suite), (2, self.key), (3, self.salt)])


@dataclass(frozen=True, slots=True)
class SetupRequest:
    session_id: bytes
    ip_version: int  # 0 IPv4, 1 IPv6
    address: str
    video_port: int
    audio_port: int
    video_srtp: SrtpParams
    audio_srtp: SrtpParams


@dataclass(frozen=True, slots=True)
class SetupResponse:
    """The SetupEndpoints read-back (§11.5). Busy/error answers carry only id and status."""

    session_id: bytes
    status: SetupStatus
    ip_version: int = 0
    address: str = ""
    video_port: int = 0
    audio_port: int = 0
    video_srtp: SrtpParams | None = None
    audio_srtp: SrtpParams | None = None
    video_ssrc: int = 0
    audio_ssrc: int = 0

    def encode(self) -> bytes:
        items: list[tuple[int, tlv8.Value]] = [(1, self.session_id), (2, int(self.status))]
        if self.status is SetupStatus.SUCCESS and self.video_srtp is not None and self.audio_srtp is not None:
            address = tlv8.encode([(1, self.ip_version), (2, self.address), (3, uint_le(self.video_port, 2)),
                                   (4, uint_le(self.audio_port, 2))])
            items += [(3, address), (4, self.video_srtp.encode()), (5, self.audio_srtp.encode()),
                      (6, uint_le(self.video_ssrc, 4)), (7, uint_le(self.audio_ssrc, 4))]
        return tlv8.encode(items)


def _struct(raw: bytes, what: str) -> dict[int, bytes]:
    try:
        return tlv8.decode_dict(raw, allow_repeats=True)
    except TLVError as exc:
        raise _invalid(f"{what}: {exc}") from None


def _uint(d: Mapping[int, bytes], key: int, what: str, width: int) -> int:
    if key not in d:
        raise _invalid(f"{what} missing")
    try:
        return read_uint_le(d[key], width)
    except TLVError as exc:
        raise _invalid(f"{what}: {exc}") from None


def _float32(d: Mapping[int, bytes], key: int) -> float | None:
    raw = d.get(key)
    if raw is None or len(raw) != 4:
        return None
    value = float(struct.unpack("<f", raw)[0])
    return value if 0 < value < 3600 else None  # NaN, 0 (reconfigure), nonsense: use the default


def _parse_srtp(raw: bytes, what: str) -> SrtpParams:
    d = _struct(raw, what)
    suite = _uint(d, 1, f"{what} suite", 1)
    key, salt = d.get(2, b""), d.get(3, b"")
    if suite != SUITE_AES_CM_128_HMAC_SHA1_80:
        raise _invalid(f"{what}: crypto suite {suite} is not offered (only AES_CM_128_HMAC_SHA1_80)")
    if len(key) != KEY_LENGTH or len(salt) != SALT_LENGTH:
        raise _invalid(f"{what}: key/salt of {len(key)}/{len(salt)} bytes, expected 16/14")
    return SrtpParams(suite, key, salt)


def parse_setup_request(raw: bytes) -> SetupRequest:
    """Decode and validate a SetupEndpoints write (§11.4); only :class:`HapError` escapes."""
    d = _struct(raw, "SetupEndpoints")
    session_id = d.get(1, b"")
    if len(session_id) != 16:
        raise _invalid("session id must be 16 bytes")
    if 3 not in d or 4 not in d or 5 not in d:
        raise _invalid("address or SRTP parameters missing")
    addr = _struct(d[3], "controller address")
    ip_version = _uint(addr, 1, "IP version", 1)
    if ip_version not in (0, 1):
        raise _invalid(f"IP version {ip_version}")
    try:
        text = addr.get(2, b"").decode("utf-8")
        parsed = ipaddress.ip_address(text)
    except (UnicodeDecodeError, ValueError):
        raise _invalid("controller address is not an IP address") from None
    if parsed.version != (4 if ip_version == 0 else 6):
        raise _invalid(f"address {text} is not of IP version {ip_version}")
    video_port = _uint(addr, 3, "video port", 2)
    audio_port = _uint(addr, 4, "audio port", 2)
    if not video_port or not audio_port:
        raise _invalid("port 0")
    return SetupRequest(session_id, ip_version, str(parsed), video_port, audio_port,
                        _parse_srtp(d[4], "video SRTP"), _parse_srtp(d[5], "audio SRTP"))


@dataclass(frozen=True, slots=True)
class VideoSelection:
    """The selected video parameters (§11.6). ``ssrc`` is the controller's, not ours."""

    width: int
    height: int
    fps: int
    bitrate_kbps: int
    profile: int = 1  # 0 baseline, 1 main, 2 high
    level: int = 0  # 0 3.1, 1 3.2, 2 4.0
    payload_type: int = 99
    ssrc: int = 0
    rtcp_interval_s: float = 0.5
    mtu: int | None = None  # None: the IP version's default


@dataclass(frozen=True, slots=True)
class AudioSelection:
    codec: int
    sample_rate_hz: int
    packet_time_ms: int = 20
    channels: int = 1
    bitrate_kbps: int = 24
    payload_type: int = 110
    ssrc: int = 0
    rtcp_interval_s: float = 0.5
    comfort_noise: bool = False


@dataclass(frozen=True, slots=True)
class SelectedCommand:
    """A SelectedRTPStreamConfiguration write: the command and whatever parameters came along.

    ``video`` holds only the fields present (a reconfigure carries attributes and RTP
    parameters, not the codec), to be merged with :func:`merge_video`.
    """

    session_id: bytes
    command: int
    video: Mapping[str, Any] = field(default_factory=dict)
    audio: AudioSelection | None = None


def _parse_video(raw: bytes) -> dict[str, Any]:
    d = _struct(raw, "selected video")
    out: dict[str, Any] = {}
    if 1 in d and _uint(d, 1, "video codec", 1) != CODEC_H264:
        raise _invalid("only H.264 is offered")
    if 2 in d:
        params = _struct(d[2], "video codec parameters")
        if 1 in params:
            out["profile"] = _uint(params, 1, "profile", 1)
        if 2 in params:
            out["level"] = _uint(params, 2, "level", 1)
        if 3 in params and _uint(params, 3, "packetization mode", 1) != 0:
            raise _invalid("only non-interleaved packetization is offered")
    if 3 in d:
        attrs = _struct(d[3], "video attributes")
        out["width"] = _uint(attrs, 1, "width", 2)
        out["height"] = _uint(attrs, 2, "height", 2)
        out["fps"] = _uint(attrs, 3, "fps", 1)
    if 4 in d:
        rtp = _struct(d[4], "video RTP parameters")
        if 1 in rtp:
            out["payload_type"] = _uint(rtp, 1, "payload type", 1)
        if 2 in rtp:
            out["ssrc"] = _uint(rtp, 2, "SSRC", 4)
        if 3 in rtp:
            out["bitrate_kbps"] = _uint(rtp, 3, "max bit rate", 2)
        interval = _float32(rtp, 4)
        if interval is not None:
            out["rtcp_interval_s"] = interval
        if 5 in rtp:
            out["mtu"] = _uint(rtp, 5, "MTU", 2)
    return out


def _parse_audio(raw: bytes) -> AudioSelection:
    d = _struct(raw, "selected audio")
    codec = _uint(d, 1, "audio codec", 1)
    params = _struct(d.get(2, b""), "audio codec parameters")
    rate = _uint(params, 3, "sample rate", 1) if 3 in params else 1
    if rate not in SAMPLE_RATES:
        raise _invalid(f"sample rate {rate}")
    rtp = _struct(d.get(3, b""), "audio RTP parameters")
    ptime = _uint(params, 4, "packet time", 1) if 4 in params else 20
    return AudioSelection(
        codec=codec, sample_rate_hz=SAMPLE_RATES[rate],
        packet_time_ms=ptime if ptime in (20, 30, 40, 60) else 20,
        channels=_uint(params, 1, "channels", 1) if 1 in params else 1,
        bitrate_kbps=_uint(rtp, 3, "audio bit rate", 2) if 3 in rtp else 24,
        payload_type=_uint(rtp, 1, "audio payload type", 1) if 1 in rtp else 110,
        ssrc=_uint(rtp, 2, "audio SSRC", 4) if 2 in rtp else 0,
        rtcp_interval_s=_float32(rtp, 4) or 0.5,
        comfort_noise=bool(_uint(d, 4, "comfort noise", 1)) if 4 in d else False)


def parse_selected(raw: bytes) -> SelectedCommand:
    """Decode a SelectedRTPStreamConfiguration write (§11.6); only :class:`HapError` escapes."""
    d = _struct(raw, "SelectedRTPStreamConfiguration")
    if 1 not in d:
        raise _invalid("session control missing")
    control = _struct(d[1], "session control")
    session_id = control.get(1, b"")
    if len(session_id) != 16:
        raise _invalid("session id must be 16 bytes")
    command = _uint(control, 2, "command", 1)
    video = _parse_video(d[2]) if 2 in d else {}
    audio = _parse_audio(d[3]) if 3 in d else None
    return SelectedCommand(session_id, command, video, audio)


_VIDEO_LIMITS = {"width": (16, 4096), "height": (16, 4096), "fps": (1, 60), "bitrate_kbps": (16, 65535),
                 "profile": (0, 2), "level": (0, 2), "payload_type": (0, 127), "mtu": (188, 9000)}


def merge_video(base: VideoSelection | None, patch: Mapping[str, Any]) -> VideoSelection:
    """Apply the fields of a start or reconfigure to the current selection, then validate."""
    for name, (low, high) in _VIDEO_LIMITS.items():
        value = patch.get(name)
        if value is not None and not low <= value <= high:
            raise _invalid(f"{name} {value} out of range")
    if base is None:
        missing = {"width", "height", "fps", "bitrate_kbps"} - patch.keys()
        if missing:
            raise _invalid(f"start without {', '.join(sorted(missing))}")
        return VideoSelection(**patch)
    return replace(base, **patch)


# -- the sans-IO manager ----------------------------------------------------------------------------
@dataclass
class LiveSession:
    """One negotiated session: what the controller asked for and what we answered."""

    session_id: bytes
    owner: int  # the HAP session (connection) that set it up
    request: SetupRequest
    response: SetupResponse
    state: SessionState = SessionState.PREPARED
    video: VideoSelection | None = None
    audio: AudioSelection | None = None

    @property
    def mtu(self) -> int:
        if self.video is not None and self.video.mtu:
            return self.video.mtu
        return DEFAULT_MTU[self.request.ip_version]

    @property
    def label(self) -> str:
        return self.session_id.hex()[:8]


@dataclass(frozen=True, slots=True)
class Start:
    session: LiveSession


@dataclass(frozen=True, slots=True)
class Stop:
    session: LiveSession


@dataclass(frozen=True, slots=True)
class Reconfigure:
    session: LiveSession


Action = Start | Stop | Reconfigure
#: Binds our end of a session: (request) -> (our address, our video port, our audio port).
EndpointBinder = Callable[[SetupRequest], tuple[str, int, int]]


def new_ssrc(random_bytes: Callable[[int], bytes] = os.urandom) -> int:
    """4 random bytes with the top byte zeroed (HAP-NodeJS's rule; ffmpeg's ``-ssrc`` is signed)."""
    return int.from_bytes(b"\x00" + random_bytes(4)[1:], "big") or 1


class StreamingManager:
    """A camera's live sessions and every protocol decision about them, without I/O."""

    def __init__(self, *, max_sessions: int = 2, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.max_sessions = max_sessions
        self.sessions: dict[bytes, LiveSession] = {}
        self.enabled = True
        self._random = random_bytes
        self._responses: dict[int, bytes] = {}  # per HAP session: its last SetupEndpoints read-back

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> StreamingStatus:
        if not self.enabled:
            return StreamingStatus.UNAVAILABLE
        return StreamingStatus.IN_USE if len(self.sessions) >= self.max_sessions else StreamingStatus.AVAILABLE

    def status_value(self) -> bytes:
        return tlv8.item(1, int(self.status()))

    def set_enabled(self, enabled: bool) -> list[LiveSession]:
        """RTP Active and HomeKitCameraActive both 1, or not. Returns the sessions to end."""
        self.enabled = enabled
        if enabled:
            return []
        ended = list(self.sessions.values())
        self.sessions.clear()
        self._responses.clear()
        return ended

    # -- SetupEndpoints -------------------------------------------------------------------------
    def setup(self, raw: bytes, owner: int, bind: EndpointBinder) -> LiveSession | None:
        """Handle a write. Returns the new session, or ``None`` when the answer is busy."""
        if not self.enabled:
            raise HapError(HapStatus.NOT_ALLOWED_IN_CURRENT_STATE, "streaming is off")
        request = parse_setup_request(raw)
        if len(self.sessions) >= self.max_sessions or request.session_id in self.sessions:
            self._responses[owner] = SetupResponse(request.session_id, SetupStatus.BUSY).encode()
            return None
        try:
            address, video_port, audio_port = bind(request)
        except OSError as exc:
            self._responses[owner] = SetupResponse(request.session_id, SetupStatus.ERROR).encode()
            raise HapError(HapStatus.SERVICE_COMMUNICATION_FAILURE, f"cannot bind our ports: {exc}") from None
        response = SetupResponse(
            request.session_id, SetupStatus.SUCCESS, request.ip_version, address, video_port, audio_port,
            self._new_srtp(), self._new_srtp(), new_ssrc(self._random), new_ssrc(self._random))
        session = LiveSession(request.session_id, owner, request, response)
        self.sessions[request.session_id] = session
        self._responses[owner] = response.encode()
        return session

    def _new_srtp(self) -> SrtpParams:
        return SrtpParams(SUITE_AES_CM_128_HMAC_SHA1_80, self._random(KEY_LENGTH), self._random(SALT_LENGTH))

    def read_setup(self, owner: int) -> bytes:
        if not self.enabled:
            return SETUP_IDLE
        return self._responses.get(owner, SETUP_IDLE)

    # -- SelectedRTPStreamConfiguration ---------------------------------------------------------
    def select(self, raw: bytes, owner: int) -> Action:
        """Handle a write: the action for the adapter, or :class:`HapError`."""
        if not self.enabled:
            raise HapError(HapStatus.NOT_ALLOWED_IN_CURRENT_STATE, "streaming is off")
        selected = parse_selected(raw)
        session = self.sessions.get(selected.session_id)
        if session is None or session.owner != owner:
            raise _invalid("unknown session id")
        command = selected.command
        if command == Command.END:
            self.sessions.pop(session.session_id, None)
            return Stop(session)
        if command == Command.START:
            if session.state is SessionState.STREAMING:
                raise _invalid("session already streaming")
            session.video = merge_video(None, selected.video)
            session.audio = selected.audio
            session.state = SessionState.STREAMING
            return Start(session)
        if command == Command.RECONFIGURE:
            if session.state is not SessionState.STREAMING:
                raise _invalid("reconfigure before start")
            session.video = merge_video(session.video, selected.video)
            return Reconfigure(session)
        raise _invalid(f"command {command} is not supported (suspend/resume are refused)")

    def read_selected(self) -> bytes:
        return SELECTED_IDLE

    # -- ends -------------------------------------------------------------------------------------
    def remove(self, session_id: bytes) -> LiveSession | None:
        return self.sessions.pop(session_id, None)

    def owner_closed(self, owner: int) -> list[LiveSession]:
        """The HAP connection went away: its sessions end, its read-back is forgotten."""
        self._responses.pop(owner, None)
        ended = [s for s in self.sessions.values() if s.owner == owner]
        for session in ended:
            del self.sessions[session.session_id]
        return ended


def source_fits(probe: Mapping[str, Any] | None, video: VideoSelection, *, copy_allowed: bool) -> bool:
    """Copy the camera's H.264 as is when it already has the selected size.

    ``probe`` is the camera's cached probe (its codec is the MP4 sample entry: ``avc1``/``avc3``
    for H.264). Only the size is compared: a copied stream keeps the camera's frame rate and
    bit rate, which the controller's selection cannot change (a transcoding profile can).
    """
    codec = str(probe.get("codec", "")).lower() if probe is not None else ""
    if not copy_allowed or probe is None or codec not in ("avc1", "avc3", "h264"):
        return False
    return (int(probe.get("width", 0)), int(probe.get("height", 0))) == (video.width, video.height)


# -- the asyncio adapter ------------------------------------------------------------------------
class _RtcpWatch(asyncio.DatagramProtocol):
    """Our advertised port: the controller's RTCP reports arrive here and prove it is alive."""

    def __init__(self, seen: Callable[[], None]) -> None:
        self._seen = seen

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._seen()


@dataclass
class _Runner:
    session: LiveSession
    sockets: list[socket.socket]
    task: asyncio.Task[None] | None = None
    process: LiveStreamProcess | None = None
    restart: bool = False
    last_rtcp: float | None = None
    starts: int = 0


class LiveStreaming:
    """A camera's live streaming, wired onto its RTP service's characteristics.

    Attributes tests and benchmarks may tune: ``stall_timeout_s`` (no frames from ffmpeg),
    ``rtcp_timeout_s`` (no RTCP from a controller that did send some), ``prepared_timeout_s``
    (a SetupEndpoints never followed by start).
    """

    def __init__(self, *, name: str, source: Source, ffmpeg: str = "ffmpeg", max_sessions: int = 2,
                 probe: Callable[[], Mapping[str, Any] | None] = lambda: None, copy_allowed: bool = False,
                 on_status: Callable[[bytes], object] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.name = name
        self.source = source
        self.ffmpeg = ffmpeg
        self.manager = StreamingManager(max_sessions=max_sessions, random_bytes=random_bytes)
        self._probe = probe
        self._copy_allowed = copy_allowed
        self._on_status = on_status
        self._runners: dict[bytes, _Runner] = {}
        self._owner_unregister: dict[int, Callable[[], None]] = {}
        self._prepared_timers: dict[bytes, asyncio.TimerHandle] = {}
        self._pending_sockets: list[socket.socket] = []  # bound by _bind, taken by write_setup
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
        action = self.manager.select(value, ctx.session.session_id)
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
        copy = source_fits(self._probe(), video, copy_allowed=self._copy_allowed)
        live_video = LiveVideo(
            port=session.request.video_port, ssrc=response.video_ssrc, width=video.width, height=video.height,
            fps=video.fps, bitrate_kbps=video.bitrate_kbps, mtu=session.mtu, payload_type=video.payload_type,
            encoder=None if copy else "libx264", profile=("baseline", "main", "high")[video.profile],
            level=("3.1", "3.2", "4.0")[video.level], keyframe_interval_s=self.keyframe_interval_s,
            srtp_key_b64=response.video_srtp.key_salt_b64, copy_bsf=copy_bsf_for(self.source))
        audio: LiveAudio | None = None
        audio_map = self._audio_map()
        sel = session.audio
        if sel is not None and sel.codec == CODEC_OPUS and audio_map is not None:
            audio = LiveAudio(port=session.request.audio_port, ssrc=response.audio_ssrc,
                              sample_rate_hz=sel.sample_rate_hz, packet_time_ms=sel.packet_time_ms,
                              bitrate_kbps=max(8, min(sel.bitrate_kbps, 64)), channels=1,
                              payload_type=sel.payload_type, srtp_key_b64=response.audio_srtp.key_salt_b64)
        inputs: tuple[InputSpec, ...] = self.source.inputs()
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

        try:
            for sock in runner.sockets:
                transport, _ = await loop.create_datagram_endpoint(lambda: _RtcpWatch(seen), sock=sock)
                transports.append(transport)
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
            for transport in transports:
                transport.close()
            self._forget(runner, reason)

    async def _watch_rtcp(self, runner: _Runner, process: LiveStreamProcess) -> None:
        """A controller that reported once and then went silent is gone (a phone put away
        without closing HAP): end its session."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.rtcp_timeout_s / 2))
            if runner.last_rtcp is not None and loop.time() - runner.last_rtcp > self.rtcp_timeout_s:
                process.request_stop(f"no RTCP from the controller for {self.rtcp_timeout_s:.0f} s")
                return
