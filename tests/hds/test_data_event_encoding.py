"""The dataSend ``data`` event's direct encoder writes exactly the bytes of the general OPACK
encoder, for every body the recording stream makes and for bodies of any other shape (which it
hands to the general encoder), and still passes large data on uncopied."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.hds import messages, opack
from sidecar.hds.datasend import DataSendStream
from sidecar.hds.opack_encode import ZERO_COPY_MIN


def _joined(parts: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(p) for p in parts)


def _general(body: dict[str, opack.Value]) -> bytes:
    return _joined(messages.encode_event_parts("dataSend", "data", body))


_ints = st.one_of(st.integers(0, 300), st.integers(-(1 << 63), (1 << 63) - 1))


@settings(max_examples=150, deadline=None)
@given(stream_id=_ints, size=st.integers(1, 20_000), chunk=st.integers(400, 9000),
       head=st.binary(max_size=300), end=st.booleans(), data_type=st.text(max_size=40),
       skip=st.integers(0, 70_000))
def test_every_chunk_of_a_stream_encodes_like_the_general_encoder(
    stream_id: int, size: int, chunk: int, head: bytes, end: bool, data_type: str, skip: int
) -> None:
    body = bytes(range(256)) * (size // 256 + 1)
    stream = DataSendStream(stream_id, max_chunk=chunk)
    bodies = list(stream.payload((head, memoryview(body)[:size]), data_type or "mediaFragment"))
    stream = DataSendStream(stream_id, max_chunk=chunk)
    bodies += list(stream.init_segment(memoryview(body)[:size]))
    stream.sequence_number += skip  # large sequence numbers take the longer integer forms
    bodies += list(stream.fragment(body[: size // 2 + 1], end_of_stream=end))
    for item in bodies:
        assert _joined(messages.encode_data_event_parts(item)) == _general(item)
        if isinstance(item["packets"][0]["data"], memoryview):  # type: ignore[index,call-overload]
            assert messages.direct_data_event_parts(item) is not None  # written directly, not walked


def test_a_large_chunk_is_passed_on_uncopied() -> None:
    media = bytearray(300_000)
    stream = DataSendStream(7)
    list(stream.init_segment(b"init"))
    first = next(iter(stream.fragment(memoryview(media))))
    parts = messages.direct_data_event_parts(first)
    assert parts is not None
    assert any(isinstance(p, memoryview) and p.obj is media for p in parts)
    assert sum(memoryview(p).nbytes for p in parts if not isinstance(p, memoryview)) < ZERO_COPY_MIN
    assert _joined(parts) == _general(first)


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _ints, st.text(max_size=8), st.binary(max_size=5000)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None)
@given(stream_id=_values, data=_values, metadata=_values, end=_values, extra=st.booleans())
def test_bodies_of_other_shapes_encode_like_the_general_encoder(
    stream_id: opack.Value, data: opack.Value, metadata: opack.Value, end: opack.Value, extra: bool
) -> None:
    if isinstance(data, bytes):
        data = memoryview(data)  # type: ignore[assignment]
    body: dict[str, opack.Value] = {"streamId": stream_id, "packets": [{"data": data, "metadata": metadata}]}
    if extra:
        body["endOfStream"] = end
    assert _joined(messages.encode_data_event_parts(body)) == _general(body)
    if isinstance(metadata, dict):
        shaped = {"dataType": "mediaFragment", "dataSequenceNumber": stream_id, "dataChunkSequenceNumber": 1,
                  "isLastDataChunk": end, **metadata}
        body["packets"] = [{"data": data, "metadata": shaped}]
        assert _joined(messages.encode_data_event_parts(body)) == _general(body)
