"""The OPACK encoder: deterministic, the smallest counted form always, never a back-reference
(ADK accessories cannot parse them and nothing needs them).

:func:`encode_parts` leaves large byte strings uncopied, as views of the caller's buffer.
"""

from __future__ import annotations

import uuid
from typing import Final

from .errors import EncodeError
from .opack_tags import (
    F32,
    F64,
    MAX_COUNTED,
    MAX_INLINE_INT,
    MAX_INLINE_LEN,
    SIZED_INTS,
    T_ARRAY,
    T_ARRAY_TERM,
    T_DATA,
    T_DATA_L1,
    T_DATE,
    T_DICT,
    T_DICT_TERM,
    T_FALSE,
    T_FLOAT32,
    T_FLOAT64,
    T_MINUS_ONE,
    T_NULL,
    T_SMALL_INT,
    T_STR,
    T_STR_L1,
    T_TERMINATOR,
    T_TRUE,
    T_UUID,
    U16,
    U32,
    U64,
)
from .opack_values import DEFAULT_MAX_DEPTH, Date, Float32, Int8, Int16, Int32, Int64, Pieces

WRAPPER_FORMS: Final = {Int8: 0, Int16: 1, Int32: 2, Int64: 3}



def encode(value: object) -> bytes:
    """Encode one value in the smallest counted forms (never back-references)."""
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


def encode_into(out: bytearray, value: object) -> None:
    """Append the encoding of ``value`` to ``out`` (lets a message share one buffer)."""
    _encode(out, value, 0, None)


ZERO_COPY_MIN: Final = 4096


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


def encode_data_length(out: bytearray, nbytes: int) -> None:
    """Append the tag and length of a data value of ``nbytes`` (its bytes follow, from the caller)."""
    _encode_length(out, nbytes, T_DATA, T_DATA_L1)


def _encode_length(out: bytearray, n: int, inline_tag: int, l1_tag: int) -> None:
    if n <= MAX_INLINE_LEN:
        out.append(inline_tag + n)
    elif n <= 0xFF:
        out.append(l1_tag)
        out.append(n)
    elif n <= 0xFFFF:
        out.append(l1_tag + 1)
        out += U16.pack(n)
    elif n <= 0xFFFFFFFF:
        out.append(l1_tag + 2)
        out += U32.pack(n)
    else:
        out.append(l1_tag + 3)
        out += U64.pack(n)


def _encode_int(out: bytearray, value: int) -> None:
    if value == -1:
        out.append(T_MINUS_ONE)
        return
    if 0 <= value <= MAX_INLINE_INT:
        out.append(T_SMALL_INT + value)
        return
    for tag, packer, low, high in SIZED_INTS:
        if low <= value <= high:
            out.append(tag)
            out += packer.pack(value)
            return
    raise EncodeError(f"integer {value} does not fit in int64")


def _encode_data(out: bytearray, view: memoryview, parts: list[bytes | memoryview] | None) -> None:
    """Append the bytes of a data value; collecting ``parts``, a large one is passed on as its
    own piece, uncopied, after what ``out`` holds so far."""
    if parts is not None and view.nbytes >= ZERO_COPY_MIN:
        parts.append(bytes(out))
        del out[:]
        parts.append(view)
    else:
        out += view


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
        out += F64.pack(value)
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
            _encode_data(out, piece, parts)
    elif isinstance(value, bytes | bytearray | memoryview):
        view = memoryview(value)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        _encode_length(out, view.nbytes, T_DATA, T_DATA_L1)
        _encode_data(out, view, parts)
    elif isinstance(value, dict):
        count = len(value)
        out.append(T_DICT + count if count <= MAX_COUNTED else T_DICT_TERM)
        for key, item in value.items():
            _encode(out, key, depth + 1, parts)
            _encode(out, item, depth + 1, parts)
        if count > MAX_COUNTED:
            out.append(T_TERMINATOR)
    elif isinstance(value, list | tuple):
        count = len(value)
        out.append(T_ARRAY + count if count <= MAX_COUNTED else T_ARRAY_TERM)
        for item in value:
            _encode(out, item, depth + 1, parts)
        if count > MAX_COUNTED:
            out.append(T_TERMINATOR)
    elif isinstance(value, uuid.UUID):
        out.append(T_UUID)
        out += value.bytes
    elif isinstance(value, Date):
        out.append(T_DATE)
        out += F64.pack(value.seconds)
    elif isinstance(value, Int8 | Int16 | Int32 | Int64):
        tag, packer, low, high = SIZED_INTS[WRAPPER_FORMS[type(value)]]
        if not low <= value.value <= high:
            raise EncodeError(f"{value!r} out of range")
        out.append(tag)
        out += packer.pack(value.value)
    elif isinstance(value, Float32):
        out.append(T_FLOAT32)
        try:
            out += F32.pack(value.value)
        except OverflowError:
            raise EncodeError(f"{value!r} does not fit in float32") from None
    else:
        raise EncodeError(f"cannot encode {type(value).__name__}")
