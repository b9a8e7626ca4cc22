"""HTTP/1.1 for HAP, parsed with h11 (sans-IO), plus HAP's own EVENT/1.0 messages.

h11 is the parser of record, but it is also most of a request's CPU (benchmarks/RESULTS.md),
and HAP has a performance budget.
So requests of the simple form controllers send are parsed by a strict fast path that defers
to h11 for anything it cannot prove simple (and the test suite checks, with hypothesis, that
whenever the fast path answers, h11 gives the same request); responses, which are simple by
construction, are formatted directly.

The byte stream changes meaning after pair-verify: bytes buffered past the M4 request are
handed back (:meth:`RequestParser.trailing`) and go through the decryptor instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import h11

__all__ = [
    "JSON_TYPE",
    "TLV_TYPE",
    "HttpError",
    "HttpRequest",
    "RequestParser",
    "encode_event",
    "format_error_and_close",
    "format_response",
    "json_body",
]

JSON_TYPE = b"application/hap+json"
TLV_TYPE = b"application/pairing+tlv8"
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 256 * 1024

_REASONS = {
    200: b"OK",
    204: b"No Content",
    207: b"Multi-Status",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    422: b"Unprocessable Entity",
    431: b"Request Header Fields Too Large",
    470: b"Connection Authorization Required",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


class HttpError(Exception):
    """The peer sent something that is not acceptable HTTP; answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        parts = self.target.split("?", 1)
        return parts[1] if len(parts) == 2 else ""


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps with options rebuilds it


def json_body(payload: Any) -> bytes:
    return _ENCODER.encode(payload).encode()


def encode_event(body: bytes) -> bytes:
    return (
        b"EVENT/1.0 200 OK\r\nContent-Type: application/hap+json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(rb"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_FAST_METHODS = frozenset((b"GET", b"PUT", b"POST"))


def _fast_parse(head: bytes) -> tuple[str, str, dict[str, str], int] | None:
    """Parse a complete request head of the simple form HAP controllers send, or return None.

    None means "not provably simple": the caller lets h11 decide. Only unambiguous input is
    accepted here (known method, HTTP/1.1, visible-ASCII target and values, one Host, at most
    one Content-Length and no Transfer-Encoding), so for everything accepted h11 would produce
    the same request; ``tests/hap/test_http_parser.py`` checks exactly that with hypothesis.
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] not in _FAST_METHODS or parts[2] != b"HTTP/1.1" \
            or _TARGET.fullmatch(parts[1]) is None:
        return None
    headers: dict[str, str] = {}
    length = -1
    hosts = 0
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            return None
        value = value.strip(b" \t")
        if value and _VALUE.fullmatch(value) is None:
            return None
        lname = name.lower()
        if lname == b"content-length":
            if length >= 0 or not value.isdigit() or len(value) > 12:
                return None
            length = int(value)
        elif lname == b"transfer-encoding":
            return None
        elif lname == b"host":
            hosts += 1
        headers[lname.decode("ascii")] = value.decode("ascii")
    if hosts != 1:
        return None
    return parts[0].decode("ascii"), parts[1].decode("ascii"), headers, max(length, 0)


# Controllers send the same few request heads over and over (one GET target, the PUT head with a
# handful of lengths, the two pair-verify POSTs), so the fast path's answers are remembered.
# Parsing is a pure function of the head's bytes; the table is small and its keys short, so a
# peer sending ever-new heads costs it nothing but the parse it would have paid anyway.
_HEAD_MEMO: dict[bytes, tuple[str, str, dict[str, str], int]] = {}
_HEAD_MEMO_ENTRIES = 64
_HEAD_MEMO_MAX_BYTES = 512


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str], int] | None:
    """:func:`_fast_parse`, remembered for short heads; each caller gets its own headers dict."""
    known = _HEAD_MEMO.get(head)
    if known is None:
        known = _fast_parse(head)
        if known is None or len(head) > _HEAD_MEMO_MAX_BYTES:
            return known
        if len(_HEAD_MEMO) >= _HEAD_MEMO_ENTRIES:
            _HEAD_MEMO.clear()
        _HEAD_MEMO[head] = known
    method, target, headers, length = known
    return method, target, dict(headers), length


def format_response(status: int, body: bytes = b"", content_type: bytes = JSON_TYPE) -> bytes:
    """An HTTP/1.1 keep-alive response (204 carries no headers and no body)."""
    if status == 204:
        return b"HTTP/1.1 204 No Content\r\n\r\n"
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status, _REASONS.get(status, b"Status"), content_type, len(body), body)


def format_error_and_close(status: int) -> bytes:
    """A last response for a request that could not be parsed; the connection closes after it."""
    body = json_body({"status": -70410})
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/hap+json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % (status, _REASONS.get(status, b"Error"), len(body))
    ) + body


class RequestParser:
    """Feed bytes, take complete requests one at a time.

    Simple requests (nearly all of them) are parsed by :func:`_fast_parse`; anything else goes
    to h11, which stays the parser of record for edge cases and errors. Each request cycle in
    h11 mode uses a fresh h11 connection, and bytes it buffered past the request come back to
    our buffer.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._h11: h11.Connection | None = None
        self._request: h11.Request | None = None
        self._body = bytearray()

    def receive(self, data: bytes) -> None:
        if not data:
            return  # h11 would read b"" as end of stream
        if self._h11 is not None:
            self._h11.receive_data(data)
        else:
            self._buf += data

    def next_request(self) -> HttpRequest | None:
        """Return the next complete request, or None if more bytes are needed.

        Raises HttpError for malformed or oversized requests, and EOFError when the peer
        closed its side.
        """
        if self._h11 is None:
            buf = self._buf
            if not buf:
                return None
            end = buf.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise HttpError(431, "request headers too large")
                return None
            parsed = _parse_head(bytes(buf[:end]))
            if parsed is not None:
                method, target, headers, length = parsed
                if length > MAX_BODY_BYTES:
                    raise HttpError(413, "request body too large")
                body_start = end + 4
                if len(buf) < body_start + length:
                    return None
                body = bytes(buf[body_start : body_start + length])
                del buf[: body_start + length]
                return HttpRequest(method, target, headers, body)
            self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
            self._h11.receive_data(bytes(buf))
            buf.clear()
        return self._next_h11()

    def _next_h11(self) -> HttpRequest | None:
        conn = self._h11
        assert conn is not None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(exc.error_status_hint or 400, str(exc)) from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return None
            if isinstance(event, h11.Request):
                length = 0
                header_bytes = len(event.target)
                for name, value in event.headers:
                    header_bytes += len(name) + len(value) + 4
                    if name == b"content-length":
                        length = int(value)
                if header_bytes > MAX_HEADER_BYTES:
                    raise HttpError(431, "request headers too large")
                if length > MAX_BODY_BYTES:
                    raise HttpError(413, "request body too large")
                self._request = event
                self._body.clear()
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > MAX_BODY_BYTES:
                    raise HttpError(413, "request body too large")
            elif isinstance(event, h11.EndOfMessage):
                request = self._request
                assert request is not None
                self._request = None
                # The next request starts in our own buffer again.
                self._buf += conn.trailing_data[0]
                self._h11 = None
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers}
                return HttpRequest(
                    method=request.method.decode("ascii", "replace"),
                    target=request.target.decode("ascii", "replace"),
                    headers=headers,
                    body=bytes(self._body),
                )
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError

    def trailing(self) -> bytes:
        """Bytes received but not yet parsed (handed to the decryptor after pair-verify)."""
        if self._h11 is not None:
            return bytes(self._h11.trailing_data[0])
        return bytes(self._buf)
