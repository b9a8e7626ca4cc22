"""The Python side of OPACK: the value type, the wrappers that force a wire width, dates, the
zero-copy :class:`Pieces` value, and the decoder's bounds.

Python mapping: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``uuid.UUID``,
:class:`Date`, ``list`` and ``dict``. The wrappers :class:`Int8` … :class:`Int64` and
:class:`Float32` force a wire width when a peer expects one (HN writes header ids as Int64);
they decode back to plain ``int``/``float``.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass
from typing import Final, TypeAlias

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


class Pieces(tuple[memoryview, ...]):
    """One data value given in pieces: encoded as the data of their concatenation, each piece
    copied once (or, in :func:`~sidecar.hds.opack_encode.encode_parts`, a large piece passed on
    as it is), never joined first. A segment that arrives as a small rewritten head and a large untouched body is sent
    like one contiguous buffer."""

    __slots__ = ()

    @property
    def nbytes(self) -> int:
        return sum(piece.nbytes for piece in self)
