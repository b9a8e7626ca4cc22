"""OPACK, the binary value encoding inside every HomeKit Data Stream message.

The tag table follows docs/protocol.md §OPACK in full, in both directions, including the forms that
HAP-NodeJS gets wrong (inline integer 39, short data, float64 and dates, back-references); where
HAP-NodeJS and the table disagree the table wins, because hubs speak Apple's OPACK, not HN's.

Encoding is deterministic and never emits back-references (ADK accessories cannot parse them and
nothing needs them): the smallest counted form is always chosen. Decoding accepts every form,
including back-references (best effort, see :func:`decode`), and is bounded: input length, total
number of values and nesting depth are all capped, and anything malformed raises
:class:`~sidecar.hds.errors.DecodeError` and nothing else, so a hostile hub can only ever produce
a clean error.

Python mapping: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``uuid.UUID``,
:class:`Date`, ``list`` and ``dict``. The wrappers :class:`Int8` … :class:`Int64` and
:class:`Float32` force a wire width when a peer expects one (HN writes header ids as Int64);
they decode back to plain ``int``/``float``.
"""

from __future__ import annotations

from .opack_decode import decode, decode_prefix
from .opack_encode import encode, encode_into, encode_parts
from .opack_values import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_INPUT,
    DEFAULT_MAX_VALUES,
    Date,
    Float32,
    Int8,
    Int16,
    Int32,
    Int64,
    Pieces,
    Value,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_INPUT",
    "DEFAULT_MAX_VALUES",
    "Date",
    "Float32",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Pieces",
    "Value",
    "decode",
    "decode_prefix",
    "encode",
    "encode_into",
    "encode_parts",
]
