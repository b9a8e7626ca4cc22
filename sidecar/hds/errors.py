"""The one family of errors the HDS layer raises.

Everything a hostile or buggy hub can provoke (a bad frame, an undecodable message, a setup write
with the wrong salt) surfaces as a subclass of :class:`HDSError`, so callers need exactly one
``except`` clause to turn any of it into a protocol answer or a closed connection.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "EncodeError",
    "FrameError",
    "HDSError",
    "ProtocolError",
    "SetupError",
    "StreamClosedError",
]


class HDSError(Exception):
    """Base of every error raised by ``sidecar.hds``."""


class DecodeError(HDSError):
    """Bytes that are not a valid (or acceptably small and shallow) OPACK value."""


class EncodeError(HDSError):
    """A Python value that OPACK cannot represent (e.g. an int beyond 64 bits)."""


class FrameError(HDSError):
    """A frame that is oversize or fails authentication: the connection must close."""


class ProtocolError(HDSError):
    """A peer broke the HDS message rules (e.g. anything but hello first)."""


class SetupError(HDSError):
    """A SetupDataStreamTransport write that must be refused with HAP status -70410."""


class StreamClosedError(HDSError):
    """Data offered to a dataSend stream that has already ended or been closed."""
