"""Hypothesis fuzzing of everything a hub's bytes reach: frame reader, OPACK decoder, message
layer and the connection state machine. Only our own error types may come out (and from the
connection, none at all), and decode depth and sizes stay bounded."""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.hds import frames, messages, opack
from sidecar.hds.errors import DecodeError, FrameError, ProtocolError

from .peers import ready_pair
from .typed import typed

# The six heaviest properties: 2,000 examples each in the suite (about 20 s of its budget);
# HKSV_FUZZ_EXAMPLES=10000 (or more) for a deeper run, e.g. before a release (docs/testing.md).
MANY = settings(max_examples=int(os.environ.get("HKSV_FUZZ_EXAMPLES", "2000")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = bytes(range(32))


def count_values(value: Any, depth: int = 0) -> tuple[int, int]:
    """(number of values, maximum nesting depth) of a decoded value."""
    if isinstance(value, list):
        pairs = [count_values(v, depth + 1) for v in value]
    elif isinstance(value, dict):
        pairs = [count_values(v, depth + 1) for kv in value.items() for v in kv]
    else:
        return 1, depth
    return 1 + sum(n for n, _ in pairs), max([depth] + [d for _, d in pairs])


@MANY
@given(st.binary(max_size=512))
def test_decoder_raises_only_decode_error(data: bytes) -> None:
    try:
        value = opack.decode(data, max_depth=8)
    except DecodeError:
        return
    values, depth = count_values(value)
    assert values <= len(data)  # every value costs at least one input byte
    assert depth <= 8


# Inputs built from valid tag-ish bytes reach much deeper than uniform random bytes.
TAGGY = st.lists(
    st.one_of(
        st.sampled_from(
            [
                0x01,
                0x03,
                0x04,
                0x07,
                0x09,
                0x2F,
                0x41,
                0x61,
                0x6F,
                0x71,
                0x91,
                0x9F,
                0xA0,
                0xA1,
                0xD1,
                0xD3,
                0xDF,
                0xE1,
                0xE2,
                0xEF,
                0x30,
                0x33,
                0x35,
                0x36,
                0x05,
                0x06,
            ]
        ),
        st.integers(0, 255),
    ),
    max_size=200,
).map(bytes)


@MANY
@given(TAGGY)
def test_decoder_on_tag_shaped_input(data: bytes) -> None:
    try:
        value = opack.decode(data, max_depth=6, max_values=100)
    except DecodeError:
        return
    values, depth = count_values(value)
    assert values <= 100 and depth <= 6


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=300),
    st.uuids(),
    st.floats(allow_nan=False, allow_infinity=False).map(opack.Date),
)
keys_ = st.one_of(st.text(max_size=12), st.integers(-1000, 1000))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=20), st.dictionaries(keys_, inner, max_size=20)),
    max_leaves=40,
)


small_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.text(max_size=8), st.binary(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=8,
)


@SOME
@given(values)
def test_round_trip_of_generated_values(value: Any) -> None:
    assert typed(opack.decode(opack.encode(value))) == typed(value)


# A fixed corpus of valid encodings (HDS-shaped messages and every container form); mutating
# them reaches the decoder's inner branches far more often than random bytes do.
CORPUS = [
    opack.encode(v)
    for v in [
        {
            "streamId": 1,
            "packets": [
                {
                    "data": b"\x00" * 40,
                    "metadata": {
                        "dataType": "mediaFragment",
                        "dataSequenceNumber": 2,
                        "dataChunkSequenceNumber": 1,
                        "isLastDataChunk": True,
                        "dataTotalSize": 40,
                    },
                }
            ],
            "endOfStream": False,
        },
        {"protocol": "dataSend", "response": "open", "id": opack.Int64(7), "status": opack.Int64(0)},
        {"target": "controller", "type": "ipcamera.recording", "streamId": 300, "reason": "motion"},
        [1, -1, 39, 200, -40000, 1 << 40, 1.5, opack.Float32(2.0), None, True, False],
        ["x" * 40, "y" * 300, b"z" * 40, uuid.UUID(int=5), opack.Date(1.0)],
        list(range(20)),
        {str(i): [i, {"k": [i]}] for i in range(16)},
    ]
] + [
    b"\xd3\x41a\x41b\xa0",
    b"\x9f\x72\x03\x04\x71\x05\x03",
    b"\x6fabc\x00",
    b"\xef\x41a\x09\x03",
    b"\x64\x03" + bytes(7) + b"abc",
    b"\x94\x02" + bytes(7) + b"\x03\x04",
]


@MANY
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=3),
    st.integers(0, 1 << 16),
)
def test_decoder_on_mutated_valid_encodings(wire: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(wire)
    for where, byte in edits:
        data[where % len(data)] = byte
    if cut % 5 == 0:  # sometimes truncate as well
        del data[len(data) - cut % 4 :]
    with contextlib.suppress(DecodeError):
        opack.decode(data, max_depth=8)


@MANY
@given(st.lists(st.binary(max_size=64), max_size=12), st.booleans())
def test_frame_reader_raises_only_frame_error(pieces: list[bytes], valid_prefix: bool) -> None:
    reader = frames.FrameReader(max_payload=4096)
    decryptor = frames.FrameDecryptor(KEY)
    if valid_prefix:
        reader.feed(frames.FrameEncryptor(KEY).seal(b"\x00hello"))
    try:
        for piece in pieces:
            reader.feed(piece)
            while (frame := reader.next_frame()) is not None:
                assert len(frame.body) <= 4096 + frames.TAG_LENGTH
                decryptor.open(frame)
    except FrameError:
        pass
    assert reader.buffered <= frames.HEADER_LENGTH + 4096 + frames.TAG_LENGTH + 64


@MANY
@given(st.binary(max_size=400))
def test_message_layer_raises_only_hds_errors(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError, DecodeError):
        messages.parse_message(payload)


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_ready_connection_survives_any_authenticated_plaintext(payloads: list[bytes]) -> None:
    """Authenticated garbage reaches the message layer: answers or a close, never an exception."""
    pair = ready_pair()
    for payload in payloads:
        pair.conn.receive_data(pair.hub.frame(payload), 1.0)
        for message in pair.hub.receive(pair.conn.data_to_send()):
            assert message.header.kind is messages.Kind.RESPONSE
        if pair.conn.closed:
            break


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "protocol": st.sampled_from(["dataSend", "control", "x"]),
                "kind": st.sampled_from(["request", "event", "response"]),
                "topic": st.sampled_from(["open", "close", "ack", "data", "hello", "y"]),
                "body": small_values,
            }
        ),
        max_size=6,
    )
)
def test_ready_connection_survives_any_well_formed_message(msgs: list[dict[str, Any]]) -> None:
    pair = ready_pair()
    for i, m in enumerate(msgs):
        if m["kind"] == "request":
            payload = messages.encode_request(m["protocol"], m["topic"], i + 10, m["body"])
        elif m["kind"] == "event":
            payload = messages.encode_event(m["protocol"], m["topic"], m["body"])
        else:
            payload = messages.encode_response(m["protocol"], m["topic"], i + 10, 0, m["body"])
        pair.conn.receive_data(pair.hub.frame(payload), 1.0)
        pair.hub.receive(pair.conn.data_to_send())
    assert not pair.conn.closed


@MANY
@given(st.binary(max_size=200))
def test_unidentified_connection_survives_any_bytes(data: bytes) -> None:
    from .peers import make_pair

    pair = make_pair()
    pair.conn.receive_data(data, 0.0)
    assert pair.conn.data_to_send() == []


def test_uuid_and_float_helpers_behave() -> None:  # keeps the imports honest
    assert typed(uuid.UUID(int=0))["t"] == "uuid" and math.isfinite(0.0)
