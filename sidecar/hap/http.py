"""HTTP/1.1 for HAP, parsed with h11 (sans-IO), plus HAP's own EVENT/1.0 messages.

h11 gives us a strict, well-tested request parser with size limits. We use it for parsing
only: each request cycle gets a fresh h11 connection (about 2 µs) fed with the bytes the
previous one had buffered, and responses are formatted here directly. Going through h11's
writer as well would cost more than all the rest of a request together (measured: ~65 µs of
~120 µs), and HAP responses are simple enough that the format below is the whole story.

The byte stream changes meaning after pair-verify: bytes buffered past the M4 request are
handed back (:meth:`RequestParser.trailing`) and go through the decryptor instead.
"""

from __future__ import annotations

import json
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


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def encode_event(body: bytes) -> bytes:
    return (
        b"EVENT/1.0 200 OK\r\nContent-Type: application/hap+json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class RequestParser:
    """One h11 server connection: feed bytes, take complete requests one at a time."""

    def __init__(self) -> None:
        self._conn = self._new()
        self._request: h11.Request | None = None
        self._body = bytearray()

    @staticmethod
    def _new() -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)

    def receive(self, data: bytes) -> None:
        if data:  # h11 reads b"" as end of stream
            self._conn.receive_data(data)

    def next_request(self) -> HttpRequest | None:
        """Return the next complete request, or None if more bytes are needed.

        Raises HttpError for malformed or oversized requests, and EOFError when the peer
        closed its side.
        """
        conn = self._conn
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
                # Start the next cycle on a fresh parser with whatever is already buffered.
                leftover = bytes(conn.trailing_data[0])
                self._conn = self._new()
                if leftover:
                    self._conn.receive_data(leftover)
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers}
                return HttpRequest(
                    method=request.method.decode("ascii", "replace"),
                    target=request.target.decode("ascii", "replace"),
                    headers=headers,
                    body=bytes(self._body),
                )
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError

    def respond(self, status: int, body: bytes = b"", content_type: bytes = JSON_TYPE) -> bytes:
        """Format a response (HTTP/1.1, keep-alive)."""
        reason = _REASONS.get(status, b"Status")
        if status == 204:
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
            status, reason, content_type, len(body), body)

    def respond_error_and_close(self, status: int) -> bytes:
        """A last response for a request h11 could not parse; the connection closes after it."""
        body = json_body({"status": -70410})
        return (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/hap+json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % (status, _REASONS.get(status, b"Error"), len(body))
        ) + body

    def trailing(self) -> bytes:
        data, _closed = self._conn.trailing_data
        return bytes(data)
