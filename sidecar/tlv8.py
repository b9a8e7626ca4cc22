"""TLV8: HomeKit's type-length-value encoding, shared by pairing, HDS setup and camera TLVs.

HAP splits values longer than 255 bytes into consecutive items of the same type, and
separates list elements of the same type with an empty delimiter item (type 0 by default).
The decoder merges fragments back; the list helpers split on delimiters. The decoder never
raises anything but :class:`TLVError`, so a hostile peer can only ever produce a clean error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

__all__ = [
    "TLVError",
    "decode",
    "decode_dict",
    "encode",
    "encode_list",
    "item",
    "read_uint_le",
    "split_list",
    "uint_le",
]

MAX_FRAGMENT = 255
Value = bytes | bytearray | memoryview | int | str


class TLVError(ValueError):
    """Malformed TLV8 data (truncated item, bad integer width, duplicate singleton)."""


def uint_le(value: int, width: int) -> bytes:
    """Encode an unsigned little-endian integer of a fixed width."""
    return value.to_bytes(width, "little", signed=False)


def read_uint_le(data: bytes, max_width: int = 8) -> int:
    """Decode an unsigned LE integer; shorter-than-nominal widths are accepted (ADK does too)."""
    if not 1 <= len(data) <= max_width:
        raise TLVError(f"integer of {len(data)} bytes, expected 1..{max_width}")
    return int.from_bytes(data, "little", signed=False)


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        if not 0 <= value <= 0xFF:
            raise TLVError("bare int TLV values are single bytes; use uint_le() for wider ones")
        return bytes((value,))
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def item(tlv_type: int, value: Value) -> bytes:
    """Encode one item, fragmenting values over 255 bytes."""
    if not 0 <= tlv_type <= 0xFF:
        raise TLVError(f"type {tlv_type} out of range")
    raw = _as_bytes(value)
    if not raw:
        return bytes((tlv_type, 0))
    out = bytearray()
    for start in range(0, len(raw), MAX_FRAGMENT):
        chunk = raw[start : start + MAX_FRAGMENT]
        out += bytes((tlv_type, len(chunk)))
        out += chunk
    return bytes(out)


def encode(items: Iterable[tuple[int, Value]]) -> bytes:
    """Encode ``(type, value)`` pairs in order."""
    return b"".join(item(t, v) for t, v in items)


def encode_list(tlv_type: int, values: Sequence[Value], delimiter: int = 0) -> bytes:
    """Encode several values of one type, separated by empty delimiter items."""
    parts: list[bytes] = []
    for index, value in enumerate(values):
        if index:
            parts.append(bytes((delimiter, 0)))
        parts.append(item(tlv_type, value))
    return b"".join(parts)


def _iter_raw(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    pos = 0
    end = len(view)
    while pos < end:
        if pos + 2 > end:
            raise TLVError("truncated TLV header")
        tlv_type = view[pos]
        length = view[pos + 1]
        pos += 2
        if pos + length > end:
            raise TLVError(f"truncated TLV value for type {tlv_type}")
        yield tlv_type, view[pos : pos + length]
        pos += length


def decode(data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
    """Decode into ``(type, value)`` pairs, merging 255-byte fragments of the same type."""
    result: list[tuple[int, bytes]] = []
    pending_type = -1
    pending = bytearray()
    pending_continues = False
    for tlv_type, value in _iter_raw(data):
        if pending_continues and tlv_type == pending_type:
            pending += value
        else:
            if pending_type >= 0:
                result.append((pending_type, bytes(pending)))
            pending_type = tlv_type
            pending = bytearray(value)
        pending_continues = len(value) == MAX_FRAGMENT
    if pending_type >= 0:
        result.append((pending_type, bytes(pending)))
    return result


def decode_dict(data: bytes | bytearray | memoryview, *, allow_repeats: bool = False) -> dict[int, bytes]:
    """Decode items whose types are unique (a TLV "struct").

    Repeated types are an error unless ``allow_repeats``, in which case the last one wins.
    """
    out: dict[int, bytes] = {}
    for tlv_type, value in decode(data):
        if tlv_type in out and not allow_repeats:
            raise TLVError(f"type {tlv_type} repeated")
        out[tlv_type] = value
    return out


def split_list(
    items: Sequence[tuple[int, bytes]], delimiter: int = 0
) -> list[list[tuple[int, bytes]]]:
    """Split decoded items into groups at delimiter items (empty groups are dropped)."""
    groups: list[list[tuple[int, bytes]]] = [[]]
    for tlv_type, value in items:
        if tlv_type == delimiter and not value:
            groups.append([])
        else:
            groups[-1].append((tlv_type, value))
    return [g for g in groups if g]
