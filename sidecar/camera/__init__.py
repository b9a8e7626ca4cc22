"""HKSV semantics for one camera; the only place where hap/, hds/ and media/ meet."""

from .camera import CATEGORY_IP_CAMERA, Camera
from .events import CameraEvent, EventBus
from .modes import CameraSettings, snapshot_refusal
from .recording_config import RecordingSelection, SupportedRecording, parse_selection, supported_for_source

__all__ = [
    "CATEGORY_IP_CAMERA",
    "Camera",
    "CameraEvent",
    "CameraSettings",
    "EventBus",
    "RecordingSelection",
    "SupportedRecording",
    "parse_selection",
    "snapshot_refusal",
    "supported_for_source",
]
