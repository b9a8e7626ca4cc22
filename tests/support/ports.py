"""A loopback port nothing listens on: for a server a test starts, or for a source that refuses."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 and took back (free, and closed, until reused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
