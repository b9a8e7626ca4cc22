"""What the fMP4 reader hands out: one :class:`InitSegment` per ffmpeg run, then :class:`Fragment` s.

Plain frozen records of what the ``moov`` and ``moof`` boxes say (tracks, codecs, sample counts,
durations, sync samples) next to the bytes exactly as ffmpeg wrote them, so they can be relayed
as they are. The reader (:mod:`.fmp4`) and the box parser (:mod:`.fmp4_boxes`) build them; the
prebuffer, the keyframe monitor and the stream policy read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .hevc import HevcConfig

__all__ = [
    "AudioTrack",
    "Fmp4Event",
    "Fragment",
    "InitSegment",
    "TrackFragment",
    "TrackInfo",
    "VideoTrack",
]


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What the ``moov`` says about one track."""

    track_id: int
    handler: str  # "vide", "soun", ...
    timescale: int
    codec: str  # sample entry four-cc, e.g. "avc1", "mp4a"
    default_sample_duration: int = 0
    default_sample_flags: int = 0


@dataclass(frozen=True, slots=True)
class VideoTrack(TrackInfo):
    """A video track: H.264 profile and level come from ``avcC``; an H.265 track has ``hevc``
    (its ``hvcC``) instead, and its H.264 fields stay 0."""

    width: int = 0
    height: int = 0
    profile_idc: int = 0
    constraint_flags: int = 0
    level_idc: int = 0
    hevc: HevcConfig | None = None

    @property
    def is_hevc(self) -> bool:
        """The track carries H.265 (sample entry ``hvc1`` or ``hev1``)."""
        return self.codec in ("hvc1", "hev1")

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``avc1.64001f`` (useful in logs and the status page)."""
        if self.codec in ("avc1", "avc3") and self.profile_idc:
            return f"{self.codec}.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"
        if self.hevc is not None:
            return self.hevc.codec_string(self.codec)
        return self.codec

    @property
    def profile_name(self) -> str:
        """``baseline``/``main``/``high`` (the names HAP uses) or ``profile_idc=N``."""
        if self.profile_idc == 66:
            return "baseline"
        return {77: "main", 100: "high"}.get(self.profile_idc, f"profile_idc={self.profile_idc}")

    @property
    def level(self) -> str:
        """The level as HAP writes it (``3.1``, ``4.0``)."""
        return f"{self.level_idc // 10}.{self.level_idc % 10}" if self.level_idc else "?"


@dataclass(frozen=True, slots=True)
class AudioTrack(TrackInfo):
    """An audio track; for AAC the object type (2 = AAC-LC) comes from ``esds``."""

    sample_rate: int = 0
    channels: int = 0
    audio_object_type: int = 0  # 2 = AAC-LC, 23 = AAC-LD, 39 = AAC-ELD


@dataclass(frozen=True, slots=True)
class InitSegment:
    """``ftyp`` + ``moov``: the HKSV ``mediaInitialization`` packet of one ffmpeg run.

    ``data`` is exactly the bytes ffmpeg wrote (nothing re-muxed), so it can be sent as is.
    """

    data: bytes
    tracks: tuple[TrackInfo, ...]

    @property
    def video(self) -> VideoTrack | None:
        """The first video track, if any."""
        return next((t for t in self.tracks if isinstance(t, VideoTrack)), None)

    @property
    def audio(self) -> AudioTrack | None:
        """The first audio track, if any."""
        return next((t for t in self.tracks if isinstance(t, AudioTrack)), None)

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def track(self, track_id: int) -> TrackInfo | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


@dataclass(frozen=True, slots=True)
class TrackFragment:
    """One track's run inside a fragment (from ``traf``: tfhd, tfdt, trun)."""

    track_id: int
    sample_count: int
    duration: int  # in the track's timescale
    base_decode_time: int  # tfdt, in the track's timescale
    first_sample_sync: bool
    #: Decode-time offsets (timescale units, from ``base_decode_time``) of every sync sample.
    sync_offsets: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Fragment:
    """A ``moof`` and its ``mdat`` (plus anything ffmpeg put between them), ready to relay.

    ``data`` is a read-only ``memoryview``: a slice of the piece fed when the fragment came whole
    in one (no copy), otherwise a view of the fragment's own buffer, which the reader filled as
    it arrived (:meth:`.Fmp4Reader.get_buffer`). Hold it only as long as needed (it keeps the
    underlying buffer alive).
    """

    data: memoryview
    sequence_number: int
    keyframe: bool  # the primary (video, else first) track starts on a sync sample
    duration_s: float  # of the primary track
    tracks: tuple[TrackFragment, ...]
    timescale: int  # of the primary track
    #: Sync-sample times (seconds, primary track decode time) inside this fragment.
    keyframe_times_s: tuple[float, ...] = field(default=())

    @property
    def size(self) -> int:
        return self.data.nbytes

    @property
    def start_s(self) -> float:
        """Decode time of the first sample of the primary track, in seconds from the run start."""
        first = self.tracks[0] if self.tracks else None
        return first.base_decode_time / self.timescale if first and self.timescale else 0.0

    def track(self, track_id: int) -> TrackFragment | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


Fmp4Event = InitSegment | Fragment
