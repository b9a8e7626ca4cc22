"""In-memory fragments and init segments for the sans-IO tests (no ffmpeg needed)."""

from __future__ import annotations

from sidecar.media import AudioTrack, Fragment, InitSegment, TrackFragment, VideoTrack

VIDEO = VideoTrack(1, "vide", 90000, "avc1", 0, 0, 640, 360, 100, 0, 40)
AUDIO = AudioTrack(2, "soun", 32000, "mp4a", 0, 0, 32000, 1, 2)


def make_init(audio: bool = True, tag: bytes = b"") -> InitSegment:
    return InitSegment(b"ftyp-moov" + tag, (VIDEO, AUDIO) if audio else (VIDEO,))


def make_fragment(
    seq: int,
    *,
    start_s: float,
    duration_s: float = 4.0,
    keyframe: bool = True,
    size: int = 1000,
    fps: int = 15,
    gop_s: float | None = None,
    audio_samples: int = 125,
) -> Fragment:
    """A fragment of ``duration_s`` starting at ``start_s``, keyframes every ``gop_s``
    (default: only the first frame, if ``keyframe``)."""
    frames = round(duration_s * fps)
    gop = gop_s if gop_s is not None else duration_s
    keys = []
    t = 0.0
    while t < duration_s - 1e-9:
        if keyframe or t > 0:
            keys.append(start_s + t)
        t += gop
    video = TrackFragment(1, frames, round(duration_s * 90000), round(start_s * 90000), keyframe,
                          tuple(round((k - start_s) * 90000) for k in keys))
    audio = TrackFragment(2, audio_samples, audio_samples * 1024, round(start_s * 32000), True)
    return Fragment(
        data=memoryview(bytes(size)),
        sequence_number=seq,
        keyframe=keyframe,
        duration_s=duration_s,
        tracks=(video, audio),
        timescale=90000,
        keyframe_times_s=tuple(keys),
    )
