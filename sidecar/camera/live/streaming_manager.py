"""Live view's sessions, decided without I/O: :class:`StreamingManager`.

It holds a camera's live sessions keyed by session id and decides every answer to the
controller (accept, busy, refuse, start, stop, reconfigure) without touching a socket, a clock
or a process; :class:`~sidecar.camera.live.streaming.LiveStreaming` carries the answers out.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ... import tlv8
from ...hap import HapError, HapStatus
from .tlv import (
    DEFAULT_MTU,
    KEY_LENGTH,
    SALT_LENGTH,
    SELECTED_IDLE,
    SETUP_IDLE,
    SUITE_AES_CM_128_HMAC_SHA1_80,
    AudioSelection,
    Command,
    SelectedCommand,
    SetupRequest,
    SetupResponse,
    SetupStatus,
    SrtpParams,
    StreamingStatus,
    VideoSelection,
    merge_video,
    parse_selected,
    parse_setup_request,
)

__all__ = [
    "H264_CODECS",
    "HEVC_CODECS",
    "Action",
    "LiveSession",
    "Reconfigure",
    "SessionState",
    "Start",
    "Stop",
    "StreamingManager",
    "new_ssrc",
    "source_fits",
]


def _invalid(message: str) -> HapError:
    return HapError(HapStatus.INVALID_VALUE, message)


class SessionState(enum.Enum):
    PREPARED = "prepared"  # SetupEndpoints accepted, no start yet
    STREAMING = "streaming"


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
        # In use while any stream runs (what a controller checks before it offers live view
        # elsewhere) or while every session slot is taken.
        streaming = any(s.state is SessionState.STREAMING for s in self.sessions.values())
        full = len(self.sessions) >= self.max_sessions
        return StreamingStatus.IN_USE if streaming or full else StreamingStatus.AVAILABLE

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
        return self.select_command(parse_selected(raw), owner)

    def select_command(self, selected: SelectedCommand, owner: int) -> Action:
        """A decoded selection (the secure-video model's tier start builds one): as :meth:`select`."""
        if not self.enabled:
            raise HapError(HapStatus.NOT_ALLOWED_IN_CURRENT_STATE, "streaming is off")
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


#: What the probe calls an H.264 and an H.265 camera (MP4 sample entries, or the codec's name).
H264_CODECS = frozenset({"avc1", "avc3", "h264"})
HEVC_CODECS = frozenset({"hvc1", "hev1", "hevc", "h265"})


def source_fits(probe: Mapping[str, Any] | None, video: VideoSelection, *, copy_allowed: bool,
                hevc: bool = False) -> bool:
    """Copy the camera's H.264 as is when it already has the selected size.

    ``probe`` is the camera's cached probe (its codec is the MP4 sample entry: ``avc1``/``avc3``
    for H.264); with ``hevc`` the stream must be H.265 instead (a secure-video H.265 tier). Only
    the size is compared: a copied stream keeps the camera's frame rate and bit rate, which the
    controller's selection cannot change (a transcoding profile can).
    """
    codec = str(probe.get("codec", "")).lower() if probe is not None else ""
    if not copy_allowed or probe is None or codec not in (HEVC_CODECS if hevc else H264_CODECS):
        return False
    return (int(probe.get("width", 0)), int(probe.get("height", 0))) == (video.width, video.height)

