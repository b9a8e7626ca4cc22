"""How the HAP server core tells its adapter that something must happen outside a request.

The core is sans-IO: it cannot write a socket, a file or an mDNS record itself. The adapter
(``server.py``) fills in these hooks; the application may set ``on_pairing`` (through
``AccessoryServer``) to hear of pairings added, removed or refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .connection import Connection
from .notices import PairingNotice

__all__ = ["Callbacks"]


@dataclass
class Callbacks:
    """The adapter's hooks, all no-ops until it sets them."""

    on_output: Callable[[Connection], None] = lambda conn: None  # write/close/re-arm timers
    on_state_dirty: Callable[[], None] = lambda: None  # persist the state file
    on_advertise: Callable[[], None] = lambda: None  # TXT record changed
    on_identify: Callable[[], None] = lambda: None
    on_factory_reset: Callable[[], None] = lambda: None
    on_pairing: Callable[[PairingNotice], None] = lambda notice: None  # added/removed/failed proofs
    has_resource: bool = False
