"""One HDS connection as a sans-IO state machine (in the manner of h11 and aioquic).

Feed it received bytes with ``receive_data(data, now)``; take ``data_to_send(limit)`` (whole
frames, sealed on demand) and ``events()``; arm a timer for ``next_deadline()`` and call
``handle_timeout(now)`` when it fires. No sockets, no asyncio, no clock inside.

What the connection sends is queued as plaintext, in order, and encrypted only when the adapter
asks for the next ``limit`` bytes: a recording is sealed a batch at a time as its socket drains,
so a connection holds about one batch of ciphertext (:data:`~.frames.SEAL_BATCH`, 260 KiB), not
a sealed megabyte per fragment, and each batch goes to the socket while it is still in the
processor's cache. Frames are sealed in the order they were queued, so the nonce counter follows
the wire whatever mix of control messages and media is queued (docs/hds.md, "Sealing"). An adapter
that hands a sent batch's buffer back with ``outbox.spare.keep`` gets the next batch sealed into
the same memory.

States::

    unidentified --first frame decrypts under a pending prepared session--> awaiting-hello
    awaiting-hello --control/hello request--> ready
    any --bad tag, oversize frame, garbage, no hello 10 s after accept, close()--> closed

The hello deadline runs from *accept*, not from identification (docs/protocol.md §HDS connections). Protocol
errors never escape as exceptions: they become a header status in a response, a dataSend close
reason, or the ``closed`` state with a :class:`ConnectionClosed` event saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Literal

from . import messages
from .datasend import (
    END_OF_STREAM_TIMEOUT,
    SNAPSHOT_TYPE,
    ClosedBy,
    CloseReason,
    DataSendStream,
    Segment,
    StreamRegistry,
    decide_snapshot_open,
    reason_code,
)
from .datasend import PROTOCOL as DATASEND
from .errors import DecodeError, EncodeError, FrameError, ProtocolError, StreamClosedError
from .frames import FRAME_TYPE_ENCRYPTED, MAX_PAYLOAD, Frame, FrameDecryptor, FrameEncryptor, FrameReader
from .messages import HDSStatus, Kind
from .opack import Value
from .outbox import Outbox
from .transport import PreparedSession

__all__ = [
    "HELLO_TIMEOUT",
    "MAX_FIRST_FRAME",
    "ConnectionClosed",
    "ConnectionState",
    "Event",
    "HDSConnection",
    "HelloReceived",
    "Identified",
    "SnapshotRequested",
    "StreamEnded",
    "StreamOpened",
]

_log = logging.getLogger(__name__)

HELLO_TIMEOUT: Final = 10.0
MAX_FIRST_FRAME: Final = 4096
"""The first frame must be a hello (a few dozen bytes): an unidentified socket may not make us
buffer a megabyte."""
CONTROL: Final = "control"
HELLO: Final = "hello"

ConnectionState = Literal["unidentified", "awaiting-hello", "ready", "closed"]
Identify = Callable[[Frame, float], "tuple[PreparedSession, bytes] | None"]


@dataclass(frozen=True, slots=True)
class Identified:
    """The first frame matched a prepared session (the adapter binds the HAP close to it)."""

    session: PreparedSession


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """The hub said hello; the connection is ready."""


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """A hub's dataSend ``open`` was accepted (the response is already queued)."""

    stream: DataSendStream


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """A recording stream ended: closed by the hub (with its reason), acknowledged by the hub
    (``by="ack"``), closed by us (with our reason) or lost with the connection."""

    stream: DataSendStream
    by: ClosedBy
    reason: CloseReason | int | None


@dataclass(frozen=True, slots=True)
class SnapshotRequested:
    """A hub opened a snapshot stream (the response is already queued): send one payload."""

    stream: DataSendStream


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is closed; ``reason`` is for logs."""

    reason: str


Event = Identified | HelloReceived | StreamOpened | StreamEnded | SnapshotRequested | ConnectionClosed


def _unchanging(data: Segment) -> Segment:
    """``data`` as memory that stays as it is until it is sealed, which may be later than the
    call that queued it: ``bytes`` and read-only views as they are (a camera's fragments are
    read-only views of buffers nothing writes again, and whoever passes a read-only view makes
    that promise), anything writable copied once."""
    if isinstance(data, tuple):
        return tuple(p if _kept_as_is(p) else bytes(p) for p in data)
    return data if _kept_as_is(data) else bytes(data)


def _kept_as_is(piece: bytes | bytearray | memoryview) -> bool:
    return isinstance(piece, bytes) or (isinstance(piece, memoryview) and piece.readonly)


class HDSConnection:
    """Accessory side of one HDS TCP connection."""

    def __init__(
        self,
        identify: Identify,
        registry: StreamRegistry | None,
        now: float,
        *,
        hello_timeout: float = HELLO_TIMEOUT,
        end_of_stream_timeout: float = END_OF_STREAM_TIMEOUT,
        max_payload: int = MAX_PAYLOAD,
        snapshot_gate: Callable[[], bool] | None = None,
    ) -> None:
        self._identify = identify
        self._registry = registry
        # Snapshot streams (docs/hds.md §Snapshot streams): None: not offered, such opens are
        # refused as any unknown stream type; else whether the camera is on.
        self._snapshot_gate = snapshot_gate
        self._snapshots: dict[int, DataSendStream] = {}
        self.accepted_at = now
        self.hello_timeout = hello_timeout
        self.end_of_stream_timeout = end_of_stream_timeout
        self.max_payload = max_payload
        self.state: ConnectionState = "unidentified"
        self.close_reason: str | None = None
        self.session: PreparedSession | None = None
        self.stream: DataSendStream | None = None
        self._reader = FrameReader(min(MAX_FIRST_FRAME, max_payload))
        self._decryptor: FrameDecryptor | None = None
        self._encryptor: FrameEncryptor | None = None
        #: What is queued for the wire, sealed a batch at a time by :meth:`data_to_send`.
        self.outbox = Outbox(max_payload)
        self._events: list[Event] = []
        self.frames_skipped = 0

    # -- inputs ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Process received bytes: every complete frame in them is handled at once."""
        if self.closed:
            return  # half-closed: incoming data is ignored (docs/protocol.md §HDS connections)
        self._reader.feed(data)
        while not self.closed:
            try:
                frame = self._reader.next_frame()
            except FrameError as exc:
                self.close(f"oversize frame: {exc}")
                return
            if frame is None:
                return
            if self._decryptor is None:
                self._identify_with(frame, now)
                continue
            if frame.frame_type != FRAME_TYPE_ENCRYPTED:
                self.frames_skipped += 1  # HN skips other frame types without a nonce step
                continue
            try:
                plaintext = self._decryptor.open(frame)
            except FrameError as exc:
                self.close(f"bad frame: {exc}")
                return
            self._handle_plaintext(plaintext, now)

    def connection_lost(self, reason: str = "peer closed the connection") -> None:
        """The socket is gone (EOF or error)."""
        self.close(reason)

    def close(self, reason: str) -> None:
        """Close the connection (idempotent); the adapter closes the socket after flushing."""
        if self.closed:
            return
        self.state = "closed"
        self.close_reason = reason
        if self.stream is not None:
            self._end_stream("connection", None)
        if self.session is not None:
            self.session.release()
        _log.debug("HDS connection closed: %s", reason)
        self._events.append(ConnectionClosed(reason))

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` must next be called, or ``None``."""
        deadlines: list[float] = []
        if self.state in ("unidentified", "awaiting-hello"):
            deadlines.append(self.accepted_at + self.hello_timeout)
        if self.stream is not None:
            eos = self.stream.end_of_stream_deadline(self.end_of_stream_timeout)
            if eos is not None:
                deadlines.append(eos)
        return min(deadlines, default=None)

    def handle_timeout(self, now: float) -> None:
        """Act on expired timers: no hello in time, or no ack/close after endOfStream."""
        if self.closed:
            return
        if self.state != "ready" and now >= self.accepted_at + self.hello_timeout:
            self.close("no hello within the timeout")
            return
        if self.stream is not None:
            eos = self.stream.end_of_stream_deadline(self.end_of_stream_timeout)
            if eos is not None and now >= eos:
                self.close_stream(self.stream, CloseReason.CANCELLED)

    # -- outputs ---------------------------------------------------------------------------

    def data_to_send(self, limit: int | None = None) -> list[bytearray | memoryview]:
        """Seal the next queued frames, in order, and return them as one buffer (an empty list
        when nothing is queued): whole frames up to ``limit`` bytes, at least one frame, or
        every queued frame when ``limit`` is None (:meth:`.Outbox.take`). What is still queued
        is ``outbox.unsealed_bytes``; ``outbox.drop()`` forgets it once the socket is gone."""
        if self._encryptor is None:  # only a connection with keys queues anything
            return []
        return self.outbox.take(self._encryptor, limit)

    def events(self) -> list[Event]:
        """Events since the last call, in order."""
        events, self._events = self._events, []
        return events

    # -- recording streams -----------------------------------------------------------------

    def send_init(self, stream: DataSendStream, data: Segment) -> None:
        """Queue every chunk of the init segment."""
        self._check_stream(stream)
        self._send_all(stream, stream.init_segment(_unchanging(data)))

    def send_fragment(
        self,
        stream: DataSendStream,
        data: Segment,
        *,
        end_of_stream: bool = False,
        now: float,
    ) -> None:
        """Queue every chunk of one fragment."""
        self._check_stream(stream)
        self._send_all(stream, stream.fragment(_unchanging(data), end_of_stream=end_of_stream, now=now))

    def send_snapshot(self, stream: DataSendStream, data: Segment, data_type: str, now: float) -> None:
        """Queue the one payload of a snapshot stream; the stream is over once it is queued."""
        if self._snapshots.get(stream.stream_id) is not stream or self.state != "ready":
            raise StreamClosedError(f"snapshot stream {stream.stream_id} is not open on this connection")
        del self._snapshots[stream.stream_id]
        self._send_all(stream, stream.payload(_unchanging(data), data_type, now=now))
        stream.mark_closed("accessory", CloseReason.NORMAL)

    def fail_snapshot(self, stream: DataSendStream, reason: CloseReason) -> None:
        """End a snapshot stream without a picture: a ``close`` event with ``reason`` (idempotent)."""
        if self._snapshots.pop(stream.stream_id, None) is not stream:
            return
        body = stream.close_body(reason)
        if not self.closed:
            self._send(messages.encode_event(DATASEND, "close", body))

    def close_stream(self, stream: DataSendStream, reason: CloseReason) -> None:
        """Accessory-side ``close`` event with ``reason`` (idempotent)."""
        if stream is not self.stream or stream.closed:
            return
        body = stream.close_body(reason)
        if not self.closed:
            self._send(messages.encode_event(DATASEND, "close", body))
        self._end_stream("accessory", reason)

    def _check_stream(self, stream: DataSendStream) -> None:
        if stream is not self.stream or stream.closed or self.state != "ready":
            raise StreamClosedError(f"stream {stream.stream_id} is not running on this connection")

    def _send_all(self, stream: DataSendStream, bodies: Iterable[dict[str, Value]]) -> None:
        """Queue all of one segment's ``data`` events (sealed later, by :meth:`data_to_send`)."""
        for body in bodies:
            self.outbox.put(messages.encode_data_event_parts(body))

    # -- internals -------------------------------------------------------------------------

    def _send(self, payload: bytearray) -> None:
        self.outbox.put([memoryview(payload)])  # a message just encoded: nothing else holds it

    def _identify_with(self, frame: Frame, now: float) -> None:
        match = self._identify(frame, now) if frame.frame_type == FRAME_TYPE_ENCRYPTED else None
        if match is None:
            self.close("first frame matches no prepared session")
            return
        session, plaintext = match
        self.session = session
        self.state = "awaiting-hello"
        self._decryptor = FrameDecryptor(session.keys.decrypt_key, counter=1)
        self._encryptor = FrameEncryptor(session.keys.encrypt_key, max_payload=self.max_payload)
        self._reader.max_payload = self.max_payload
        self._events.append(Identified(session))
        self._handle_plaintext(plaintext, now)

    def _respond(self, header: messages.Header, status: HDSStatus, body: object) -> None:
        assert header.id is not None
        try:
            payload = messages.encode_response(header.protocol, header.topic, header.id, status, body)
        except EncodeError:  # e.g. a topic too long to echo in a 255-byte header
            self.close("cannot encode a response to the request")
            return
        self._send(payload)

    def _handle_plaintext(self, plaintext: bytes, now: float) -> None:
        try:
            header, raw_body = messages.parse_header(plaintext)
        except ProtocolError as exc:
            self.close(f"bad message header: {exc}")
            return
        if self.state == "awaiting-hello":
            if header.kind is not Kind.REQUEST or (header.protocol, header.topic) != (CONTROL, HELLO):
                self.close(f"first message is {header.protocol}/{header.topic}, not control/hello")
                return
            self.state = "ready"
            self._respond(header, HDSStatus.SUCCESS, {})
            self._events.append(HelloReceived())
            return
        try:
            body = messages.decode_body(raw_body)
        except DecodeError as exc:
            if header.kind is Kind.REQUEST:
                self._respond(header, HDSStatus.PAYLOAD_ERROR, {})
            _log.debug("undecodable %s body: %s", header.kind.value, exc)
            return
        if header.kind is Kind.REQUEST:
            self._handle_request(header, body)
        elif header.kind is Kind.EVENT:
            self._handle_event(header, body)
        # Responses: we never send requests, so there is nothing to match them to.

    def _handle_request(self, header: messages.Header, body: Value) -> None:
        if header.protocol == CONTROL and header.topic == HELLO:
            self._respond(header, HDSStatus.SUCCESS, {})
        elif (header.protocol == DATASEND and header.topic == "open" and self._snapshot_gate is not None
              and isinstance(body, dict) and body.get("type") == SNAPSHOT_TYPE):
            self._open_snapshot(header, body)
        elif header.protocol == DATASEND and header.topic == "open" and self._registry is not None:
            decision, stream = self._registry.open(body, self)
            self._respond(header, decision.header_status, decision.body())
            if stream is not None:
                self.stream = stream
                self._events.append(StreamOpened(stream))
        elif header.protocol in (CONTROL, DATASEND) and self._registry is not None:
            self._respond(header, HDSStatus.HEADER_ERROR, {})  # known protocol, unknown topic
        else:
            self._respond(header, HDSStatus.MISSING_PROTOCOL, {})

    def _open_snapshot(self, header: messages.Header, body: Value) -> None:
        assert self._snapshot_gate is not None
        decision = decide_snapshot_open(body, self._snapshot_gate())
        if decision.accepted and decision.stream_id is not None and decision.stream_id in self._snapshots:
            decision = decide_snapshot_open(None, False)  # that id is still being answered
        self._respond(header, decision.header_status, decision.body())
        if decision.accepted and decision.stream_id is not None:
            stream = DataSendStream(decision.stream_id)
            self._snapshots[decision.stream_id] = stream
            self._events.append(SnapshotRequested(stream))

    def _handle_event(self, header: messages.Header, body: Value) -> None:
        stream = self.stream
        if header.protocol != DATASEND or stream is None or not isinstance(body, dict):
            return
        stream_id = body.get("streamId")
        if header.topic == "close" and stream_id == stream.stream_id:
            self._end_stream("hub", reason_code(body.get("reason")))
        elif header.topic == "ack" and stream_id in (None, stream.stream_id):
            self._end_stream("ack", None)

    def _end_stream(self, by: ClosedBy, reason: CloseReason | int | None) -> None:
        stream = self.stream
        if stream is None:
            return
        self.stream = None
        stream.mark_closed(by, reason)
        if self._registry is not None:
            self._registry.release(stream)
        self._events.append(StreamEnded(stream, by, reason))
