"""What happened to an accessory's pairings, told to the layer above (sans-IO, generic).

The HAP core knows when a controller pairs, is added or removed by an admin, or fails to
prove the setup code, but it must not know what a camera or a log line for users is. It hands
these facts to ``Callbacks.on_pairing`` as :class:`PairingNotice`; the camera turns them into
its ``PairingChanged`` events and the log lines users read. Controller ids are the bytes the
controller sent; the receiver shortens them for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PairingNotice", "PairingNoticeKind"]

PairingNoticeKind = Literal["added", "removed", "setup_failed", "verify_failed"]


@dataclass(frozen=True, slots=True)
class PairingNotice:
    kind: PairingNoticeKind
    controller_id: bytes = b""
    admin: bool = False
    paired: bool = False  # whether any controller is paired after this change
    failed_attempts: int = 0  # persisted count of failed setup-code proofs (setup_failed)
