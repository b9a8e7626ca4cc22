"""The HDS message layer: one frame plaintext = header length, OPACK header, OPACK body.

The header says what a message is (event, request or response), for which protocol and topic,
and carries the request id and response status; the body is an OPACK value (a dictionary in
practice). Splitting header from body lets a request whose body is garbage still be answered
with ``PAYLOAD_ERROR`` under the right id, instead of being dropped.

Headers are written the way HAP-NodeJS writes them (key order protocol, topic kind, id, status;
``id`` and ``status`` as Int64), because that is the byte stream hubs have been receiving from
working accessories for years.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Final

from . import opack
from .errors import DecodeError, EncodeError, ProtocolError
from .opack_encode import ZERO_COPY_MIN, encode_data_length
from .opack_tags import MAX_INLINE_INT, T_ARRAY, T_DICT, T_FALSE, T_SMALL_INT, T_TRUE

__all__ = [
    "MAX_HEADER_LENGTH",
    "HDSStatus",
    "Header",
    "Kind",
    "Message",
    "decode_body",
    "direct_data_event_parts",
    "encode_data_event_parts",
    "encode_event",
    "encode_event_parts",
    "encode_request",
    "encode_response",
    "parse_header",
    "parse_message",
]

MAX_HEADER_LENGTH: Final = 255
_MAX_HEADER_DEPTH: Final = 2
_MAX_HEADER_VALUES: Final = 64


class HDSStatus(enum.IntEnum):
    """Status in a response header (docs/protocol.md §HDS messages)."""

    SUCCESS = 0
    OUT_OF_MEMORY = 1
    TIMEOUT = 2
    HEADER_ERROR = 3
    PAYLOAD_ERROR = 4
    MISSING_PROTOCOL = 5
    PROTOCOL_SPECIFIC_ERROR = 6


class Kind(enum.Enum):
    EVENT = "event"
    REQUEST = "request"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded header. ``id`` is set for requests and responses, ``status`` for responses."""

    kind: Kind
    protocol: str
    topic: str
    id: int | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: its header and its body value."""

    header: Header
    body: opack.Value


def parse_header(payload: bytes | bytearray | memoryview) -> tuple[Header, memoryview]:
    """Decode the header of a frame plaintext; return it and a view of the undecoded body.

    Raises :class:`ProtocolError` for anything that is not a well-formed header (the kind is
    decided by the presence of ``event``, then ``request``, then ``response``, as HN does).
    """
    view = memoryview(payload)
    if view.nbytes < 1:
        raise ProtocolError("empty payload")
    length = view[0]
    if view.nbytes < 1 + length:
        raise ProtocolError(f"header of {length} bytes in a {view.nbytes}-byte payload")
    try:
        raw = opack.decode(view[1 : 1 + length], max_depth=_MAX_HEADER_DEPTH, max_values=_MAX_HEADER_VALUES)
    except DecodeError as exc:
        raise ProtocolError(f"undecodable header: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("header is not a dictionary")
    protocol = raw.get("protocol")
    if not isinstance(protocol, str):
        raise ProtocolError("header without a protocol")
    for kind in Kind:
        topic = raw.get(kind.value)
        if topic is not None:
            break
    else:
        raise ProtocolError("header is neither event, request nor response")
    if not isinstance(topic, str):
        raise ProtocolError(f"{kind.value} topic is not a string")
    msg_id = raw.get("id")
    status = raw.get("status")
    if kind is not Kind.EVENT and (not isinstance(msg_id, int) or isinstance(msg_id, bool)):
        raise ProtocolError(f"{kind.value} without an integer id")
    if kind is Kind.RESPONSE and (not isinstance(status, int) or isinstance(status, bool)):
        raise ProtocolError("response without an integer status")
    return (
        Header(
            kind,
            protocol,
            topic,
            msg_id if kind is not Kind.EVENT else None,  # type: ignore[arg-type]
            status if kind is Kind.RESPONSE else None,  # type: ignore[arg-type]
        ),
        view[1 + length :],
    )


def decode_body(body: bytes | bytearray | memoryview) -> opack.Value:
    """Decode a message body (bounded as :func:`opack.decode`); raises DecodeError."""
    return opack.decode(body)


def parse_message(payload: bytes | bytearray | memoryview) -> Message:
    """Header and body in one step (raises ProtocolError or DecodeError)."""
    header, body = parse_header(payload)
    return Message(header, decode_body(body))


def _payload(header: dict[str, object], body: object) -> bytearray:
    out = bytearray(1)
    opack.encode_into(out, header)
    length = len(out) - 1
    if length > MAX_HEADER_LENGTH:
        raise EncodeError(f"header of {length} bytes exceeds {MAX_HEADER_LENGTH}")
    out[0] = length
    opack.encode_into(out, body)
    return out


@functools.lru_cache(maxsize=32)
def _event_prefix(protocol: str, topic: str) -> bytes:
    """Header length byte and header of an event: the same bytes for every ``data`` event."""
    raw = opack.encode({"protocol": protocol, "event": topic})
    if len(raw) > MAX_HEADER_LENGTH:
        raise EncodeError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_LENGTH}")
    return bytes((len(raw),)) + raw


def encode_event_parts(protocol: str, topic: str, body: object) -> list[bytes | memoryview]:
    """An event's plaintext as pieces; large byte strings in ``body`` are not copied (hot path:
    dataSend ``data`` events go straight from the camera's buffer into the frame)."""
    return opack.encode_parts(body, _event_prefix(protocol, topic))


_DATA_BODY_KEYS: Final = (("streamId", "packets"), ("streamId", "packets", "endOfStream"))
_PACKET_KEYS: Final = ("data", "metadata")
_METADATA_KEYS: Final = (
    ("dataType", "dataSequenceNumber", "dataChunkSequenceNumber", "isLastDataChunk"),
    ("dataType", "dataSequenceNumber", "dataChunkSequenceNumber", "isLastDataChunk", "dataTotalSize"),
)


@functools.lru_cache(maxsize=64)
def _encoded(value: str) -> bytes:
    """A key or a constant string's OPACK bytes, encoded once."""
    return opack.encode(value)


def _int(value: object) -> bytes | None:
    """A plain (non-bool) integer's OPACK bytes; None for anything else."""
    if type(value) is not int:
        return None
    if 0 <= value <= MAX_INLINE_INT:
        return _SMALL_INTS[value]
    return opack.encode(value)


_SMALL_INTS: Final = tuple(bytes((T_SMALL_INT + n,)) for n in range(MAX_INLINE_INT + 1))
_BOOLS: Final = {True: bytes((T_TRUE,)), False: bytes((T_FALSE,))}


@functools.lru_cache(maxsize=64)
def _data_event_head(stream_id: int, body_keys: int) -> bytes:
    """Everything of a ``data`` event before its data's length: the same for every chunk of a stream."""
    out = bytearray(_event_prefix("dataSend", "data"))
    out.append(T_DICT + body_keys)
    out += _encoded("streamId") + opack.encode(stream_id) + _encoded("packets")
    out += bytes((T_ARRAY + 1, T_DICT + 2)) + _encoded("data")
    return bytes(out)


@functools.lru_cache(maxsize=64)
def _metadata_head(data_type: str, metadata_keys: int) -> bytes:
    """The packet's metadata up to its sequence number: the same for every chunk of a stream."""
    return (_encoded("metadata") + bytes((T_DICT + metadata_keys,)) + _encoded("dataType") + opack.encode(data_type)
            + _encoded("dataSequenceNumber"))


def encode_data_event_parts(body: dict[str, opack.Value]) -> list[bytes | memoryview]:
    """A dataSend ``data`` event's plaintext as pieces: the same bytes as
    ``encode_event_parts("dataSend", "data", body)``, large data uncopied.

    Every chunk of a recording is such an event, and only its numbers and its data change, so
    the recording stream's bodies are written directly (:func:`direct_data_event_parts`); a body
    of any other shape goes to the general encoder.
    """
    parts = direct_data_event_parts(body)
    return parts if parts is not None else encode_event_parts("dataSend", "data", body)


def direct_data_event_parts(body: dict[str, opack.Value]) -> list[bytes | memoryview] | None:
    """The pieces of a ``data`` event of exactly the recording stream's shape (one packet whose
    data is one buffer, integer numbers, boolean flags, keys in the stream's order), written from
    parts encoded once per stream (the header, the keys, the stream id, the data type) and the
    chunk's own numbers; ``None`` for any other body."""
    keys = tuple(body)
    packets = body.get("packets")
    if keys not in _DATA_BODY_KEYS or type(packets) is not list or len(packets) != 1:
        return None
    packet = packets[0]
    if type(packet) is not dict or tuple(packet) != _PACKET_KEYS:
        return None
    data: object = packet["data"]  # the stream's bodies carry memoryviews (not an OPACK Value type)
    metadata = packet["metadata"]
    if type(data) is not memoryview or data.format != "B" or data.ndim != 1 or type(metadata) is not dict:
        return None
    meta_keys = tuple(metadata)
    stream_id, data_type = body["streamId"], metadata.get("dataType")
    last, end = metadata.get("isLastDataChunk"), body.get("endOfStream", False)
    if (meta_keys not in _METADATA_KEYS or type(data_type) is not str or type(last) is not bool
            or type(end) is not bool or type(stream_id) is not int):
        return None
    sequence, chunk = _int(metadata["dataSequenceNumber"]), _int(metadata["dataChunkSequenceNumber"])
    total = _int(metadata["dataTotalSize"]) if len(meta_keys) == 5 else b""
    if sequence is None or chunk is None or total is None:
        return None
    out = bytearray(_data_event_head(stream_id, len(keys)))
    size = data.nbytes
    parts: list[bytes | memoryview] = []
    if size >= ZERO_COPY_MIN:
        encode_data_length(out, size)
        parts += (bytes(out), data)
        out = bytearray()
    else:
        opack.encode_into(out, data)
    out += _metadata_head(data_type, len(meta_keys))
    out += sequence
    out += _encoded("dataChunkSequenceNumber")
    out += chunk
    out += _encoded("isLastDataChunk")
    out += _BOOLS[last]
    if total:
        out += _encoded("dataTotalSize")
        out += total
    if len(keys) == 3:
        out += _encoded("endOfStream")
        out += _BOOLS[end]
    parts.append(bytes(out))
    return parts


def encode_event(protocol: str, topic: str, body: object) -> bytearray:
    """Plaintext of an event; the body is encoded straight into the same buffer."""
    return _payload({"protocol": protocol, "event": topic}, body)


def encode_request(protocol: str, topic: str, msg_id: int, body: object) -> bytearray:
    """Plaintext of a request (``id`` as Int64, like HN)."""
    return _payload({"protocol": protocol, "request": topic, "id": opack.Int64(msg_id)}, body)


def encode_response(protocol: str, topic: str, msg_id: int, status: int, body: object) -> bytearray:
    """Plaintext of a response (``id`` and ``status`` as Int64, like HN)."""
    return _payload(
        {"protocol": protocol, "response": topic, "id": opack.Int64(msg_id), "status": opack.Int64(status)},
        body,
    )
