"""HKSV recordings: the configuration TLVs hubs read and select, one recording's rules
(:class:`RecordingSession`, sans-IO) and its asyncio adapter (:class:`Recorder`)."""

from .configuration import (
    RecordingSelection,
    SupportedRecording,
    encode_selection,
    parse_selection,
    supported_for_source,
)
from .recorder import Recorder
from .session import RecordingSession
from .sink import RecordingSink

__all__ = [
    "Recorder",
    "RecordingSelection",
    "RecordingSession",
    "RecordingSink",
    "SupportedRecording",
    "encode_selection",
    "parse_selection",
    "supported_for_source",
]
