"""Camera media pipeline: ffmpeg profiles and supervision, fMP4 reader, prebuffer.

Knows nothing of HAP or HDS (ARCHITECTURE.md). The camera layer uses :class:`MediaPipeline`
(one per camera) and the data types re-exported here; the sans-IO cores (:class:`Fmp4Reader`,
:class:`Prebuffer`, :class:`KeyframeMonitor`) are usable on their own.
"""

from .command import MOVFLAGS, AudioMode, FfmpegCommand, build_command
from .fmp4 import (
    AudioTrack,
    Fmp4Error,
    Fmp4Event,
    Fmp4Reader,
    Fragment,
    InitSegment,
    TrackFragment,
    TrackInfo,
    VideoTrack,
)
from .keyframes import GopVerdict, KeyframeMonitor, StreamMeasurement
from .live import LiveSubscription, SubscriptionClosed
from .live_stream import LiveAudio, LiveStreamProcess, LiveStreamSpec, LiveVideo, build_live_argv, copy_bsf_for
from .prebuffer import (
    Prebuffer,
    PrebufferNotReady,
    PrebufferSnapshot,
    StoredFragment,
    Subscription,
    SubscriptionEnd,
)
from .probe import SourceProbe, probe_from_init, probe_source
from .profiles import BUILTIN_PROFILE_DIR, Profile, ProfileError, load_profile, load_profiles, profile_dirs
from .settings import H264Level, H264Profile, RecordingSettings
from .sources import InputSpec, Source, SourceKind, parse_source
from .supervisor import MediaPipeline, PipelineConfig, PipelineState, PipelineStatus, ReconfigureResult

__all__ = [
    "BUILTIN_PROFILE_DIR",
    "MOVFLAGS",
    "AudioMode",
    "AudioTrack",
    "FfmpegCommand",
    "Fmp4Error",
    "Fmp4Event",
    "Fmp4Reader",
    "Fragment",
    "GopVerdict",
    "H264Level",
    "H264Profile",
    "InitSegment",
    "InputSpec",
    "KeyframeMonitor",
    "LiveAudio",
    "LiveStreamProcess",
    "LiveStreamSpec",
    "LiveSubscription",
    "LiveVideo",
    "MediaPipeline",
    "PipelineConfig",
    "PipelineState",
    "PipelineStatus",
    "Prebuffer",
    "PrebufferNotReady",
    "PrebufferSnapshot",
    "Profile",
    "ProfileError",
    "ReconfigureResult",
    "RecordingSettings",
    "Source",
    "SourceKind",
    "SourceProbe",
    "StoredFragment",
    "StreamMeasurement",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionEnd",
    "TrackFragment",
    "TrackInfo",
    "VideoTrack",
    "build_command",
    "build_live_argv",
    "copy_bsf_for",
    "load_profile",
    "load_profiles",
    "parse_source",
    "probe_from_init",
    "probe_source",
    "profile_dirs",
]
