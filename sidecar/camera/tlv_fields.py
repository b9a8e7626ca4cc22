"""Reading the fields of a hub-written TLV8 value, where anything malformed is the hub's error.

Live view's and the secure-video model's TLVs are parsed the same way: a structure whose items
may repeat, unsigned little-endian integers of a given width, and every failure a
:class:`~sidecar.hap.HapError` with status INVALID_VALUE (-70410), which HAP answers the write
with, naming the field that was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import tlv8
from ..hap import HapError, HapStatus
from ..tlv8 import TLVError, read_uint_le

__all__ = ["invalid", "struct", "uint"]


def invalid(message: str) -> HapError:
    """The error a malformed write is answered with."""
    return HapError(HapStatus.INVALID_VALUE, message)


def struct(raw: bytes, what: str) -> dict[int, bytes]:
    """``raw`` as ``{type: value}`` (a repeated type keeps its last value)."""
    try:
        return tlv8.decode_dict(raw, allow_repeats=True)
    except TLVError as exc:
        raise invalid(f"{what}: {exc}") from None


def uint(d: Mapping[int, bytes], key: int, what: str, width: int) -> int:
    """The unsigned integer of ``width`` bytes at ``key``, which must be there."""
    if key not in d:
        raise invalid(f"{what} missing")
    try:
        return read_uint_le(d[key], width)
    except TLVError as exc:
        raise invalid(f"{what}: {exc}") from None
