"""HomeKit Data Stream (HDS): the transport that carries HKSV recordings to home hubs.

Sans-IO cores (``opack``, ``frames``, ``keys``, ``messages``, ``datasend``, ``transport``,
``connection``, ``config``) and the asyncio adapter (``listener``, ``hub_connection``,
``socket_transport``). Knows nothing of MP4 or of the HAP server: the camera layer passes the
HAP session in as plain values (see docs/hds.md).
"""

from .config import HDSConfig
from .connection import (
    HELLO_TIMEOUT,
    ConnectionClosed,
    HDSConnection,
    HelloReceived,
    Identified,
    StreamEnded,
    StreamOpened,
)
from .datasend import MAX_CHUNK, CloseReason, DataSendStream, OpenDecision, OpenGate, StreamRegistry, decide_open
from .errors import (
    DecodeError,
    EncodeError,
    FrameError,
    HDSError,
    ProtocolError,
    SetupError,
    StreamClosedError,
)
from .frames import MAX_PAYLOAD, Frame, FrameDecryptor, FrameEncryptor, FrameReader
from .hub_connection import RecordingStream, SnapshotStream
from .keys import SessionKeys, accessory_keys, controller_keys
from .listener import HDSServer
from .messages import HDSStatus, Header, Kind, Message
from .transport import (
    MIN_PORT,
    PREPARED_SESSION_TIMEOUT,
    SUPPORTED_CONFIGURATION,
    SUPPORTED_CONFIGURATION_B64,
    VERSION,
    HapCloseRegistrar,
    PreparedSession,
    TransportManager,
    build_setup_read_value,
    build_setup_response,
    parse_setup_write,
)

__all__ = [
    "HELLO_TIMEOUT",
    "MAX_CHUNK",
    "MAX_PAYLOAD",
    "MIN_PORT",
    "PREPARED_SESSION_TIMEOUT",
    "SUPPORTED_CONFIGURATION",
    "SUPPORTED_CONFIGURATION_B64",
    "VERSION",
    "CloseReason",
    "ConnectionClosed",
    "DataSendStream",
    "DecodeError",
    "EncodeError",
    "Frame",
    "FrameDecryptor",
    "FrameEncryptor",
    "FrameError",
    "FrameReader",
    "HDSConfig",
    "HDSConnection",
    "HDSError",
    "HDSServer",
    "HDSStatus",
    "HapCloseRegistrar",
    "Header",
    "HelloReceived",
    "Identified",
    "Kind",
    "Message",
    "OpenDecision",
    "OpenGate",
    "PreparedSession",
    "ProtocolError",
    "RecordingStream",
    "SessionKeys",
    "SetupError",
    "SnapshotStream",
    "StreamClosedError",
    "StreamEnded",
    "StreamOpened",
    "StreamRegistry",
    "TransportManager",
    "accessory_keys",
    "build_setup_read_value",
    "build_setup_response",
    "controller_keys",
    "decide_open",
    "parse_setup_write",
]
