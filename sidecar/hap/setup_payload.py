"""What a user scans or types to pair: the setup URI (X-HM://) for QR codes and the mDNS setup hash."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["setup_hash", "setup_uri"]

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FLAG_IP = 2


def setup_uri(setup_code: str, setup_id: str, category: int, flags: int = FLAG_IP) -> str:
    """Encode version 0, category, transport flags and the 27-bit code as 9 base-36 digits."""
    code = int(setup_code.replace("-", ""))
    payload = (category & 0xFF) << 31 | (flags & 0xF) << 27 | (code & 0x7FFFFFF)
    digits = []
    for _ in range(9):
        payload, rem = divmod(payload, 36)
        digits.append(_BASE36[rem])
    return "X-HM://" + "".join(reversed(digits)) + setup_id


def setup_hash(setup_id: str, device_id: str) -> str:
    """The ``sh`` TXT value: lets iOS match a scanned QR code to an advertised accessory."""
    digest = hashlib.sha512((setup_id + device_id).encode()).digest()
    return base64.b64encode(digest[:4]).decode()
