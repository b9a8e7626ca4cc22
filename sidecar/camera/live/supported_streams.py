"""What the camera advertises for live streaming (0x114-0x116), per docs/protocol.md §Live-view TLVs.

The streams themselves are served by :mod:`sidecar.camera.live.streaming`. Video: H.264 baseline,
main and high at levels 3.1-4.0, 1080p down to 320x240@15 (the Apple Watch asks for it).
Audio: Opus only: it is what Debian's ffmpeg can encode (libopus); AAC-ELD would need
libfdk_aac, which Debian does not build. SRTP: AES_CM_128_HMAC_SHA1_80 only (the one suite
ffmpeg's srtp protocol and iOS share).
"""

from __future__ import annotations

from ... import tlv8
from ...tlv8 import uint_le

__all__ = ["supported_audio_stream", "supported_rtp", "supported_video_stream"]

STREAM_RESOLUTIONS = ((1920, 1080, 30), (1280, 720, 30), (640, 360, 30), (480, 270, 30), (320, 240, 15),
                      (320, 180, 30))


def supported_video_stream(resolutions: tuple[tuple[int, int, int], ...] = STREAM_RESOLUTIONS) -> bytes:
    params = tlv8.encode_list(1, [0, 1, 2]) + tlv8.encode_list(2, [0, 1, 2]) + tlv8.item(3, 0)
    attrs = tlv8.encode_list(3, [tlv8.encode([(1, uint_le(w, 2)), (2, uint_le(h, 2)), (3, fps)])
                                 for w, h, fps in resolutions])
    return tlv8.item(1, tlv8.encode([(1, 0), (2, params)]) + attrs)


def supported_audio_stream() -> bytes:
    """Opus (codec 3), mono, variable bitrate, 16 and 24 kHz: what iOS accepts and Debian's ffmpeg encodes."""
    params = tlv8.encode([(1, 1), (2, 0)]) + tlv8.encode_list(3, [1, 2])
    return tlv8.item(1, tlv8.encode([(1, 3), (2, params)])) + tlv8.item(2, 0)


def supported_rtp() -> bytes:
    return tlv8.item(2, 0)  # AES_CM_128_HMAC_SHA1_80
