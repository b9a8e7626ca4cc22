"""The OPACK tag table (docs/protocol.md §OPACK) and the fixed-width packers both directions use."""

from __future__ import annotations

import struct
from typing import Final

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

MAX_INLINE_INT: Final = 39
MAX_INLINE_LEN: Final = 32
MAX_COUNTED: Final = 14
MAX_BACKREF: Final = 47

I8 = struct.Struct("<b")
I16 = struct.Struct("<h")
I32 = struct.Struct("<i")
I64 = struct.Struct("<q")
F32 = struct.Struct("<f")
F64 = struct.Struct("<d")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
SIZED_INTS: Final = (
    (T_INT8, I8, -(1 << 7), (1 << 7) - 1),
    (T_INT16, I16, -(1 << 15), (1 << 15) - 1),
    (T_INT32, I32, -(1 << 31), (1 << 31) - 1),
    (T_INT64, I64, -(1 << 63), (1 << 63) - 1),
)
