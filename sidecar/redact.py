"""Masking secrets in anything we print: one small leaf that every layer may import.

A camera URL carries its password in the user info (``rtsp://admin:pw@cam/...``) and some
snapshot or NVR URLs carry one in the query (``?user=admin&password=pw``, Blue Iris ``&pw=``,
a ``token=``). Those URLs reach logs, error messages, the status page, JSON, exceptions and
ffmpeg's own stderr echo. Rather than each printer remembering to mask, everything that prints
passes its text through :func:`redact`, and the log formatter installed by
:func:`install_log_redaction` does it once more for every line (tracebacks included), so a
forgotten call site still cannot leak.

Masking keeps the user name (``rtsp://admin:***@cam``): it is not a secret and "check the user
and password" is only actionable if the user can see which user was tried. Secret values can
also be registered (:func:`register_secret`): a password that ffmpeg prints decoded, outside
any URL, is then masked too.

No imports from the rest of the package: this module must stay importable from anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from urllib.parse import unquote, urlsplit

__all__ = [
    "MASK",
    "RedactingFormatter",
    "install_log_redaction",
    "mask_url",
    "redact",
    "register_secret",
    "register_url_secrets",
]

MASK = "***"

# scheme://userinfo@  -- the user info runs to the LAST "@" before the host part ends, because
# a password with an unencoded "@" (ffmpeg accepts it) must be masked whole. It may not contain
# whitespace, "/" (that would be the path) or a double quote (the end of a JSON string: a JSON log
# line must stay valid); anything else is masked. When in doubt the match runs long: masking too
# much is safe, too little is not. Passwords seen in configured URLs are also registered whole.
_URL_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)"
    r"(?P<user>[^\s/:@'\"<>]*)"
    r"(?::(?P<password>[^\s/\"]*))?"
    r"@(?=[^\s@/'\"<>),;\]]*(?:[/\s'\"<>?#),;\]]|$))"
)

# Query or form parameters that carry a secret: ?password=..., &pw=..., ;token=...
_SECRET_PARAMS = (
    "password", "passwd", "pass", "pwd", "pw", "token", "access_token", "api_key", "apikey", "key",
    "secret", "auth", "trigger_token", "signature", "sig",
)
_QUERY_SECRET = re.compile(
    r"(?P<lead>[?&;](?:" + "|".join(_SECRET_PARAMS) + r")=)(?P<value>[^&;#\s'\"<>]+)",
    re.IGNORECASE,
)

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_secret_pattern: re.Pattern[str] | None = None
_MIN_SECRET_LEN = 3  # masking "a" or "12" everywhere would shred every log line


def _userinfo(match: re.Match[str]) -> str:
    password = match.group("password")
    if password is None:
        return match.group(0)  # user name only: nothing secret
    return f"{match.group('scheme')}{match.group('user')}:{MASK}@"


def register_secret(value: str) -> None:
    """Mask ``value`` (and its URL-decoded form) wherever it appears from now on."""
    global _secrets, _secret_pattern
    candidates = {v for v in (value, unquote(value)) if len(v) >= _MIN_SECRET_LEN and v != MASK}
    if not candidates:
        return
    with _lock:
        merged = _secrets | candidates
        if merged == _secrets:
            return
        _secrets = frozenset(merged)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_url_secrets(url: str) -> None:
    """Register the password in ``url``'s user info and any secret query parameter."""
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            register_secret(password)
    for match in _URL_USERINFO.finditer(url):
        password = match.group("password")
        if password:
            register_secret(password)
    for match in _QUERY_SECRET.finditer(url):
        register_secret(match.group("value"))


def redact(text: str) -> str:
    """``text`` with every URL password, secret query parameter and registered secret masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(_userinfo, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group("lead") + MASK, text)
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return text


def mask_url(url: str) -> str:
    """A URL for display: ``rtsp://admin:***@cam:554/stream`` (query secrets masked too)."""
    return redact(url)


class RedactingFormatter(logging.Formatter):
    """Formats as its parent would, then masks: covers messages, arguments and tracebacks."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._inner.format(record))


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Wrap the formatter of every handler on ``logger`` (default: the root logger). Idempotent."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        current = handler.formatter
        if isinstance(current, RedactingFormatter):
            continue
        handler.setFormatter(RedactingFormatter(current))
