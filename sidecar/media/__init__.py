"""Camera media pipeline: ffmpeg profiles and supervision, fMP4 reader, prebuffer.

Knows nothing of HAP or HDS (docs/architecture.md). The camera layer uses :class:`MediaPipeline`
(one per camera) and the data types re-exported here; the sans-IO cores (:class:`Fmp4Reader`,
:class:`Prebuffer`, :class:`KeyframeMonitor`) are usable on their own.
"""

from .command import MOVFLAGS, AudioMode, FfmpegCommand, build_command
from .fmp4 import Fmp4Reader
from .fmp4_boxes import Fmp4Error
from .hevc import HevcConfig, HevcError, parse_hvcc, sps_picture_size
from .hevc_recording import (
    HevcRecording,
    RewriteError,
    RewrittenFragment,
    init_problems,
    ntp_timestamp,
    prft_box,
    rewrite_fragment,
)
from .keyframes import GopVerdict, KeyframeMonitor, StreamMeasurement
from .live_view_process import LiveAudio, LiveStreamProcess, LiveStreamSpec, LiveVideo, build_live_argv, copy_bsf_for
from .pipeline import MediaPipeline
from .pipeline_config import PipelineConfig
from .pipeline_status import PipelineEvent, PipelineState, PipelineStatus
from .prebuffer import (
    Prebuffer,
    PrebufferNotReady,
    PrebufferSnapshot,
    StoredFragment,
    Subscription,
    SubscriptionEnd,
)
from .prebuffer_subscription import PrebufferSubscription, SubscriptionClosed
from .probe import ProbeError, SourceProbe, probe_from_init, probe_source
from .process import FfmpegNotFound, spawn, terminate_and_reap
from .profiles import BUILTIN_PROFILE_DIR, Profile, ProfileError, load_profile, load_profiles, profile_dirs
from .restart import Recovery, RestartSchedule, RunEnd
from .runner import EndKind, FfmpegRun, RunResult, argv_of, run_to_completion
from .segments import AudioTrack, Fmp4Event, Fragment, InitSegment, TrackFragment, TrackInfo, VideoTrack
from .settings import H264Level, H264Profile, RecordingSettings
from .sources import InputSpec, Source, SourceKind, parse_source
from .stderr import Cause, CauseKind, StderrTail, cause_in_words
from .stream_intake import StreamIntake
from .stream_policy import Notice, ReconfigureResult, Restart, RestartCause, StreamPolicy

__all__ = [
    "BUILTIN_PROFILE_DIR",
    "MOVFLAGS",
    "AudioMode",
    "AudioTrack",
    "Cause",
    "CauseKind",
    "EndKind",
    "FfmpegCommand",
    "FfmpegNotFound",
    "FfmpegRun",
    "Fmp4Error",
    "Fmp4Event",
    "Fmp4Reader",
    "Fragment",
    "GopVerdict",
    "H264Level",
    "H264Profile",
    "HevcConfig",
    "HevcError",
    "HevcRecording",
    "InitSegment",
    "InputSpec",
    "KeyframeMonitor",
    "LiveAudio",
    "LiveStreamProcess",
    "LiveStreamSpec",
    "LiveVideo",
    "MediaPipeline",
    "Notice",
    "PipelineConfig",
    "PipelineEvent",
    "PipelineState",
    "PipelineStatus",
    "Prebuffer",
    "PrebufferNotReady",
    "PrebufferSnapshot",
    "PrebufferSubscription",
    "ProbeError",
    "Profile",
    "ProfileError",
    "ReconfigureResult",
    "RecordingSettings",
    "Recovery",
    "Restart",
    "RestartCause",
    "RestartSchedule",
    "RewriteError",
    "RewrittenFragment",
    "RunEnd",
    "RunResult",
    "Source",
    "SourceKind",
    "SourceProbe",
    "StderrTail",
    "StoredFragment",
    "StreamIntake",
    "StreamMeasurement",
    "StreamPolicy",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionEnd",
    "TrackFragment",
    "TrackInfo",
    "VideoTrack",
    "argv_of",
    "build_command",
    "build_live_argv",
    "cause_in_words",
    "copy_bsf_for",
    "init_problems",
    "load_profile",
    "load_profiles",
    "ntp_timestamp",
    "parse_hvcc",
    "parse_source",
    "prft_box",
    "probe_from_init",
    "probe_source",
    "profile_dirs",
    "rewrite_fragment",
    "run_to_completion",
    "spawn",
    "sps_picture_size",
    "terminate_and_reap",
]
