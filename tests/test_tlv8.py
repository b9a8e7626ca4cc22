"""TLV8 round trips, fragmentation and hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar import tlv8


def test_fragments_over_255_bytes_and_merges_back() -> None:
    value = bytes(range(256)) * 3  # 768 bytes -> 255 + 255 + 255 + 3
    encoded = tlv8.item(6, value)
    assert [encoded[i] for i in (0, 257, 514, 771)] == [6, 6, 6, 6]
    assert encoded[1] == 255 and encoded[772] == 3
    assert tlv8.decode(encoded) == [(6, value)]


def test_exactly_255_bytes_followed_by_other_type() -> None:
    data = tlv8.item(1, b"a" * 255) + tlv8.item(2, b"b")
    assert tlv8.decode(data) == [(1, b"a" * 255), (2, b"b")]


def test_lists_use_delimiters() -> None:
    data = tlv8.encode_list(3, [b"x", b"y", b""])
    assert data == bytes([3, 1, ord("x"), 0, 0, 3, 1, ord("y"), 0, 0, 3, 0])
    groups = tlv8.split_list(tlv8.decode(data))
    assert groups == [[(3, b"x")], [(3, b"y")], [(3, b"")]]


def test_truncated_input_is_a_tlv_error() -> None:
    with pytest.raises(tlv8.TLVError):
        tlv8.decode(b"\x01\x05abc")
    with pytest.raises(tlv8.TLVError):
        tlv8.decode(b"\x01")


def test_short_little_endian_integers() -> None:
    assert tlv8.read_uint_le(b"\xa0\x0f") == 4000
    assert tlv8.read_uint_le(b"\xa0\x0f\x00\x00") == 4000
    with pytest.raises(tlv8.TLVError):
        tlv8.read_uint_le(b"")


@given(st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=700)), max_size=8))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    # Adjacent equal types are ambiguous in TLV8 (that is what delimiters are for): separate them.
    cleaned: list[tuple[int, bytes]] = []
    for t, v in items:
        if cleaned and cleaned[-1][0] == t:
            continue
        cleaned.append((t, v))
    assert tlv8.decode(tlv8.encode(cleaned)) == cleaned


@given(st.binary(max_size=2000))
def test_fuzz_only_tlv_errors(data: bytes) -> None:
    with contextlib.suppress(tlv8.TLVError):
        tlv8.decode(data)
