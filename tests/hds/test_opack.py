"""OPACK codec: the vectors of docs/protocol.md §Test vectors, every tag form, limits and errors."""

from __future__ import annotations

import math
import struct
import uuid

import pytest

from sidecar.hds import opack
from sidecar.hds.errors import DecodeError, EncodeError, HDSError
from sidecar.hds.opack import Date, Float32, Int8, Int16, Int32, Int64, decode, encode
from tests.support.opack_vectors import HN_CLOSE_EVENT, HN_INIT_EVENT, HN_OPEN_REQUEST, INIT_EVENT_VALUE

from .typed import same

HELLO_REQUEST = bytes.fromhex("24e3") + b"\x48protocol\x47control\x47request\x45hello\x42id\x09" + b"\xe0"
HELLO_RESPONSE_HEADER = (
    b"\xe4\x48protocol\x47control\x48response\x45hello\x42id\x33"
    + bytes([1, 0, 0, 0, 0, 0, 0, 0])
    + b"\x46status\x33"
    + bytes(8)
)

# Every tag form: (encoded bytes, decoded value). Hand-written from the table, not from our encoder.
FORMS: list[tuple[str, bytes, object]] = [
    ("true", b"\x01", True),
    ("false", b"\x02", False),
    ("null", b"\x04", None),
    ("uuid", b"\x05" + bytes(range(16)), uuid.UUID(bytes=bytes(range(16)))),
    ("date", b"\x06" + struct.pack("<d", 700000000.25), Date(700000000.25)),
    ("minus one", b"\x07", -1),
    ("int 0", b"\x08", 0),
    ("int 38", b"\x2e", 38),
    ("int 39 (HN rejects, table accepts)", b"\x2f", 39),
    ("int8", b"\x30\x80", -128),
    ("int8 small", b"\x30\x05", 5),
    ("int16", b"\x31\x00\x80", -32768),
    ("int32", b"\x32\x00\x00\x00\x80", -(1 << 31)),
    ("int64", b"\x33" + struct.pack("<q", -(1 << 63)), -(1 << 63)),
    ("int64 max", b"\x33" + struct.pack("<q", (1 << 63) - 1), (1 << 63) - 1),
    ("float32", b"\x35" + struct.pack("<f", 0.5), 0.5),
    ("float64", b"\x36" + struct.pack("<d", -1.25e-300), -1.25e-300),
    ("str inline 0", b"\x40", ""),
    ("str inline 32", b"\x60" + b"s" * 32, "s" * 32),
    ("str len8", b"\x61\x03abc", "abc"),
    ("str len16", b"\x62\x03\x00abc", "abc"),
    ("str len32", b"\x63\x03\x00\x00\x00abc", "abc"),
    ("str len64", b"\x64\x03" + bytes(7) + b"abc", "abc"),
    ("str NUL-terminated", b"\x6fh\xc3\xa9\x00", "h\u00e9"),
    ("data inline 0", b"\x70", b""),
    ("data inline 32", b"\x90" + b"\x01" * 32, b"\x01" * 32),
    ("data len8", b"\x91\x02\x03\x04", b"\x03\x04"),
    ("data len16", b"\x92\x02\x00\x03\x04", b"\x03\x04"),
    ("data len32", b"\x93\x02\x00\x00\x00\x03\x04", b"\x03\x04"),
    ("data len64", b"\x94\x02" + bytes(7) + b"\x03\x04", b"\x03\x04"),
    ("data terminated (ADK: data objects until 0x03)", b"\x9f\x72\x03\x04\x71\x05\x03", b"\x03\x04\x05"),
    ("array 0", b"\xd0", []),
    ("array 14", b"\xde" + b"\x09" * 14, [1] * 14),
    ("array terminated", b"\xdf\x09\x41x\x03", [1, "x"]),
    ("dict 0", b"\xe0", {}),
    ("dict 1", b"\xe1\x41a\x09", {"a": 1}),
    (
        "dict 14",
        b"\xee" + b"".join(bytes([0x41, 0x61 + i, 0x08 + i]) for i in range(14)),
        {chr(0x61 + i): i for i in range(14)},
    ),
    ("dict terminated", b"\xef\x41a\x09\x41b\x01\x03", {"a": 1, "b": True}),
    ("dict int key", b"\xe1\x09\x41a", {1: "a"}),
    ("back-reference to a string", b"\xd3\x41a\x41b\xa0", ["a", "b", "a"]),
    ("back-reference skips inline ints", b"\xd4\x09\x30\x64\x41z\xa0", [1, 100, "z", 100]),
    ("back-reference to data", b"\xd2\x72\x01\x02\xa0", [b"\x01\x02", b"\x01\x02"]),
]


@pytest.mark.parametrize(("name", "wire", "value"), FORMS, ids=[f[0] for f in FORMS])
def test_every_tag_form_decodes_and_round_trips(name: str, wire: bytes, value: object) -> None:
    decoded = decode(wire)
    assert same(decoded, value), (name, decoded)
    again = decode(encode(decoded))
    assert same(again, value)


def test_hello_request_vector() -> None:
    header_len = HELLO_REQUEST[0]
    header = decode(HELLO_REQUEST[1 : 1 + header_len])
    assert same(header, {"protocol": "control", "request": "hello", "id": 1})
    assert same(decode(HELLO_REQUEST[1 + header_len :]), {})


def test_hello_response_header_vector_is_what_we_encode() -> None:
    header = {"protocol": "control", "response": "hello", "id": Int64(1), "status": Int64(0)}
    assert encode(header) == HELLO_RESPONSE_HEADER
    assert same(decode(HELLO_RESPONSE_HEADER), {"protocol": "control", "response": "hello", "id": 1, "status": 0})


def test_hn_response_header_for_id_0_uses_a_back_reference() -> None:
    # HN writes status Int64(0) as a back-reference (A5) to the equal Int64 id (docs/protocol.md §OPACK).
    wire = bytes.fromhex(
        "e44870726f746f636f6c486461746153656e6448726573706f6e7365446f70656e42696433000000000000000046737461747573a5"
    )
    assert same(decode(wire), {"protocol": "dataSend", "response": "open", "id": 0, "status": 0})


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (-1, "07"),
        (0, "08"),
        (39, "2f"),
        (40, "3028"),
        (-2, "30fe"),
        (127, "307f"),
        (128, "318000"),
        (-129, "317fff"),
        (32768, "3200800000"),
        (262144, "3200000400"),
        ((1 << 31), "330000008000000000"),
        (True, "01"),
        (None, "04"),
        (1.5, "36000000000000f83f"),
        (Float32(1.5), "350000c03f"),
        (Int8(1), "3001"),
        (Int16(1), "310100"),
        (Int32(1), "3201000000"),
        (Int64(1), "330100000000000000"),
        ("", "40"),
        ("é", "42c3a9"),  # inline length is the UTF-8 byte length, not the character count
        ("a" * 33, "6121" + "61" * 33),
        (b"", "70"),
        (b"\x00" * 33, "9121" + "00" * 33),
        ([1] * 15, "df" + "09" * 15 + "03"),
        (
            {str(i): i for i in range(15)},
            "ef"
            + "".join(
                f"41{0x30 + i:02x}{8 + i:02x}" if i < 10 else f"42{(0x30 + i // 10):02x}{0x30 + i % 10:02x}{8 + i:02x}"
                for i in range(15)
            )
            + "03",
        ),
    ],
)
def test_encoder_picks_the_smallest_form(value: object, wire: str) -> None:
    assert encode(value).hex() == wire


def test_large_lengths_use_wider_forms() -> None:
    assert encode("x" * 300)[:3] == b"\x62\x2c\x01"
    assert encode(b"x" * 70000)[:5] == b"\x93\x70\x11\x01\x00"
    assert decode(encode(b"x" * 70000)) == b"x" * 70000


def test_memoryview_and_tuple_encode_like_bytes_and_list() -> None:
    data = bytearray(b"abcdef")
    assert encode(memoryview(data)[1:3]) == encode(b"bc")
    assert encode((1, 2)) == encode([1, 2])


def test_encoder_never_emits_back_references() -> None:
    items: list[object] = ["same", "same", b"x", b"x", 1000, 1000, 2.5, 2.5, Int64(0), Int64(0)]
    wire = encode(items)
    # each element is written out in full, exactly as if it were encoded alone
    assert wire == bytes([0xD0 + len(items)]) + b"".join(encode(x) for x in items)


def test_date_helpers() -> None:
    import datetime as dt

    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert Date.from_datetime(when).to_datetime() == when
    assert Date.from_datetime(dt.datetime(2001, 1, 1)).seconds == 0.0


def test_nan_round_trips() -> None:
    value = decode(encode(math.nan))
    assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize(
    "value",
    [1 << 63, -(1 << 63) - 1, Int8(128), Int16(-32769), Int32(1 << 31), Float32(1e40), object(), "\ud800", {1.5j: 1}],
    ids=repr,
)
def test_unencodable_values_raise_encode_error(value: object) -> None:
    with pytest.raises(EncodeError):
        encode(value)


def test_encode_depth_is_bounded() -> None:
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(EncodeError):
        encode(deep)


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"", "empty"),
        (b"\x00", "invalid tag 0"),
        (b"\x03", "stray terminator"),
        (b"\x34", "unknown 0x34"),
        (b"\x37", "unknown 0x37"),
        (b"\x65", "unknown 0x65"),
        (b"\x95", "unknown 0x95"),
        (b"\xf0", "unknown 0xf0"),
        (b"\xff", "unknown 0xff"),
        (b"\x33\x00", "short int64"),
        (b"\x36\x00\x00", "short float64"),
        (b"\x06\x00", "short date"),
        (b"\x05" + bytes(15), "short uuid"),
        (b"\x45abc", "short inline string"),
        (b"\x64\xff\xff\xff\xff\xff\xff\xff\xff", "huge len64 string"),
        (b"\x94\xff\xff\xff\xff\xff\xff\xff\x7f", "huge len64 data"),
        (b"\x6fabc", "unterminated NUL string"),
        (b"\x9f\x71\x01", "unterminated data"),
        (b"\x9f\x41a\x03", "string inside terminated data"),
        (b"\x42\xff\xfe", "invalid UTF-8"),
        (b"\xd2\x09", "short array"),
        (b"\xdf\x09", "unterminated array"),
        (b"\xe1\x41a", "dict key without value"),
        (b"\xef\x41a\x03", "terminator in value position"),
        (b"\xe1\xd0\x09", "unhashable key"),
        (b"\xa0", "back-reference with nothing before it"),
        (b"\xd2\x41a\xa1", "back-reference out of range"),
        (b"\x09\x09", "trailing bytes"),
    ],
)
def test_malformed_input_raises_decode_error(wire: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        decode(wire)


def test_decode_depth_limit() -> None:
    ok = b"\xd1" * 31 + b"\xd0"  # 32 nested containers: the limit
    assert decode(ok) is not None
    with pytest.raises(DecodeError, match="too deep"):
        decode(b"\xd1" * 40 + b"\xd0")
    with pytest.raises(DecodeError):
        decode(b"\xd1" * 5 + b"\xd0", max_depth=3)


def test_decode_value_and_size_limits() -> None:
    with pytest.raises(DecodeError, match="too many"):
        decode(b"\xdf" + b"\x09" * 70_000 + b"\x03")
    assert len(decode(b"\xdf" + b"\x09" * 100 + b"\x03", max_values=102)) == 100  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="limit"):
        decode(b"\x09" * 10, max_input=5)
    with pytest.raises(DecodeError):
        decode(b"\x09" * ((1 << 20) + 1))


def test_decode_errors_are_hds_errors() -> None:
    assert issubclass(DecodeError, HDSError)
    assert issubclass(EncodeError, HDSError)


def test_decode_prefix_reports_consumed_length() -> None:
    value, used = opack.decode_prefix(b"\x41a\x09\x09")
    assert (value, used) == ("a", 2)


def test_hn_encoded_data_open_and_close_messages() -> None:
    init = decode(bytes.fromhex(HN_INIT_EVENT))
    assert same(init, INIT_EVENT_VALUE)
    assert encode(init) == bytes.fromhex(HN_INIT_EVENT)  # we write the same bytes for it
    assert same(
        decode(bytes.fromhex(HN_OPEN_REQUEST)),
        {"target": "controller", "type": "ipcamera.recording", "streamId": 1, "reason": "motion"},
    )
    assert same(decode(bytes.fromhex(HN_CLOSE_EVENT)), {"streamId": 1, "reason": 6})
