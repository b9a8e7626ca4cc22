"""HKSV recording configuration TLVs: what we support (0x205-0x207) and what the hub selects (0x209).

The supported side is computed from what the camera really delivers (see
:func:`supported_for_source`), so a hub can never select something the pipeline cannot honour.
The selection is parsed strictly: missing fields, bad enums and values we did not advertise
are refused with -70410 (the ADK's behaviour; HAP-NodeJS checks less), while integers shorter
than their nominal width are accepted, little-endian, as the ADK does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

from ... import tlv8
from ...hap import HapError, HapStatus
from ...tlv8 import TLVError, read_uint_le, uint_le
from ..h264 import H264Level, H264Profile

__all__ = [
    "TRIGGER_DOORBELL",
    "TRIGGER_MOTION",
    "AudioRecordingCodec",
    "H264Level",
    "H264Profile",
    "RecordingSelection",
    "SampleRate",
    "SupportedRecording",
    "VideoAttributes",
    "parse_selection",
    "selected_video_codec",
    "supported_for_source",
]

TRIGGER_MOTION = 0x01
TRIGGER_DOORBELL = 0x02
MIN_PREBUFFER_MS = 4000
FRAGMENT_MS = 4000


class AudioRecordingCodec(IntEnum):
    AAC_LC = 0
    AAC_ELD = 1


class SampleRate(IntEnum):
    KHZ_8 = 0
    KHZ_16 = 1
    KHZ_24 = 2
    KHZ_32 = 3
    KHZ_44_1 = 4
    KHZ_48 = 5

    @property
    def hz(self) -> int:
        return {0: 8000, 1: 16000, 2: 24000, 3: 32000, 4: 44100, 5: 48000}[self.value]


@dataclass(frozen=True)
class VideoAttributes:
    width: int
    height: int
    fps: int


@dataclass(frozen=True)
class SupportedRecording:
    prebuffer_ms: int = 8000
    triggers: int = TRIGGER_MOTION
    fragment_ms: int = FRAGMENT_MS
    profiles: tuple[H264Profile, ...] = (H264Profile.BASELINE, H264Profile.MAIN, H264Profile.HIGH)
    levels: tuple[H264Level, ...] = (H264Level.L3_1, H264Level.L3_2, H264Level.L4_0)
    resolutions: tuple[VideoAttributes, ...] = field(default_factory=tuple)
    audio_codec: AudioRecordingCodec = AudioRecordingCodec.AAC_LC
    audio_channels: int = 1
    audio_bitrate_mode: int = 0  # variable
    sample_rates: tuple[SampleRate, ...] = (SampleRate.KHZ_32,)
    #: Also offer H.265 (codec type 1) beside H.264 in 0x206 (``advertise_hevc``; unverified with
    #: real hubs: docs/h265.md §Advertising H.265). Off, 0x206 is byte for byte what it always was.
    hevc: bool = False

    # -- 0x205 --------------------------------------------------------------------------------
    def camera_tlv(self) -> bytes:
        container = tlv8.encode([(1, 0), (2, tlv8.item(1, uint_le(self.fragment_ms, 4)))])
        return tlv8.encode([
            (1, uint_le(self.prebuffer_ms, 4)),
            (2, uint_le(self.triggers, 8)),
            (3, container),
        ])

    # -- 0x206 --------------------------------------------------------------------------------
    def video_tlv(self) -> bytes:
        params = tlv8.encode_list(1, [int(p) for p in self.profiles]) + tlv8.encode_list(
            2, [int(level) for level in self.levels])
        attrs = tlv8.encode_list(3, [
            tlv8.encode([(1, uint_le(r.width, 2)), (2, uint_le(r.height, 2)), (3, r.fps)])
            for r in self.resolutions
        ])
        # One codec entry per codec offered, with the same parameters: no H.265 profile or level
        # values for this TLV are published, so the H.264 ones stand (docs/h265.md).
        codecs = [tlv8.encode([(1, codec), (2, params)]) + attrs for codec in self.video_codecs]
        return tlv8.encode_list(1, codecs)

    @property
    def video_codecs(self) -> tuple[int, ...]:
        """The codec types offered in 0x206: 0 H.264, and 1 H.265 when ``hevc``."""
        return (VIDEO_CODEC_H264, VIDEO_CODEC_H265) if self.hevc else (VIDEO_CODEC_H264,)

    # -- 0x207 --------------------------------------------------------------------------------
    def audio_tlv(self) -> bytes:
        params = tlv8.encode([(1, self.audio_channels), (2, self.audio_bitrate_mode)]) + tlv8.encode_list(
            3, [int(s) for s in self.sample_rates])
        return tlv8.item(1, tlv8.encode([(1, int(self.audio_codec)), (2, params)]))

    def config_hash(self) -> str:
        """Changes whenever what we advertise changes: a stored selection is then dropped."""
        return hashlib.sha256(self.camera_tlv() + b"|" + self.video_tlv() + b"|" + self.audio_tlv()).hexdigest()


VIDEO_CODEC_H264 = 0
VIDEO_CODEC_H265 = 1


# Resolutions the seed specification lists; a transcoding camera offers those up to its source size.
STANDARD_RESOLUTIONS: tuple[tuple[int, int], ...] = (
    (1920, 1080), (1600, 1200), (1280, 960), (1280, 720), (1024, 768), (640, 480), (640, 360),
    (480, 360), (480, 270), (320, 240), (320, 180),
)


def supported_for_source(
    width: int,
    height: int,
    fps: float,
    *,
    transcode: bool,
    prebuffer_ms: int = 8000,
    doorbell: bool = False,
    h264_profile: str | None = None,
    h264_level: str | None = None,
    hevc: bool = False,
) -> SupportedRecording:
    """What to advertise for a source of this size.

    Copy mode can only deliver the camera's own stream, so it advertises exactly that: its
    size and frame rate, and (when the probe knows them) its H.264 profile and the HomeKit level
    bucket its level fits (HomeKit only names 3.1, 3.2 and 4.0; anything above 3.2 is 4.0).
    Transcoding advertises the mandatory 1920x1080 and 1280x720 (hubs require them) and the
    standard sizes up to the source, at 15 and 24 or 30 fps.
    """
    native_fps = max(1, round(fps))
    if not transcode:
        resolutions: tuple[VideoAttributes, ...] = (VideoAttributes(width, height, native_fps),)
    else:
        top = 30 if native_fps >= 30 else 24
        sizes = [s for s in STANDARD_RESOLUTIONS if s[0] <= max(width, 1280) and s[1] <= max(height, 720)]
        for mandatory in ((1920, 1080), (1280, 720)):
            if mandatory not in sizes:
                sizes.insert(0, mandatory)
        resolutions = tuple(VideoAttributes(w, h, f) for w, h in sizes for f in (top, 15))
    triggers = TRIGGER_MOTION | (TRIGGER_DOORBELL if doorbell else 0)
    profiles: tuple[H264Profile, ...] = (H264Profile.BASELINE, H264Profile.MAIN, H264Profile.HIGH)
    levels: tuple[H264Level, ...] = (H264Level.L3_1, H264Level.L3_2, H264Level.L4_0)
    if not transcode:
        named, bucket = H264Profile.from_name(h264_profile), H264Level.bucket(h264_level)
        if named is not None:
            profiles = (named,)
        if bucket is not None:
            levels = (bucket,)
    return SupportedRecording(prebuffer_ms=max(prebuffer_ms, MIN_PREBUFFER_MS), triggers=triggers,
                              resolutions=resolutions, profiles=profiles, levels=levels, hevc=hevc)


@dataclass(frozen=True)
class RecordingSelection:
    """The hub's choice, validated against what we advertised."""

    prebuffer_ms: int
    triggers: int
    fragment_ms: int
    profile: H264Profile
    level: H264Level
    bitrate_kbps: int
    iframe_ms: int
    width: int
    height: int
    fps: int
    audio_codec: AudioRecordingCodec
    audio_channels: int
    audio_bitrate_mode: int
    sample_rate: SampleRate
    audio_bitrate_kbps: int
    video_codec: int = VIDEO_CODEC_H264  # 1 (H.265) only where advertised (``advertise_hevc``)


def _struct(data: bytes) -> dict[int, bytes]:
    return tlv8.decode_dict(data, allow_repeats=True)


def _need(items: dict[int, bytes], key: int, what: str) -> bytes:
    if key not in items:
        raise HapError(HapStatus.INVALID_VALUE, f"selected recording configuration lacks {what}")
    return items[key]


def _uint(items: dict[int, bytes], key: int, what: str, width: int) -> int:
    try:
        return read_uint_le(_need(items, key, what), width)
    except TLVError:
        raise HapError(HapStatus.INVALID_VALUE, f"{what} is malformed") from None


def _enum(enum: type[IntEnum], value: int, what: str) -> IntEnum:
    try:
        return enum(value)
    except ValueError:
        raise HapError(HapStatus.INVALID_VALUE, f"{what} {value} is not a known value") from None


def selected_video_codec(data: bytes) -> int | None:
    """The video codec value a hub wrote in its selection (0 H.264, 1 H.265), or ``None`` when
    it cannot be read; for the log, before any check (docs/h265.md §What is known and what is not)."""
    try:
        video = _struct(_struct(data).get(2, b""))
        return read_uint_le(video[1], 1) if 1 in video else None
    except TLVError:
        return None


def parse_selection(data: bytes, supported: SupportedRecording) -> RecordingSelection:
    """Parse 0x209 and check it against ``supported``; raises HapError(-70410) on any problem."""
    try:
        top = _struct(data)
        rec = _struct(_need(top, 1, "the recording configuration"))
        video = _struct(_need(top, 2, "the video configuration"))
        audio = _struct(_need(top, 3, "the audio configuration"))
        container = _struct(_need(rec, 3, "the media container"))
        container_params = _struct(_need(container, 2, "the container parameters"))
        vparams = _struct(_need(video, 2, "the video parameters"))
        vattrs = _struct(_need(video, 3, "the video attributes"))
        aparams = _struct(_need(audio, 2, "the audio parameters"))
    except TLVError:
        raise HapError(HapStatus.INVALID_VALUE, "selected recording configuration is not valid TLV8") from None

    prebuffer = _uint(rec, 1, "prebuffer length", 4)
    triggers = _uint(rec, 2, "event triggers", 8)
    if _uint(container, 1, "container type", 1) != 0:
        raise HapError(HapStatus.INVALID_VALUE, "only fragmented MP4 is supported")
    fragment = _uint(container_params, 1, "fragment length", 4)
    video_codec = _uint(video, 1, "video codec", 1)
    if video_codec not in supported.video_codecs:
        offered = " and H.265" if supported.hevc else ""
        raise HapError(HapStatus.INVALID_VALUE, f"video codec {video_codec} not advertised (H.264{offered} only)")
    profile = H264Profile(_enum(H264Profile, _uint(vparams, 1, "H.264 profile", 1), "H.264 profile"))
    level = H264Level(_enum(H264Level, _uint(vparams, 2, "H.264 level", 1), "H.264 level"))
    bitrate = _uint(vparams, 3, "video bitrate", 4)
    iframe = _uint(vparams, 4, "I-frame interval", 4)
    width = _uint(vattrs, 1, "width", 2)
    height = _uint(vattrs, 2, "height", 2)
    fps = _uint(vattrs, 3, "frame rate", 1)
    codec = AudioRecordingCodec(_enum(AudioRecordingCodec, _uint(audio, 1, "audio codec", 1), "audio codec"))
    channels = _uint(aparams, 1, "audio channels", 1)
    mode = _uint(aparams, 2, "audio bitrate mode", 1)
    rate = SampleRate(_enum(SampleRate, _uint(aparams, 3, "sample rate", 1), "sample rate"))
    audio_bitrate = _uint(aparams, 4, "audio bitrate", 4)

    problems = []
    if not MIN_PREBUFFER_MS <= prebuffer <= supported.prebuffer_ms:
        problems.append(f"prebuffer {prebuffer} ms outside {MIN_PREBUFFER_MS}..{supported.prebuffer_ms}")
    if triggers & ~supported.triggers:
        problems.append(f"trigger mask {triggers:#x} not advertised")
    if fragment <= 0:
        problems.append("fragment length must be positive")
    if profile not in supported.profiles or level not in supported.levels:
        problems.append("profile or level not advertised")
    if not any(r.width == width and r.height == height and fps <= r.fps for r in supported.resolutions):
        problems.append(f"{width}x{height}@{fps} not advertised")
    if bitrate <= 0 or iframe <= 0:
        problems.append("bitrate and I-frame interval must be positive")
    if codec != supported.audio_codec or channels != supported.audio_channels or mode not in (0, 1) \
            or rate not in supported.sample_rates:
        problems.append("audio configuration not advertised")
    if problems:
        raise HapError(HapStatus.INVALID_VALUE, "; ".join(problems))
    return RecordingSelection(prebuffer, triggers, fragment, profile, level, bitrate, iframe, width, height, fps,
                              codec, channels, mode, rate, audio_bitrate, video_codec)


def encode_selection(sel: RecordingSelection) -> bytes:
    """The inverse of :func:`parse_selection` (what a hub writes); used by the hub simulator."""
    rec = tlv8.encode([
        (1, uint_le(sel.prebuffer_ms, 4)), (2, uint_le(sel.triggers, 8)),
        (3, tlv8.encode([(1, 0), (2, tlv8.item(1, uint_le(sel.fragment_ms, 4)))])),
    ])
    video = tlv8.encode([
        (1, sel.video_codec),
        (2, tlv8.encode([(1, int(sel.profile)), (2, int(sel.level)), (3, uint_le(sel.bitrate_kbps, 4)),
                         (4, uint_le(sel.iframe_ms, 4))])),
        (3, tlv8.encode([(1, uint_le(sel.width, 2)), (2, uint_le(sel.height, 2)), (3, sel.fps)])),
    ])
    audio = tlv8.encode([
        (1, int(sel.audio_codec)),
        (2, tlv8.encode([(1, sel.audio_channels), (2, sel.audio_bitrate_mode), (3, int(sel.sample_rate)),
                         (4, uint_le(sel.audio_bitrate_kbps, 4))])),
    ])
    return tlv8.encode([(1, rec), (2, video), (3, audio)])
