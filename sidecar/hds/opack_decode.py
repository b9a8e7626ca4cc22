"""The OPACK decoder: every form, back-references included (best effort, see :func:`decode`),
bounded in input length, number of values and nesting depth; anything malformed raises
:class:`~sidecar.hds.errors.DecodeError` and nothing else, so a hostile hub can only ever
produce a clean error.
"""

from __future__ import annotations

import uuid
from typing import Final

from .errors import DecodeError
from .opack_tags import (
    F32,
    F64,
    MAX_BACKREF,
    MAX_INLINE_INT,
    MAX_INLINE_LEN,
    SIZED_INTS,
    T_ARRAY,
    T_ARRAY_TERM,
    T_BACKREF,
    T_DATA,
    T_DATA_L1,
    T_DATA_L8,
    T_DATA_TERM,
    T_DATE,
    T_DICT,
    T_DICT_TERM,
    T_FALSE,
    T_FLOAT32,
    T_FLOAT64,
    T_INT8,
    T_INT64,
    T_MINUS_ONE,
    T_NULL,
    T_SMALL_INT,
    T_STR,
    T_STR_L1,
    T_STR_L8,
    T_STR_NUL,
    T_TERMINATOR,
    T_TRUE,
    T_UUID,
    U16,
    U32,
    U64,
)
from .opack_values import DEFAULT_MAX_DEPTH, DEFAULT_MAX_INPUT, DEFAULT_MAX_VALUES, Date, Value


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
        packer = (U16, U32, U64)[width_code - 1]
        n: int = packer.unpack(self.take(packer.size))[0]
        return n

    def track(self, value: Value) -> Value:
        if len(self.tracked) <= MAX_BACKREF:
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
        if T_SMALL_INT <= tag <= T_SMALL_INT + MAX_INLINE_INT:
            return tag - T_SMALL_INT
        if T_STR <= tag <= T_STR + MAX_INLINE_LEN:
            return self.track(self.text(tag - T_STR))
        if T_STR_L1 <= tag <= T_STR_L8:
            return self.track(self.text(self.length(tag - T_STR_L1)))
        if T_DATA <= tag <= T_DATA + MAX_INLINE_LEN:
            return self.track(bytes(self.take(tag - T_DATA)))
        if T_DATA_L1 <= tag <= T_DATA_L8:
            return self.track(bytes(self.take(self.length(tag - T_DATA_L1))))
        if T_DICT <= tag <= T_DICT_TERM:
            return self.dictionary(tag, depth + 1)
        if T_ARRAY <= tag <= T_ARRAY_TERM:
            return self.array(tag, depth + 1)
        if T_BACKREF <= tag <= T_BACKREF + MAX_BACKREF:
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
            _tag, packer, _low, _high = SIZED_INTS[tag - T_INT8]
            number: int = packer.unpack(self.take(packer.size))[0]
            return self.track(number)
        if tag in (T_FLOAT32, T_FLOAT64):
            packer = F32 if tag == T_FLOAT32 else F64
            real: float = packer.unpack(self.take(packer.size))[0]
            return self.track(real)
        if tag == T_DATE:
            return self.track(Date(F64.unpack(self.take(8))[0]))
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
