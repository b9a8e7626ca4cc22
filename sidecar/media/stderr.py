"""ffmpeg's stderr, kept short and safe, and turned into a cause in words.

Why: ffmpeg says exactly what went wrong ("Connection refused", "401 Unauthorized", "No such
file or directory"), but the line is buried among warnings and it repeats the source URL with
its password. :class:`StderrTail` keeps the last few lines, masked (``sidecar.redact``), bounded
in count and length; :func:`cause_in_words` reads them and gives the message a user can act on.
Sans-IO: fed text lines, no pipes or clocks here.
"""

from __future__ import annotations

import enum
import re
import signal
from collections import deque
from dataclasses import dataclass

from ..redact import redact

__all__ = ["Cause", "CauseKind", "StderrTail", "cause_in_words", "seconds"]

MAX_LINE = 300


class CauseKind(enum.Enum):
    """How a cause behaves over time: the restart logic treats them differently."""

    UNREACHABLE = "unreachable"  # nothing accepts a connection: it may come back at any moment
    NETWORK = "network"  # connected, then timed out or reset
    CONFIG = "config"  # wrong password, path, codec, missing binary: the user must act
    SOURCE = "source"  # the source ended, stalled or sent bad data
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Cause:
    text: str
    kind: CauseKind

    @property
    def needs_user(self) -> bool:
        return self.kind is CauseKind.CONFIG


# First match wins; ordered from the most specific. Patterns match ffmpeg 5.1-9.0 wording.
_CAUSES: tuple[tuple[re.Pattern[str], str, CauseKind], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), text, kind)
    for pattern, text, kind in (
        (r"401 Unauthori[sz]ed|authorization failed", "401 unauthorized: check the user and password",
         CauseKind.CONFIG),
        (r"403 Forbidden", "403 forbidden: the camera refused this user", CauseKind.CONFIG),
        (r"404 Not Found|Server returned 404", "404 not found: check the stream path in the URL", CauseKind.CONFIG),
        (r"No such file or directory", "no such file", CauseKind.CONFIG),
        (r"Permission denied", "permission denied", CauseKind.CONFIG),
        (r"Unknown encoder|Encoder \S* ?not found", "codec not supported: this ffmpeg lacks the encoder",
         CauseKind.CONFIG),
        (r"Unknown decoder|Decoder \S* ?not found|Decoding requested, but no decoder",
         "codec not supported: this ffmpeg cannot decode the stream", CauseKind.CONFIG),
        (r"codec not currently supported in container|not supported|Unsupported codec",
         "codec not supported", CauseKind.CONFIG),
        (r"Connection refused", "connection refused", CauseKind.UNREACHABLE),
        (r"No route to host|Network is unreachable|Host is unreachable", "host unreachable", CauseKind.UNREACHABLE),
        (r"Name or service not known|Temporary failure in name resolution|Failed to resolve hostname",
         "host name not found", CauseKind.UNREACHABLE),
        (r"Connection timed out|timed out", "connection timed out", CauseKind.NETWORK),
        (r"Connection reset by peer", "connection reset by the camera", CauseKind.NETWORK),
        (r"Invalid data found when processing input", "invalid data from the source", CauseKind.SOURCE),
    )
)


def seconds(value: float) -> str:
    """``10`` for 10.0, ``0.5`` for 0.5: durations in messages, without noise."""
    return f"{value:.0f}" if value >= 9.95 or value == int(value) else f"{value:.1f}"


def cause_in_words(lines: tuple[str, ...] | list[str], exit_code: int | None = None) -> Cause | None:
    """The cause ffmpeg's stderr names, or what its exit says; ``None`` if nothing is known.

    The newest matching line wins (the last error is the one that ended the run).
    """
    for line in reversed(lines):
        for pattern, text, kind in _CAUSES:
            if pattern.search(line):
                return Cause(text, kind)
    if exit_code is None:
        return None
    if exit_code == 0:
        return Cause("the source ended the stream", CauseKind.SOURCE)
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = str(-exit_code)
        return Cause(f"ffmpeg was killed ({name})", CauseKind.OTHER)
    last = lines[-1] if lines else ""
    detail = f": {last}" if last else ""
    return Cause(f"ffmpeg exited with code {exit_code}{detail}", CauseKind.OTHER)


class StderrTail:
    """The last ``max_lines`` lines of stderr, masked and cut to ``MAX_LINE`` characters.

    :meth:`feed` takes raw bytes as they arrive and returns the complete lines it found
    (masked), so the caller can log them; a line that never ends is cut into pieces, so memory
    stays bounded whatever ffmpeg writes.
    """

    def __init__(self, max_lines: int = 20, max_pending: int = 4096) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self._pending = b""
        self._max_pending = max_pending

    def feed(self, data: bytes) -> list[str]:
        self._pending += data
        *raw, self._pending = self._pending.split(b"\n")
        if len(self._pending) > self._max_pending:
            raw.append(self._pending)
            self._pending = b""
        return [line for chunk in raw if (line := self._add(chunk))]

    def close(self) -> list[str]:
        """End of stream: the unterminated last line, if any."""
        rest, self._pending = self._pending, b""
        line = self._add(rest)
        return [line] if line else []

    def _add(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace").replace("\r", " ").strip()
        if not text:
            return ""
        text = redact(text)[:MAX_LINE]
        self.lines.append(text)
        return text

    def snapshot(self) -> tuple[str, ...]:
        return tuple(self.lines)

    def clear(self) -> None:
        self.lines.clear()
        self._pending = b""
