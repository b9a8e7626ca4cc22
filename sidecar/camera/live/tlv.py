"""Live view's TLV codecs (docs/protocol.md §Live-view TLVs): what a controller writes, what we answer.

SetupEndpoints (the controller's address, ports and SRTP keys; our read-back) and
SelectedRTPStreamConfiguration (start, reconfigure, end with the chosen video and audio).
Pure functions and frozen values: every malformed write becomes :class:`HapError` -70410.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ... import tlv8
from ...tlv8 import uint_le
from ..h264 import H264Level, H264Profile
from ..tlv_fields import invalid as _invalid
from ..tlv_fields import struct as _struct
from ..tlv_fields import uint as _uint

__all__ = [
    "AudioSelection",
    "Command",
    "SelectedCommand",
    "SetupRequest",
    "SetupResponse",
    "SetupStatus",
    "SrtpParams",
    "StreamingStatus",
    "VideoSelection",
    "merge_video",
    "parse_selected",
    "parse_setup_request",
]


SUITE_AES_CM_128_HMAC_SHA1_80 = 0
SUITE_AES_256_CM_HMAC_SHA1_80 = 1
SUITE_NONE = 2
KEY_LENGTH = 16
SALT_LENGTH = 14
DEFAULT_MTU = {0: 1378, 1: 1228}  # IPv4, IPv6 (docs/protocol.md §Live-view TLVs)
SAMPLE_RATES = {0: 8000, 1: 16000, 2: 24000}
CODEC_H264 = 0
CODEC_OPUS = 3
#: The idle read-back values of docs/protocol.md §Live-view TLVs.
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
    """The SetupEndpoints read-back (docs/protocol.md §Live-view TLVs). Busy/error answers carry only id and status."""

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
    """Decode and validate a SetupEndpoints write (docs/protocol.md §Live-view TLVs); only :class:`HapError` escapes."""
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
    """The selected video parameters (docs/protocol.md §Live-view TLVs). ``ssrc`` is the controller's, not ours."""

    width: int
    height: int
    fps: int
    bitrate_kbps: int
    profile: H264Profile = H264Profile.MAIN
    level: H264Level = H264Level.L3_1
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


def _enum(kind: type[H264Profile] | type[H264Level], value: int, what: str) -> H264Profile | H264Level:
    try:
        return kind(value)
    except ValueError:
        raise _invalid(f"{what} {value} out of range") from None


def _parse_video(raw: bytes) -> dict[str, Any]:
    d = _struct(raw, "selected video")
    out: dict[str, Any] = {}
    if 1 in d and _uint(d, 1, "video codec", 1) != CODEC_H264:
        raise _invalid("only H.264 is offered")
    if 2 in d:
        params = _struct(d[2], "video codec parameters")
        if 1 in params:
            out["profile"] = _enum(H264Profile, _uint(params, 1, "profile", 1), "profile")
        if 2 in params:
            out["level"] = _enum(H264Level, _uint(params, 2, "level", 1), "level")
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
    """Decode a SelectedRTPStreamConfiguration write (docs/protocol.md §Live-view TLVs).

    Only :class:`HapError` escapes.
    """
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

