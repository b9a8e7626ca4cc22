"""The parent-process interface (``--stdio-json``): a sans-IO codec, a session, thin adapters."""

from .channel import EXIT_ERROR, EXIT_OK, EXIT_USAGE, run_stdio_json
from .events import CAMERA_STATES, wire_events
from .logs import JsonFormatter, configure_logging
from .protocol import COMMANDS, MAX_LINE, PROTOCOL_VERSION, BadLine, Command, LineDecoder, encode, parse_line
from .session import ControlSession

__all__ = [
    "CAMERA_STATES",
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "MAX_LINE",
    "PROTOCOL_VERSION",
    "BadLine",
    "Command",
    "ControlSession",
    "JsonFormatter",
    "LineDecoder",
    "configure_logging",
    "encode",
    "parse_line",
    "run_stdio_json",
    "wire_events",
]
