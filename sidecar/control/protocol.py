"""The ``--stdio-json`` parent protocol as a sans-IO codec: bytes in, commands out; events to bytes.

A parent (Homebridge, a Node ``fork``, a Python supervisor) talks to the sidecar in JSON lines,
one envelope per line: ``{"id": "<type>", "data": {...}, "seq": <optional>}``. The envelope is
Homebridge's own child-bridge shape, so a Node parent can use the same code for both. ``seq``
is the parent's request number; every reply to that command carries it back.

Nothing here does IO. :class:`LineDecoder` is fed whatever bytes arrive (any chunking) and
returns complete, validated commands or :class:`BadLine` for anything it cannot accept; it
never raises on input, and it holds at most :data:`MAX_LINE` bytes of a line (a parent that
never sends a newline cannot grow our memory). :func:`encode` renders one event line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMMANDS",
    "MAX_LINE",
    "PROTOCOL_VERSION",
    "BadLine",
    "Command",
    "LineDecoder",
    "Seq",
    "encode",
    "parse_line",
]

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20  # a config for dozens of cameras fits many times over
MAX_SEQ_LEN = 64

Seq = int | str

# command -> the fields its data must carry: name -> (type, required)
_CAMERA: dict[str, tuple[type, bool]] = {"camera": (str, True)}
COMMANDS: dict[str, dict[str, tuple[type, bool]]] = {
    "config": {},
    "start": {},
    "motion": {"camera": (str, True), "active": (bool, False)},
    "doorbell": _CAMERA,
    "unpair": _CAMERA,
    "status": {"camera": (str, False)},
    "ping": {},
    "shutdown": {},
}


@dataclass(frozen=True, slots=True)
class Command:
    """A valid command. ``data`` is the envelope's object (the whole config for ``config``)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    seq: Seq | None = None

    @property
    def camera(self) -> str | None:
        value = self.data.get("camera")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line we could not accept; it becomes an ``error`` event and is otherwise ignored."""

    message: str
    seq: Seq | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _seq_of(obj: dict[str, Any]) -> tuple[Seq | None, str | None]:
    if "seq" not in obj or obj["seq"] is None:
        return None, None
    seq = obj["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int | str):
        return None, "seq must be a number or a string"
    if isinstance(seq, str) and len(seq) > MAX_SEQ_LEN:
        return None, f"seq is longer than {MAX_SEQ_LEN} characters"
    if isinstance(seq, int) and abs(seq) >= 1 << 53:
        return None, "seq is out of range"
    return seq, None


def parse_line(line: bytes) -> Command | BadLine | None:
    """One line (without its newline) -> a command, a rejection, or None for a blank line."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        return BadLine("not UTF-8")
    except RecursionError:
        return BadLine("not JSON: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        return BadLine(f"not JSON: {str(exc)[:120]}")
    if not isinstance(obj, dict):
        return BadLine('expected an object like {"id": "ping"}')
    seq, seq_error = _seq_of(obj)
    if seq_error is not None:
        return BadLine(seq_error)
    name = obj.get("id")
    if not isinstance(name, str):
        return BadLine('missing "id" (the command name)', seq)
    if name not in COMMANDS:
        shown = name if len(name) <= 40 else name[:40] + "..."
        return BadLine(f"unknown command {shown!r}; known: {', '.join(COMMANDS)}", seq)
    unknown = set(obj) - {"id", "data", "seq"}
    if unknown:
        return BadLine(f"{name}: unexpected envelope field(s) {', '.join(sorted(map(str, unknown)))[:120]}", seq)
    data = obj.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return BadLine(f'{name}: "data" must be an object', seq)
    for key, (kind, required) in COMMANDS[name].items():
        if key not in data:
            if required:
                return BadLine(f"{name}: data.{key} is required", seq)
            continue
        value = data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return BadLine(f"{name}: data.{key} must be a {'boolean' if kind is bool else 'string'}", seq)
    return Command(name, data, seq)


class LineDecoder:
    """Splits a byte stream into lines and parses each; bounded by :data:`MAX_LINE` per line."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes up to its newline

    def feed(self, data: bytes) -> list[Command | BadLine]:
        out: list[Command | BadLine] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._append(data[start:], out)
                return out
            self._append(data[start:end], out)
            if self._discarding:  # the newline ends the over-long line we were dropping
                self._discarding = False
            else:
                self._finish(out)
            start = end + 1

    def eof(self) -> list[Command | BadLine]:
        """The stream ended: a last line without a newline still counts."""
        out: list[Command | BadLine] = []
        if not self._discarding:
            self._finish(out)
        self._discarding = False
        self._buf.clear()
        return out

    def _append(self, chunk: bytes, out: list[Command | BadLine]) -> None:
        if self._discarding or not chunk:
            return
        if len(self._buf) + len(chunk) > self.max_line:
            self._buf.clear()
            self._discarding = True
            out.append(BadLine(f"line longer than {self.max_line} bytes; ignored"))
            return
        self._buf += chunk

    def _finish(self, out: list[Command | BadLine]) -> None:
        line = bytes(self._buf).rstrip(b"\r")
        self._buf.clear()
        item = parse_line(line)
        if item is not None:
            out.append(item)


def encode(event: str, data: dict[str, Any] | None = None, seq: Seq | None = None) -> bytes:
    """One event line. ASCII-only JSON, so no byte of it can be mistaken for a line break."""
    envelope: dict[str, Any] = {"id": event, "data": data or {}}
    if seq is not None:
        envelope["seq"] = seq
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode() + b"\n"
