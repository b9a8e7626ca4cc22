"""HKSV semantics for one camera; the only place where hap/, hds/ and media/ meet.

:class:`CameraCore` holds the camera's rules without I/O; :class:`Camera` is its asyncio adapter.
"""

from .camera import CATEGORY_IP_CAMERA, Camera
from .core import CameraCore
from .events import CameraEvent, EventBus
from .h264 import H264Level, H264Profile
from .recording.configuration import RecordingSelection, SupportedRecording, parse_selection, supported_for_source
from .settings import CameraSettings, snapshot_refusal
from .spec import CameraSpec, TwoWayAudio
from .status import CameraStatus

__all__ = [
    "CATEGORY_IP_CAMERA",
    "Camera",
    "CameraCore",
    "CameraEvent",
    "CameraSettings",
    "CameraSpec",
    "CameraStatus",
    "EventBus",
    "H264Level",
    "H264Profile",
    "RecordingSelection",
    "SupportedRecording",
    "TwoWayAudio",
    "parse_selection",
    "snapshot_refusal",
    "supported_for_source",
]
