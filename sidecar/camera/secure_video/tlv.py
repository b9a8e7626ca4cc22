"""TLV codecs of the secure-video model's characteristics (docs/secure-video.md §TLV layouts).

Frozen values with ``encode()`` and ``parse_*`` functions, both directions for every layout, so
the accessory and the hub simulator share one definition. Parsers take untrusted bytes and raise
only :class:`~sidecar.hap.HapError` (``INVALID_VALUE``): a bad TLV is a HAP error, never a crash.
Lists are items of one type separated by empty type-0 delimiters, as everywhere in HAP.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ... import tlv8
from ...tlv8 import TLVError, uint_le
from ..tlv_fields import invalid as _invalid
from ..tlv_fields import struct as _struct
from ..tlv_fields import uint as _uint

__all__ = [
    "AudioTier",
    "AudioTiers",
    "CameraCapabilities",
    "ControlCommand",
    "ControlStatus",
    "Polygon",
    "Quality",
    "Sensor",
    "SensorStream",
    "SolicitOfferResponse",
    "StreamingControl",
    "StreamingControlResponse",
    "VideoTier",
    "VideoTiers",
    "WebRTCStatus",
    "Zone",
    "Zones",
    "encode_contributing_sensors",
    "parse_audio_tiers",
    "parse_capabilities",
    "parse_contributing_sensors",
    "parse_control_response",
    "parse_solicit_offer",
    "parse_solicit_offer_response",
    "parse_streaming_control",
    "parse_video_tiers",
    "parse_zones",
]

#: The Version characteristic of Camera Capabilities (0x8010) that marks the model.
MODEL_VERSION = "17.99"
#: SupportedRTPConfiguration: one crypto suite, AES_CM_128_HMAC_SHA1_80.
SUPPORTED_RTP = bytes.fromhex("020100")
CODEC_H264 = 1
CODEC_H265 = 2
CODEC_OPUS = 3
#: Audio sample-rate enumeration of the audio tiers (1 = 16 kHz ... 4 = 48 kHz).
SAMPLE_RATES = {1: 16000, 2: 24000, 3: 32000, 4: 48000}
UUID_LENGTH = 16


class Quality(enum.IntEnum):
    HIGHEST = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4


class ControlCommand(enum.IntEnum):
    END = 1
    START = 2


class ControlStatus(enum.IntEnum):
    OK = 0
    UNKNOWN = 1
    NO_SUCH_STREAM = 2
    BUSY = 3
    ERROR = 4


class WebRTCStatus(enum.IntEnum):
    OK = 0
    PRIVACY = 1
    ERROR = 2


def _items(raw: bytes, what: str) -> list[tuple[int, bytes]]:
    try:
        return tlv8.decode(raw)
    except TLVError as exc:
        raise _invalid(f"{what}: {exc}") from None


def _groups(raw: bytes, list_type: int, what: str) -> list[bytes]:
    """The values of the ``list_type`` items of a list (delimiters and other types skipped)."""
    return [value for t, value in _items(raw, what) if t == list_type]


def _uuid(d: Mapping[int, bytes], key: int, what: str) -> bytes:
    value = d.get(key, b"")
    if len(value) != UUID_LENGTH:
        raise _invalid(f"{what} must be {UUID_LENGTH} bytes, got {len(value)}")
    return value


def _list(list_type: int, values: Sequence[bytes]) -> bytes:
    return tlv8.encode_list(list_type, values)


# -- CameraCapabilities (0x8011) ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SensorStream:
    """One video stream a sensor delivers: {1 UUID, 2 quality, 3 w, 4 h, 5 fps, 6 avg, 7 peak kbps}."""

    stream_id: bytes
    quality: int
    width: int
    height: int
    fps: int
    avg_kbps: int
    peak_kbps: int

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.stream_id), (2, self.quality), (3, uint_le(self.width, 2)),
                            (4, uint_le(self.height, 2)), (5, self.fps), (6, uint_le(self.avg_kbps, 4)),
                            (7, uint_le(self.peak_kbps, 4))])


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor: {1 {1 w, 2 h}, 2 sensor UUID, 3 type, 4 intent, 5 list of streams}."""

    width: int
    height: int
    sensor_id: bytes
    sensor_type: int = 1  # primary
    intent: int = 1  # main
    streams: tuple[SensorStream, ...] = ()

    def encode(self) -> bytes:
        size = tlv8.encode([(1, uint_le(self.width, 2)), (2, uint_le(self.height, 2))])
        out = tlv8.encode([(1, size), (2, self.sensor_id), (3, self.sensor_type), (4, self.intent)])
        if self.streams:
            out += _list(5, [s.encode() for s in self.streams])
        return out


@dataclass(frozen=True, slots=True)
class CameraCapabilities:
    """CameraCapabilities: {1 version, 2 {1 list of sensors}}."""

    sensors: tuple[Sensor, ...]
    version: int = 1

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.version), (2, _list(1, [s.encode() for s in self.sensors]))])


def _parse_stream(raw: bytes) -> SensorStream:
    d = _struct(raw, "sensor stream")
    return SensorStream(_uuid(d, 1, "stream id"), _uint(d, 2, "quality", 1), _uint(d, 3, "width", 2),
                        _uint(d, 4, "height", 2), _uint(d, 5, "fps", 1), _uint(d, 6, "average kbps", 4),
                        _uint(d, 7, "peak kbps", 4))


def _parse_sensor(raw: bytes) -> Sensor:
    d = _struct(raw, "sensor")
    size = _struct(d.get(1, b""), "sensor size")
    streams = tuple(_parse_stream(v) for v in _groups(raw, 5, "sensor streams"))
    return Sensor(_uint(size, 1, "sensor width", 2), _uint(size, 2, "sensor height", 2),
                  _uuid(d, 2, "sensor id"), _uint(d, 3, "sensor type", 1), _uint(d, 4, "intent", 1), streams)


def parse_capabilities(raw: bytes) -> CameraCapabilities:
    d = _struct(raw, "CameraCapabilities")
    version = _uint(d, 1, "version", 1)
    sensors = tuple(_parse_sensor(v) for v in _groups(d.get(2, b""), 1, "sensor list"))
    return CameraCapabilities(sensors, version)


# -- SupportedVideoStreamTiers (0x8043) and SupportedAudioStreamTiers (0x8044) -------------------
@dataclass(frozen=True, slots=True)
class VideoTier:
    """{1 tier id u32, 2 quality, 3 average kbps u32, 4 w u16, 5 h u16, 6 fps u8}."""

    tier_id: int
    quality: int
    avg_kbps: int
    width: int
    height: int
    fps: int

    def encode(self) -> bytes:
        return tlv8.encode([(1, uint_le(self.tier_id, 4)), (2, self.quality), (3, uint_le(self.avg_kbps, 4)),
                            (4, uint_le(self.width, 2)), (5, uint_le(self.height, 2)), (6, self.fps)])


@dataclass(frozen=True, slots=True)
class VideoTiers:
    """{1 codec (1 H.264, 2 H.265), 2 payload type, 3 list of tiers}."""

    codec: int
    payload_type: int
    tiers: tuple[VideoTier, ...]

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.codec), (2, self.payload_type)]) + _list(3, [t.encode() for t in self.tiers])


def parse_video_tiers(raw: bytes) -> VideoTiers:
    d = _struct(raw, "SupportedVideoStreamTiers")
    tiers = []
    for value in _groups(raw, 3, "video tiers"):
        t = _struct(value, "video tier")
        tiers.append(VideoTier(_uint(t, 1, "tier id", 4), _uint(t, 2, "quality", 1), _uint(t, 3, "kbps", 4),
                               _uint(t, 4, "width", 2), _uint(t, 5, "height", 2), _uint(t, 6, "fps", 1)))
    return VideoTiers(_uint(d, 1, "codec", 1), _uint(d, 2, "payload type", 1), tuple(tiers))


@dataclass(frozen=True, slots=True)
class AudioTier:
    """{1 tier id u32, 2 bps u32, 3 sample rate enum, 4 bit depth enum, 5 ptime ms, 6 channels}."""

    tier_id: int
    bps: int
    sample_rate: int = 4  # 48 kHz
    bit_depth: int = 2  # 16 bits
    ptime_ms: int = 20
    channels: int = 1

    def encode(self) -> bytes:
        return tlv8.encode([(1, uint_le(self.tier_id, 4)), (2, uint_le(self.bps, 4)), (3, self.sample_rate),
                            (4, self.bit_depth), (5, self.ptime_ms), (6, self.channels)])


@dataclass(frozen=True, slots=True)
class AudioTiers:
    """{1 codec (3 Opus), 2 payload type, 3 list of tiers}."""

    codec: int
    payload_type: int
    tiers: tuple[AudioTier, ...]

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.codec), (2, self.payload_type)]) + _list(3, [t.encode() for t in self.tiers])


def parse_audio_tiers(raw: bytes) -> AudioTiers:
    d = _struct(raw, "SupportedAudioStreamTiers")
    tiers = []
    for value in _groups(raw, 3, "audio tiers"):
        t = _struct(value, "audio tier")
        tiers.append(AudioTier(_uint(t, 1, "tier id", 4), _uint(t, 2, "bps", 4), _uint(t, 3, "sample rate", 1),
                               _uint(t, 4, "bit depth", 1), _uint(t, 5, "ptime", 1), _uint(t, 6, "channels", 1)))
    return AudioTiers(_uint(d, 1, "codec", 1), _uint(d, 2, "payload type", 1), tuple(tiers))


# -- CameraZones (0x8022) -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Polygon:
    """{1 polygon UUID, 3 points as packed little-endian u16 x,y pairs}."""

    polygon_id: bytes
    points: tuple[tuple[int, int], ...]

    def encode(self) -> bytes:
        packed = b"".join(struct.pack("<HH", x, y) for x, y in self.points)
        return tlv8.encode([(1, self.polygon_id), (3, packed)])


@dataclass(frozen=True, slots=True)
class Zone:
    """{1 method (1 normal: include, 2 inverted: exclude), 3 list of polygons}."""

    method: int
    polygons: tuple[Polygon, ...]

    @property
    def excludes(self) -> bool:
        return self.method == 2

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.method)]) + _list(3, [p.encode() for p in self.polygons])


@dataclass(frozen=True, slots=True)
class Zones:
    """CameraZones: {1 version, 2 list of zones}. An empty list clears every zone."""

    zones: tuple[Zone, ...]
    version: int = 1

    def encode(self) -> bytes:
        out = tlv8.encode([(1, self.version)])
        return out + _list(2, [z.encode() for z in self.zones]) if self.zones else out


def _parse_polygon(raw: bytes) -> Polygon:
    d = _struct(raw, "polygon")
    packed = d.get(3, b"")
    if len(packed) % 4:
        raise _invalid(f"polygon points of {len(packed)} bytes, not whole x,y pairs")
    points = tuple((x, y) for x, y in struct.iter_unpack("<HH", packed))
    return Polygon(_uuid(d, 1, "polygon id"), points)


def parse_zones(raw: bytes) -> Zones:
    d = _struct(raw, "CameraZones")
    zones = []
    for value in _groups(raw, 2, "zones"):
        z = _struct(value, "zone")
        method = _uint(z, 1, "zone method", 1)
        if method not in (1, 2):
            raise _invalid(f"zone method {method}")
        zones.append(Zone(method, tuple(_parse_polygon(p) for p in _groups(value, 3, "polygons"))))
    return Zones(tuple(zones), _uint(d, 1, "version", 1))


# -- RTPStreamingControl (0x8045) ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamingControl:
    """{1 session, 2 command (2 START, 1 END), 3 video tier, 4 video SSRC, 5 audio tier, 6 audio SSRC}.

    The SSRCs here are the hub's; we send with the ones of our own SetupEndpoints answer.
    """

    session_id: bytes
    command: ControlCommand
    video_tier: int | None = None
    video_ssrc: int | None = None
    audio_tier: int | None = None
    audio_ssrc: int | None = None

    def encode(self) -> bytes:
        items: list[tuple[int, tlv8.Value]] = [(1, self.session_id), (2, int(self.command))]
        for key, value in ((3, self.video_tier), (4, self.video_ssrc), (5, self.audio_tier), (6, self.audio_ssrc)):
            if value is not None:
                items.append((key, uint_le(value, 4)))
        return tlv8.encode(items)


def parse_streaming_control(raw: bytes) -> StreamingControl:
    d = _struct(raw, "RTPStreamingControl")
    session = _uuid(d, 1, "session id")
    command = _uint(d, 2, "command", 1)
    if command not in (ControlCommand.START, ControlCommand.END):
        raise _invalid(f"command {command}")
    optional = [_uint(d, key, "tier or SSRC", 4) if key in d else None for key in (3, 4, 5, 6)]
    if command == ControlCommand.START and optional[0] is None:
        raise _invalid("START without a video tier")
    return StreamingControl(session, ControlCommand(command), *optional)


@dataclass(frozen=True, slots=True)
class StreamingControlResponse:
    session_id: bytes
    status: ControlStatus

    def encode(self) -> bytes:
        return tlv8.encode([(1, self.session_id), (2, int(self.status))])


def parse_control_response(raw: bytes) -> StreamingControlResponse:
    d = _struct(raw, "RTPStreamingControl response")
    status = _uint(d, 2, "status", 1)
    if status not in ControlStatus.__members__.values():
        raise _invalid(f"status {status}")
    return StreamingControlResponse(d.get(1, b""), ControlStatus(status))


# -- WebRTC SolicitOffer (0x8053) ---------------------------------------------------------------
def parse_solicit_offer(raw: bytes) -> bool:
    """SolicitOffer's write, {1 options {1 SFrame enabled}}: whether SFrame was asked for."""
    d = _struct(raw, "SolicitOffer")
    options = _struct(d.get(1, b""), "SolicitOffer options")
    return bool(_uint(options, 1, "sframe", 1)) if 1 in options else False


@dataclass(frozen=True, slots=True)
class SolicitOfferResponse:
    """{1 session UUID (ours), 2 SDP offer, 4 status}; without a WebRTC engine: no offer, status ERROR."""

    session_id: bytes
    status: WebRTCStatus
    offer: str = ""

    def encode(self) -> bytes:
        items: list[tuple[int, tlv8.Value]] = [(1, self.session_id)]
        if self.offer:
            items.append((2, self.offer))
        items.append((4, int(self.status)))
        return tlv8.encode(items)


def parse_solicit_offer_response(raw: bytes) -> SolicitOfferResponse:
    d = _struct(raw, "SolicitOffer response")
    status = _uint(d, 4, "status", 1)
    if status not in WebRTCStatus.__members__.values():
        raise _invalid(f"status {status}")
    try:
        offer = d.get(2, b"").decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("offer is not UTF-8") from None
    return SolicitOfferResponse(_uuid(d, 1, "session id"), WebRTCStatus(status), offer)


# -- ContributingSensors (0x8086) ---------------------------------------------------------------
def encode_contributing_sensors(sensor_ids: Sequence[bytes]) -> bytes:
    """A list of {1 sensor UUID}: the sensors whose motion the MotionSensor reports."""
    return _list(1, list(sensor_ids))


def parse_contributing_sensors(raw: bytes) -> tuple[bytes, ...]:
    values = _groups(raw, 1, "ContributingSensors")
    for value in values:
        if len(value) != UUID_LENGTH:
            raise _invalid(f"sensor id of {len(value)} bytes")
    return tuple(values)
