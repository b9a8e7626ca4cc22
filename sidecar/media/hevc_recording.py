"""Per recording, the fragments a tvOS 27 hub needs from an H.265 stream (docs/h265.md).

A hub that records H.265 reads each fragment's wall clock from a ``prft`` box placed before every
``moof`` (version 1, flags 0, reference track = the video track, NTP time = wall-clock start of the
fragment, media time = the fragment's decode time), and expects the decode times (``tfdt``) of
every recording to start at 0. ffmpeg's fragments carry the decode time of the whole run, so each
recording rewrites them: :func:`rewrite_fragment` copies the small ``moof`` (a few hundred bytes),
subtracts each track's origin from its ``tfdt`` in place (a smaller number always fits the same
field, so no size or data offset changes), and returns it with a new ``prft`` in front. The
``mdat`` is not touched: it comes back as a ``memoryview`` of the prebuffer's bytes.

:class:`HevcRecording` is the per-recording state (the origins, the wall clock of decode time 0)
and :func:`init_problems` checks an init segment before a hub sees it: sample entry ``hvc1`` (with
``hev1`` a hub stops after a few fragments), VPS, SPS and PPS in ``hvcC``, and an SPS whose picture
size is the one the sample entry announces. Sans-IO and pure: the caller passes the wall clock.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from .fmp4_boxes import Fmp4Error
from .hevc import NAL_SPS, HevcError, is_random_access_sample, sps_picture_size
from .segments import Fragment, InitSegment, VideoTrack

__all__ = [
    "NTP_UNIX_OFFSET_S",
    "PRFT_SIZE",
    "HevcRecording",
    "RewriteError",
    "RewrittenFragment",
    "first_sample",
    "init_problems",
    "ntp_timestamp",
    "prft_box",
    "rewrite_fragment",
]

#: Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET_S = 2_208_988_800
PRFT_SIZE = 32  # 8 header + 4 version/flags + 4 track + 8 NTP + 8 media time (version 1)

_HEADER = struct.Struct(">I4s")
_PRFT = struct.Struct(">I4sIIQQ")


class RewriteError(ValueError):
    """The fragment cannot be rewritten (not a ``moof`` first, a track without origin...)."""


def ntp_timestamp(unix_s: float) -> int:
    """A 64-bit NTP timestamp (32.32 fixed point, seconds since 1900) for Unix time ``unix_s``."""
    if unix_s < 0:
        raise ValueError("wall clock before 1970")
    return round((unix_s + NTP_UNIX_OFFSET_S) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def prft_box(reference_track_id: int, ntp: int, media_time: int) -> bytes:
    """A ``ProducerReferenceTimeBox`` (ISO/IEC 14496-12 8.16.5): version 1, flags 0, 32 bytes."""
    return _PRFT.pack(PRFT_SIZE, b"prft", 1 << 24, reference_track_id, ntp, media_time)


@dataclass(frozen=True, slots=True)
class RewrittenFragment:
    """A fragment as a hub gets it: ``head`` (``prft`` + the rewritten ``moof``) then ``body``
    (everything after the ``moof``, the ``mdat`` above all: a view of the original bytes)."""

    head: bytes
    body: memoryview
    media_time: int  # the reference track's rebased decode time (the prft's media_time)

    @property
    def size(self) -> int:
        return len(self.head) + self.body.nbytes

    def pieces(self) -> tuple[bytes, memoryview]:
        return self.head, self.body


def _children(buf: bytearray | memoryview, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, body_start, box_end)`` of the boxes in ``buf[start:end]`` (32-bit sizes only:
    ffmpeg writes nothing else inside a ``moof``)."""
    out = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise RewriteError("truncated box header in moof")
        size, kind = _HEADER.unpack_from(buf, pos)
        if size < 8 or pos + size > end:
            raise RewriteError(f"box {kind!r} of size {size} overruns the moof")
        out.append((kind, pos + 8, pos + size))
        pos += size
    return out


def _moof_size(data: memoryview) -> int:
    if data.nbytes < 8:
        raise RewriteError("fragment shorter than a box header")
    size, kind = _HEADER.unpack_from(data, 0)
    if kind != b"moof":
        raise RewriteError(f"fragment starts with {kind!r}, not moof")
    if size < 16 or size > data.nbytes:
        raise RewriteError(f"moof of size {size} in a fragment of {data.nbytes} bytes")
    return int(size)


def rewrite_fragment(
    data: bytes | bytearray | memoryview, *, origins: Mapping[int, int], reference_track_id: int, ntp: int
) -> RewrittenFragment:
    """``prft`` + ``moof`` with every ``tfdt`` lowered by its track's origin, and the rest as a view.

    Args:
        data: one fragment as ffmpeg wrote it, ``moof`` first (a prebuffer fragment's bytes).
        origins: per track id, the decode time that becomes 0 (the recording's first ``tfdt``).
        reference_track_id: the video track, whose rebased decode time is the ``prft``'s.
        ntp: the wall-clock start of the fragment as an NTP timestamp (:func:`ntp_timestamp`).

    Raises:
        RewriteError: not a ``moof`` first, a ``traf`` without ``tfhd``/``tfdt``, a track without
            an origin, a decode time before its origin, or no ``traf`` for the reference track.
    """
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    size = _moof_size(view)
    moof = bytearray(view[:size])
    media_time: int | None = None
    for kind, body, end in _children(moof, 8, size):
        if kind != b"traf":
            continue
        track_id: int | None = None
        for k2, b2, e2 in _children(moof, body, end):
            if k2 == b"tfhd":
                if e2 - b2 < 8:
                    raise RewriteError("tfhd truncated")
                track_id = struct.unpack_from(">I", moof, b2 + 4)[0]
            elif k2 == b"tfdt":
                if track_id is None:
                    raise RewriteError("tfdt before tfhd")
                if track_id not in origins:
                    raise RewriteError(f"no origin for track {track_id}")
                version = moof[b2]
                width = 8 if version == 1 else 4
                if e2 - b2 < 4 + width:
                    raise RewriteError("tfdt truncated")
                fmt = ">Q" if width == 8 else ">I"
                rebased = struct.unpack_from(fmt, moof, b2 + 4)[0] - origins[track_id]
                if rebased < 0:
                    raise RewriteError(f"track {track_id} decode time is before the recording's start")
                struct.pack_into(fmt, moof, b2 + 4, rebased)
                if track_id == reference_track_id:
                    media_time = rebased
    if media_time is None:
        raise RewriteError(f"no tfdt for the reference track {reference_track_id}")
    return RewrittenFragment(prft_box(reference_track_id, ntp, media_time) + moof, view[size:], media_time)


def first_sample(data: bytes | bytearray | memoryview, track: VideoTrack) -> memoryview:
    """A view of ``track``'s first sample in a fragment (``moof`` first, ``default-base-is-moof``
    or base offsets as ffmpeg writes them); no copy."""
    try:
        return _first_sample(data, track)
    except struct.error as exc:
        raise RewriteError(f"truncated box in moof: {exc}") from exc


def _first_sample(data: bytes | bytearray | memoryview, track: VideoTrack) -> memoryview:
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    size = _moof_size(view)
    for kind, body, end in _children(view, 8, size):
        if kind != b"traf":
            continue
        boxes = _children(view, body, end)
        tfhd = next(((b, e) for k, b, e in boxes if k == b"tfhd"), None)
        if tfhd is None or tfhd[1] - tfhd[0] < 8:
            raise RewriteError("traf without tfhd")
        flags, track_id = struct.unpack_from(">II", view, tfhd[0])
        flags &= 0xFFFFFF
        if track_id != track.track_id:
            continue
        p = tfhd[0] + 8
        base = 0
        default_size = 0
        if flags & 0x1:
            base = struct.unpack_from(">Q", view, p)[0]
            p += 8
        for bit in (0x2, 0x8):
            p += 4 if flags & bit else 0
        if flags & 0x10:
            default_size = struct.unpack_from(">I", view, p)[0]
        trun = next(((b, e) for k, b, e in boxes if k == b"trun"), None)
        if trun is None or trun[1] - trun[0] < 8:
            raise RewriteError("traf without trun")
        tflags, count = struct.unpack_from(">II", view, trun[0])
        tflags &= 0xFFFFFF
        p = trun[0] + 8
        offset = 0
        if tflags & 0x1:
            offset = struct.unpack_from(">i", view, p)[0]
            p += 4
        if tflags & 0x4:
            p += 4
        p += 4 if tflags & 0x100 else 0
        sample_size = default_size
        if tflags & 0x200:
            if p + 4 > trun[1]:
                raise RewriteError("trun truncated")
            sample_size = struct.unpack_from(">I", view, p)[0]
        start = base + offset
        if count == 0 or sample_size == 0 or start < size or start + sample_size > view.nbytes:
            raise RewriteError("first sample outside the fragment")
        return view[start : start + sample_size]
    raise RewriteError(f"no traf for track {track.track_id}")


def init_problems(init: InitSegment) -> list[str]:
    """What a tvOS 27 hub would refuse in this init segment (empty when it is fine)."""
    video = init.video
    if video is None:
        return ["no video track"]
    if not video.is_hevc:
        return [f"video is {video.codec}, not H.265"]
    problems = []
    if video.codec != "hvc1":
        problems.append(f"sample entry is {video.codec}, not hvc1 (ffmpeg needs -tag:v hvc1)")
    config = video.hevc
    if config is None:
        return [*problems, "no hvcC box"]
    if not config.has_parameter_sets:
        problems.append("hvcC lacks VPS, SPS or PPS")
    sps = config.nal_units(NAL_SPS)
    if sps:
        try:
            size = sps_picture_size(sps[0])
        except HevcError as exc:
            problems.append(f"SPS unreadable: {exc}")
        else:
            if size != (video.width, video.height):
                problems.append(f"SPS says {size[0]}x{size[1]}, sample entry {video.width}x{video.height}")
    return problems


class HevcRecording:
    """One recording's rewrite: origins from its first fragment, NTP from a wall-clock anchor.

    Args:
        init: the run's init segment (its video track is the ``prft`` reference track).
        wall_clock_start_s: Unix time at which the recording's first fragment began (the caller
            derives it from when the fragment arrived; the core never reads a clock).

    Each fragment's NTP time is the anchor plus its rebased video decode time, so the ``prft``
    times advance exactly with the media and never jump back.
    """

    def __init__(self, init: InitSegment, wall_clock_start_s: float) -> None:
        video = init.video
        if video is None:
            raise RewriteError("init segment without video")
        self.video = video
        self.wall_clock_start_s = wall_clock_start_s
        self.origins: dict[int, int] | None = None
        self.fragments = 0

    def rewrite(self, fragment: Fragment) -> RewrittenFragment:
        if self.origins is None:
            self.origins = {t.track_id: t.base_decode_time for t in fragment.tracks}
            if self.video.track_id not in self.origins:
                raise RewriteError("the recording's first fragment has no video")
        video = fragment.track(self.video.track_id)
        if video is None:
            raise RewriteError("fragment without video")
        seconds = (video.base_decode_time - self.origins[self.video.track_id]) / self.video.timescale
        out = rewrite_fragment(
            fragment.data, origins=self.origins, reference_track_id=self.video.track_id,
            ntp=ntp_timestamp(self.wall_clock_start_s + seconds),
        )
        self.fragments += 1
        return out

    def starts_at_random_access(self, fragment: Fragment) -> bool:
        """The fragment's first video sample is an IRAP picture (IDR, CRA or BLA)."""
        config = self.video.hevc
        if config is None:
            return False
        try:
            return is_random_access_sample(first_sample(fragment.data, self.video), config.length_size)
        except (HevcError, RewriteError, Fmp4Error):
            return False
