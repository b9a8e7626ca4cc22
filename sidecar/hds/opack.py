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

import datetime as _dt
import struct
import uuid
from dataclasses import dataclass
from typing import Final, TypeAlias

from .errors import DecodeError, EncodeError

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

Value: TypeAlias = "bool | int | float | str | bytes | uuid.UUID | Date | list[Value] | dict[Value, Value] | None"

DEFAULT_MAX_DEPTH: Final = 32
"""Deeper than any real HDS message (data events nest four levels) by a wide margin."""
DEFAULT_MAX_INPUT: Final = 1 << 20
"""One HDS frame carries at most 2**20 - 1 bytes, so nothing larger can legitimately arrive."""
DEFAULT_MAX_VALUES: Final = 65_536
"""Caps the Python objects one message can make us allocate (1-byte values are cheap on the wire)."""

_EPOCH_2001: Final = _dt.datetime(2001, 1, 1, tzinfo=_dt.UTC)


@dataclass(frozen=True, slots=True)
class Int8:
    """Force the int8 form (tag 0x30)."""

    value: int


@dataclass(frozen=True, slots=True)
class Int16:
    """Force the int16 form (tag 0x31)."""

    value: int


@dataclass(frozen=True, slots=True)
class Int32:
    """Force the int32 form (tag 0x32)."""

    value: int


@dataclass(frozen=True, slots=True)
class Int64:
    """Force the int64 form (tag 0x33); HN writes header ``id`` and ``status`` this way."""

    value: int


@dataclass(frozen=True, slots=True)
class Float32:
    """Force the float32 form (tag 0x35); plain ``float`` encodes as float64."""

    value: float


@dataclass(frozen=True, slots=True)
class Date:
    """An OPACK date: seconds since 2001-01-01 00:00:00 UTC, as a float64 (tag 0x06)."""

    seconds: float

    @classmethod
    def from_datetime(cls, when: _dt.datetime) -> Date:
        """Convert an aware datetime (naive ones are taken as UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return cls((when - _EPOCH_2001).total_seconds())

    def to_datetime(self) -> _dt.datetime:
        """The date as an aware UTC datetime."""
        return _EPOCH_2001 + _dt.timedelta(seconds=self.seconds)


# ---------------------------------------------------------------------------------------------
# Tags

T_TRUE: Final = 0x01
T_FALSE: Final = 0x02
T_TERMINATOR: Final = 0x03
T_NULL: Final = 0x04
T_UUID: Final = 0x05
T_DATE: Final = 0x06
T_MINUS_ONE: Final = 0x07
T_SMALL_INT: Final = 0x08  # 0x08..0x2F = 0..39
T_INT8: Final = 0x30
T_INT16: Final = 0x31
T_INT32: Final = 0x32
T_INT64: Final = 0x33
T_FLOAT32: Final = 0x35
T_FLOAT64: Final = 0x36
T_STR: Final = 0x40  # 0x40..0x60 inline length 0..32
T_STR_L1: Final = 0x61
T_STR_L8: Final = 0x64
T_STR_NUL: Final = 0x6F
T_DATA: Final = 0x70  # 0x70..0x90 inline length 0..32
T_DATA_L1: Final = 0x91
T_DATA_L8: Final = 0x94
T_DATA_TERM: Final = 0x9F
T_BACKREF: Final = 0xA0  # 0xA0..0xCF index 0..47
T_ARRAY: Final = 0xD0  # 0xD0..0xDE count 0..14
T_ARRAY_TERM: Final = 0xDF
T_DICT: Final = 0xE0  # 0xE0..0xEE count 0..14
T_DICT_TERM: Final = 0xEF

_MAX_INLINE_INT: Final = 39
_MAX_INLINE_LEN: Final = 32
_MAX_COUNTED: Final = 14
_MAX_BACKREF: Final = 47

_I8 = struct.Struct("<b")
_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SIZED_INTS: Final = (
    (T_INT8, _I8, -(1 << 7), (1 << 7) - 1),
    (T_INT16, _I16, -(1 << 15), (1 << 15) - 1),
    (T_INT32, _I32, -(1 << 31), (1 << 31) - 1),
    (T_INT64, _I64, -(1 << 63), (1 << 63) - 1),
)
_WRAPPER_FORMS: Final = {Int8: 0, Int16: 1, Int32: 2, Int64: 3}


# ---------------------------------------------------------------------------------------------
# Encoding


def encode(value: object) -> bytes:
    """Encode one value in the smallest counted forms (never back-references)."""
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


def encode_into(out: bytearray, value: object) -> None:
    """Append the encoding of ``value`` to ``out`` (lets a message share one buffer)."""
    _encode(out, value, 0, None)


ZERO_COPY_MIN: Final = 4096


class Pieces(tuple[memoryview, ...]):
    """One data value given in pieces: encoded as the data of their concatenation, each piece
    copied once (or, in :func:`encode_parts`, a large piece passed on as it is), never joined
    first. A segment that arrives as a small rewritten head and a large untouched body is sent
    like one contiguous buffer."""

    __slots__ = ()

    @property
    def nbytes(self) -> int:
        return sum(piece.nbytes for piece in self)


def encode_parts(value: object, prefix: bytes = b"") -> list[bytes | memoryview]:
    """Encode ``value`` as a list of pieces whose concatenation is the encoding.

    Byte strings of ``ZERO_COPY_MIN`` bytes or more are not copied: they appear as memoryviews
    of the caller's buffer. The frame layer then copies every piece exactly once, straight into
    the frame it encrypts in place, so a 256 KiB video chunk is copied once on our side in all.
    """
    parts: list[bytes | memoryview] = []
    out = bytearray(prefix)
    _encode(out, value, 0, parts)
    parts.append(bytes(out))
    return parts


def _encode_length(out: bytearray, n: int, inline_tag: int, l1_tag: int) -> None:
    if n <= _MAX_INLINE_LEN:
        out.append(inline_tag + n)
    elif n <= 0xFF:
        out.append(l1_tag)
        out.append(n)
    elif n <= 0xFFFF:
        out.append(l1_tag + 1)
        out += _U16.pack(n)
    elif n <= 0xFFFFFFFF:
        out.append(l1_tag + 2)
        out += _U32.pack(n)
    else:
        out.append(l1_tag + 3)
        out += _U64.pack(n)


def _encode_int(out: bytearray, value: int) -> None:
    if value == -1:
        out.append(T_MINUS_ONE)
        return
    if 0 <= value <= _MAX_INLINE_INT:
        out.append(T_SMALL_INT + value)
        return
    for tag, packer, low, high in _SIZED_INTS:
        if low <= value <= high:
            out.append(tag)
            out += packer.pack(value)
            return
    raise EncodeError(f"integer {value} does not fit in int64")


def _encode(out: bytearray, value: object, depth: int, parts: list[bytes | memoryview] | None) -> None:
    if depth > DEFAULT_MAX_DEPTH:
        raise EncodeError("value nested too deeply")
    if value is None:
        out.append(T_NULL)
    elif value is True:
        out.append(T_TRUE)
    elif value is False:
        out.append(T_FALSE)
    elif isinstance(value, int):
        _encode_int(out, value)
    elif isinstance(value, float):
        out.append(T_FLOAT64)
        out += _F64.pack(value)
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"string is not valid UTF-8: {exc}") from None
        _encode_length(out, len(raw), T_STR, T_STR_L1)
        out += raw
    elif isinstance(value, Pieces):
        _encode_length(out, value.nbytes, T_DATA, T_DATA_L1)
        for piece in value:
            if parts is not None and piece.nbytes >= ZERO_COPY_MIN:
                parts.append(bytes(out))
                del out[:]
                parts.append(piece)
            else:
                out += piece
    elif isinstance(value, bytes | bytearray | memoryview):
        view = memoryview(value)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        _encode_length(out, view.nbytes, T_DATA, T_DATA_L1)
        if parts is not None and view.nbytes >= ZERO_COPY_MIN:
            parts.append(bytes(out))
            del out[:]
            parts.append(view)
        else:
            out += view
    elif isinstance(value, dict):
        count = len(value)
        out.append(T_DICT + count if count <= _MAX_COUNTED else T_DICT_TERM)
        for key, item in value.items():
            _encode(out, key, depth + 1, parts)
            _encode(out, item, depth + 1, parts)
        if count > _MAX_COUNTED:
            out.append(T_TERMINATOR)
    elif isinstance(value, list | tuple):
        count = len(value)
        out.append(T_ARRAY + count if count <= _MAX_COUNTED else T_ARRAY_TERM)
        for item in value:
            _encode(out, item, depth + 1, parts)
        if count > _MAX_COUNTED:
            out.append(T_TERMINATOR)
    elif isinstance(value, uuid.UUID):
        out.append(T_UUID)
        out += value.bytes
    elif isinstance(value, Date):
        out.append(T_DATE)
        out += _F64.pack(value.seconds)
    elif isinstance(value, Int8 | Int16 | Int32 | Int64):
        tag, packer, low, high = _SIZED_INTS[_WRAPPER_FORMS[type(value)]]
        if not low <= value.value <= high:
            raise EncodeError(f"{value!r} out of range")
        out.append(tag)
        out += packer.pack(value.value)
    elif isinstance(value, Float32):
        out.append(T_FLOAT32)
        try:
            out += _F32.pack(value.value)
        except OverflowError:
            raise EncodeError(f"{value!r} does not fit in float32") from None
    else:
        raise EncodeError(f"cannot encode {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# Decoding


class _Terminator:
    """Sentinel for tag 0x03 while reading the elements of a terminated container."""


_TERMINATOR: Final = _Terminator()


class _Reader:
    __slots__ = ("budget", "data", "end", "max_depth", "pos", "tracked")

    def __init__(self, data: memoryview, max_depth: int, max_values: int) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.max_depth = max_depth
        self.budget = max_values
        # Values a back-reference may point at, in first-seen order: every string, data, sized
        # integer, float, date and UUID (exactly what HN's encoder remembers when it writes them).
        self.tracked: list[Value] = []

    def take(self, n: int) -> memoryview:
        start = self.pos
        if n > self.end - start:
            raise DecodeError(f"need {n} bytes at offset {start}, only {self.end - start} left")
        self.pos = start + n
        return self.data[start : start + n]

    def length(self, width_code: int) -> int:
        # width_code 0..3 = 1/2/4/8-byte little-endian length
        if width_code == 0:
            return self.take(1)[0]
        packer = (_U16, _U32, _U64)[width_code - 1]
        n: int = packer.unpack(self.take(packer.size))[0]
        return n

    def track(self, value: Value) -> Value:
        if len(self.tracked) <= _MAX_BACKREF:
            self.tracked.append(value)
        return value

    def text(self, n: int) -> str:
        try:
            return str(self.take(n), "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 in string: {exc.reason}") from None

    def value(self, depth: int, allow_terminator: bool = False) -> Value | _Terminator:
        self.budget -= 1
        if self.budget < 0:
            raise DecodeError("too many values in one message")
        tag = self.take(1)[0]
        if T_SMALL_INT <= tag <= T_SMALL_INT + _MAX_INLINE_INT:
            return tag - T_SMALL_INT
        if T_STR <= tag <= T_STR + _MAX_INLINE_LEN:
            return self.track(self.text(tag - T_STR))
        if T_STR_L1 <= tag <= T_STR_L8:
            return self.track(self.text(self.length(tag - T_STR_L1)))
        if T_DATA <= tag <= T_DATA + _MAX_INLINE_LEN:
            return self.track(bytes(self.take(tag - T_DATA)))
        if T_DATA_L1 <= tag <= T_DATA_L8:
            return self.track(bytes(self.take(self.length(tag - T_DATA_L1))))
        if T_DICT <= tag <= T_DICT_TERM:
            return self.dictionary(tag, depth + 1)
        if T_ARRAY <= tag <= T_ARRAY_TERM:
            return self.array(tag, depth + 1)
        if T_BACKREF <= tag <= T_BACKREF + _MAX_BACKREF:
            index = tag - T_BACKREF
            if index >= len(self.tracked):
                raise DecodeError(f"back-reference {index} to one of {len(self.tracked)} earlier values")
            return self.tracked[index]
        if tag == T_TRUE:
            return True
        if tag == T_FALSE:
            return False
        if tag == T_NULL:
            return None
        if tag == T_MINUS_ONE:
            return -1
        if T_INT8 <= tag <= T_INT64:
            _tag, packer, _low, _high = _SIZED_INTS[tag - T_INT8]
            number: int = packer.unpack(self.take(packer.size))[0]
            return self.track(number)
        if tag in (T_FLOAT32, T_FLOAT64):
            packer = _F32 if tag == T_FLOAT32 else _F64
            real: float = packer.unpack(self.take(packer.size))[0]
            return self.track(real)
        if tag == T_DATE:
            return self.track(Date(_F64.unpack(self.take(8))[0]))
        if tag == T_UUID:
            return self.track(uuid.UUID(bytes=bytes(self.take(16))))
        if tag == T_STR_NUL:
            return self.track(self.nul_terminated_text())
        if tag == T_DATA_TERM:
            return self.track(self.terminated_data(depth + 1))
        if tag == T_TERMINATOR and allow_terminator:
            return _TERMINATOR
        raise DecodeError(f"unexpected tag 0x{tag:02x} at offset {self.pos - 1}")

    def nul_terminated_text(self) -> str:
        index = bytes(self.data[self.pos : self.end]).find(b"\x00")
        if index < 0:
            raise DecodeError("unterminated NUL-terminated string")
        text = self.text(index)
        self.pos += 1  # the NUL
        return text

    def terminated_data(self, depth: int) -> bytes:
        # Apple's accessory SDK form: a series of data objects closed by 0x03; the pieces are concatenated.
        if depth > self.max_depth:
            raise DecodeError("nesting too deep")
        pieces: list[bytes] = []
        while True:
            item = self.value(depth, allow_terminator=True)
            if item is _TERMINATOR:
                return b"".join(pieces)
            if not isinstance(item, bytes):
                raise DecodeError("terminated data may only contain data objects")
            pieces.append(item)

    def array(self, tag: int, depth: int) -> list[Value]:
        if depth > self.max_depth:
            raise DecodeError("nesting too deep")
        items: list[Value] = []
        if tag == T_ARRAY_TERM:
            while True:
                item = self.value(depth, allow_terminator=True)
                if isinstance(item, _Terminator):
                    return items
                items.append(item)
        for _ in range(tag - T_ARRAY):
            items.append(self.element(depth))
        return items

    def dictionary(self, tag: int, depth: int) -> dict[Value, Value]:
        if depth > self.max_depth:
            raise DecodeError("nesting too deep")
        result: dict[Value, Value] = {}
        terminated = tag == T_DICT_TERM
        count = -1 if terminated else tag - T_DICT
        while count != 0:
            key = self.value(depth, allow_terminator=terminated)
            if isinstance(key, _Terminator):
                return result
            try:
                hash(key)
            except TypeError:
                raise DecodeError(f"dictionary key of type {type(key).__name__}") from None
            result[key] = self.element(depth)
            count -= 1
        return result

    def element(self, depth: int) -> Value:
        item = self.value(depth)
        assert not isinstance(item, _Terminator)
        return item


def decode_prefix(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_input: int = DEFAULT_MAX_INPUT,
    max_values: int = DEFAULT_MAX_VALUES,
) -> tuple[Value, int]:
    """Decode the first value in ``data``; return it and the number of bytes it used."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if view.nbytes > max_input:
        raise DecodeError(f"{view.nbytes} bytes exceeds the {max_input}-byte limit")
    reader = _Reader(view, max_depth, max_values)
    result = reader.element(0)
    return result, reader.pos


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_input: int = DEFAULT_MAX_INPUT,
    max_values: int = DEFAULT_MAX_VALUES,
) -> Value:
    """Decode exactly one value; trailing bytes are an error.

    Back-references (0xA0 + i) resolve to the i-th string, data, sized integer, float, date or
    UUID decoded earlier in the same call: the set HAP-NodeJS's encoder remembers, the only
    producer of back-references we know of (docs/protocol.md §OPACK marks this as unverified).
    Bounds: ``max_input`` bytes, ``max_values`` decoded values, ``max_depth`` nested containers.
    """
    result, used = decode_prefix(data, max_depth=max_depth, max_input=max_input, max_values=max_values)
    total = memoryview(data).nbytes
    if used != total:
        raise DecodeError(f"{total - used} trailing bytes after the value")
    return result
