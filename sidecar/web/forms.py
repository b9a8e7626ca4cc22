"""The status page's action forms: a strict form-body parser, CSRF tokens and the password check.

Actions (test motion, restart ffmpeg, reset pairings) change things, so they are POST only and
carry a CSRF token: an HMAC of the action with a secret made at start. Another site can make a
browser POST to us, but it cannot read our pages (same-origin policy), so it cannot know the
token; a request whose ``Origin`` names another host is refused as well. When
``web_password`` is set, each action form also asks for it (compared in constant time; it is
never logged or echoed back).
"""

from __future__ import annotations

import hmac
import secrets
from hashlib import sha256
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MAX_FORM_BYTES", "Csrf", "FormError", "origin_allowed", "parse_form", "password_ok"]

MAX_FORM_BYTES = 4096
MAX_FIELDS = 8


class FormError(ValueError):
    """The body is not a small urlencoded form."""


def parse_form(body: bytes) -> dict[str, str]:
    """``application/x-www-form-urlencoded`` → the first value of each field.

    Bounded: at most :data:`MAX_FORM_BYTES` and :data:`MAX_FIELDS` fields; anything else is a
    :class:`FormError`, never another exception.
    """
    if len(body) > MAX_FORM_BYTES:
        raise FormError("form too large")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"bad form: {type(exc).__name__}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


class Csrf:
    """Per-process tokens: ``token(scope)`` goes into the form, ``check(scope, value)`` on POST."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def token(self, scope: str) -> str:
        return hmac.new(self._secret, scope.encode(), sha256).hexdigest()[:32]

    def check(self, scope: str, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(self.token(scope).encode(), value.encode("utf-8", "replace"))


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """A browser's ``Origin`` must name the host it talks to (absent: a non-browser client)."""
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    try:
        return urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


def password_ok(expected: str | None, given: str | None) -> bool:
    if expected is None or expected == "":
        return True
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
