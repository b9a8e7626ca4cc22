"""H.265 (HEVC) facts the recording path needs: NAL unit types, ``hvcC`` and the SPS picture size.

HomeKit cuts recordings into fragments that each start at a random-access picture, and a tvOS 27
hub reads the parameter sets from the ``hvcC`` box of an ``hvc1`` sample entry (docs/h265.md).
This module reads just enough of the bitstream to check both: the two-byte NAL unit header
(ITU-T H.265 7.3.1.2), the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) and the
first fields of the sequence parameter set up to the conformance window (H.265 7.3.2.2), which
give the coded picture size. Pure functions over bytes; every problem raises :class:`HevcError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "IRAP_TYPES",
    "NAL_PPS",
    "NAL_SPS",
    "NAL_VPS",
    "HevcConfig",
    "HevcError",
    "is_random_access_sample",
    "length_prefixed_nal_types",
    "nal_type",
    "parse_hvcc",
    "sps_picture_size",
]

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
#: Intra random-access point pictures: BLA_W_LP, BLA_W_RADL, BLA_N_LP, IDR_W_RADL, IDR_N_LP,
#: CRA_NUT (16-21), and the two reserved IRAP types (22, 23). A decoder can start at any of them.
IRAP_TYPES = frozenset(range(16, 24))
_VCL_MAX = 31  # NAL types 0-31 carry slice data

_PROFILES = {1: "main", 2: "main10", 3: "mainstillpicture", 4: "rext"}


class HevcError(ValueError):
    """The bytes are not the HEVC structure they claim to be."""


def nal_type(header: int) -> int:
    """The ``nal_unit_type`` of a NAL unit whose first header byte is ``header``."""
    return (header >> 1) & 0x3F


@dataclass(frozen=True, slots=True)
class HevcConfig:
    """What an ``hvcC`` box says: profile, tier, level, NAL length size and the parameter sets."""

    profile_space: int
    tier: int  # 0 main tier, 1 high tier
    profile_idc: int  # 1 Main, 2 Main 10, ...
    compatibility_flags: int
    constraint_flags: int  # 48 bits
    level_idc: int  # 30 x the level: 93 = level 3.1, 120 = 4.0, 150 = 5.0
    chroma_format: int
    bit_depth_luma: int
    length_size: int  # bytes of each NAL unit's length prefix in the samples (1, 2 or 4)
    #: NAL units by type (32 VPS, 33 SPS, 34 PPS, 39/40 SEI), in the order the box lists them.
    arrays: tuple[tuple[int, tuple[bytes, ...]], ...] = ()

    def nal_units(self, kind: int) -> tuple[bytes, ...]:
        return tuple(unit for t, units in self.arrays if t == kind for unit in units)

    @property
    def has_parameter_sets(self) -> bool:
        """VPS, SPS and PPS are all present (a hub needs them; ``hev1`` may leave them in-band)."""
        return all(self.nal_units(kind) for kind in (NAL_VPS, NAL_SPS, NAL_PPS))

    @property
    def profile_name(self) -> str:
        return _PROFILES.get(self.profile_idc, f"profile_idc={self.profile_idc}")

    @property
    def level(self) -> str:
        """The level as written in specs: ``4`` for level_idc 120, ``3.1`` for 93."""
        major, minor = divmod(self.level_idc // 3, 10)
        return f"{major}.{minor}" if minor else str(major)

    def codec_string(self, sample_entry: str = "hvc1") -> str:
        """RFC 6381 / ISO/IEC 14496-15 Annex E codec string, e.g. ``hvc1.1.6.L93.B0``."""
        space = "" if self.profile_space == 0 else "ABC"[self.profile_space - 1]
        compat = int(f"{self.compatibility_flags:032b}"[::-1], 2)  # written bit-reversed
        tier = "H" if self.tier else "L"
        constraints = self.constraint_flags.to_bytes(6, "big").rstrip(b"\0")
        tail = "".join(f".{b:X}" for b in constraints)
        return f"{sample_entry}.{space}{self.profile_idc}.{compat:X}.{tier}{self.level_idc}{tail}"


def parse_hvcc(body: bytes | memoryview) -> HevcConfig:
    """Parse an ``hvcC`` box body (the bytes after its 8-byte header)."""
    buf = memoryview(body)
    if len(buf) < 23:
        raise HevcError("hvcC shorter than its 23-byte header")
    if buf[0] != 1:
        raise HevcError(f"hvcC configurationVersion {buf[0]} (expected 1)")
    b1 = buf[1]
    compat = int.from_bytes(buf[2:6], "big")
    constraints = int.from_bytes(buf[6:12], "big")
    level = buf[12]
    chroma = buf[16] & 0x03
    depth = (buf[17] & 0x07) + 8
    length_size = (buf[21] & 0x03) + 1
    if length_size == 3:
        raise HevcError("hvcC lengthSizeMinusOne is 2 (not allowed)")
    count = buf[22]
    pos = 23
    arrays: list[tuple[int, tuple[bytes, ...]]] = []
    for _ in range(count):
        if pos + 3 > len(buf):
            raise HevcError("hvcC array header truncated")
        kind = buf[pos] & 0x3F
        n = int.from_bytes(buf[pos + 1 : pos + 3], "big")
        pos += 3
        units: list[bytes] = []
        for _ in range(n):
            if pos + 2 > len(buf):
                raise HevcError("hvcC NAL length truncated")
            size = int.from_bytes(buf[pos : pos + 2], "big")
            pos += 2
            if size < 2 or pos + size > len(buf):
                raise HevcError("hvcC NAL unit overruns the box")
            unit = bytes(buf[pos : pos + size])
            if nal_type(unit[0]) != kind:
                raise HevcError(f"hvcC array of type {kind} holds a NAL unit of type {nal_type(unit[0])}")
            units.append(unit)
            pos += size
        arrays.append((kind, tuple(units)))
    return HevcConfig(
        profile_space=b1 >> 6, tier=(b1 >> 5) & 1, profile_idc=b1 & 0x1F,
        compatibility_flags=compat, constraint_flags=constraints, level_idc=level,
        chroma_format=chroma, bit_depth_luma=depth, length_size=length_size, arrays=tuple(arrays),
    )


def length_prefixed_nal_types(sample: bytes | memoryview, length_size: int) -> Iterator[int]:
    """The NAL unit types of one MP4 sample (NAL units each prefixed by a big-endian length)."""
    buf = memoryview(sample)
    pos = 0
    while pos < len(buf):
        if pos + length_size + 1 > len(buf):
            raise HevcError("NAL length prefix truncated")
        size = int.from_bytes(buf[pos : pos + length_size], "big")
        pos += length_size
        if size < 2 or pos + size > len(buf):
            raise HevcError("NAL unit overruns its sample")
        yield nal_type(buf[pos])
        pos += size


def is_random_access_sample(sample: bytes | memoryview, length_size: int) -> bool:
    """True if the sample's first picture slice (VCL NAL unit) is an IRAP picture."""
    for kind in length_prefixed_nal_types(sample, length_size):
        if kind <= _VCL_MAX:
            return kind in IRAP_TYPES
    return False


class _Bits:
    """Exp-Golomb bit reader over an RBSP (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = 8 * len(data)

    def u(self, n: int) -> int:
        if n > self._left:
            raise HevcError("SPS truncated")
        self._left -= n
        return (self._value >> self._left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise HevcError("SPS Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)


def _rbsp(nal: bytes) -> bytes:
    """Drop the emulation-prevention bytes (00 00 03 -> 00 00) of a NAL unit payload."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def sps_picture_size(sps: bytes) -> tuple[int, int]:
    """Width and height (conformance window applied) from an SPS NAL unit, header included."""
    if len(sps) < 3 or nal_type(sps[0]) != NAL_SPS:
        raise HevcError("not an SPS NAL unit")
    # The SPS fields before the size are short; 200 bytes of RBSP cover them with any sub-layers.
    bits = _Bits(_rbsp(sps[2:202]))
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)  # sps_max_sub_layers_minus1
    bits.u(1)  # sps_temporal_id_nesting_flag
    bits.u(96)  # general profile_tier_level: 2+1+5+32+4+43+1 bits, then general_level_idc
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))  # reserved_zero_2bits
    for profile_present, level_present in present:
        if profile_present:
            bits.u(88)
        if level_present:
            bits.u(8)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    if chroma > 3:
        raise HevcError(f"SPS chroma_format_idc {chroma}")
    separate = bits.u(1) if chroma == 3 else 0
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance_window_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        sub_w = 2 if chroma in (1, 2) and not separate else 1
        sub_h = 2 if chroma == 1 and not separate else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    if width <= 0 or height <= 0:
        raise HevcError(f"SPS picture size {width}x{height}")
    return width, height
