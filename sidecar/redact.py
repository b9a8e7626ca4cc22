"""Mask secrets in text we show or log: the user info of any URL (``rtsp://user:pass@host``).

Used wherever a source URL or an error that may quote one leaves the process: logs, the status
page, the JSON API. The user name is kept (it helps to spot the wrong account), the password
never is.
"""

from __future__ import annotations

import re

__all__ = ["mask_url"]

# scheme://user:password@  (the password may contain anything but '@', '/' and whitespace)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@")


def mask_url(text: str) -> str:
    """Replace the password of every ``scheme://user:password@`` in ``text`` with ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
