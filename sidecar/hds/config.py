"""The HDS listener's limits and timeouts, as one frozen settings object.

Defaults suit a home network; tests shrink them. :class:`~.listener.HDSServer` takes it the way
the HAP server takes ``CoreConfig``: ``HDSServer(gate, on_stream, host=..., config=HDSConfig(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .connection import HELLO_TIMEOUT
from .datasend import END_OF_STREAM_TIMEOUT
from .transport import MIN_PORT, PREPARED_SESSION_TIMEOUT

__all__ = [
    "DEFAULT_ABORT_GRACE",
    "DEFAULT_HIGH_WATER",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SEND_BUFFER",
    "DEFAULT_STALL_TIMEOUT",
    "HDSConfig",
]

DEFAULT_HIGH_WATER: Final = 1 << 20
"""Bytes queued in the asyncio transport (beyond what the kernel took) before a producer waits."""
DEFAULT_STALL_TIMEOUT: Final = 10.0
"""A hub that reads nothing for this long is gone (its own data timeout is about 8 s)."""
DEFAULT_ABORT_GRACE: Final = 5.0
"""After a close with a reason, how long a hub may take to read it before the socket is aborted."""
DEFAULT_SEND_BUFFER: Final = 128 * 1024
"""SO_SNDBUF per HDS socket (Linux doubles it): plenty for a LAN, small enough that a stall shows."""
DEFAULT_MAX_CONNECTIONS: Final = 16
"""Per camera; a home has a handful of hubs, and each unidentified socket may live 10 s."""


@dataclass(frozen=True)
class HDSConfig:
    """Limits and timeouts of one camera's HDS listener and its connections."""

    hello_timeout: float = HELLO_TIMEOUT  # identify and say hello within this
    session_timeout: float = PREPARED_SESSION_TIMEOUT  # a prepared session must be used within this
    end_of_stream_timeout: float = END_OF_STREAM_TIMEOUT  # the hub acks endOfStream within this
    high_water: int = DEFAULT_HIGH_WATER
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    abort_grace: float = DEFAULT_ABORT_GRACE
    min_port: int = MIN_PORT  # the listener's port is at least this
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    send_buffer: int = DEFAULT_SEND_BUFFER
