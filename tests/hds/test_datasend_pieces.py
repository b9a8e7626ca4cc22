"""A segment given in pieces (a small rewritten head, a large untouched body) is chunked and
encoded exactly like the same bytes in one buffer, without joining the pieces first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.hds import opack
from sidecar.hds.datasend import DataSendStream
from sidecar.hds.opack import Pieces


def _encoded(stream: DataSendStream, data: object) -> list[bytes]:
    bodies = list(stream.fragment(data, now=0.0))  # type: ignore[arg-type]
    return [b"".join(bytes(p) for p in opack.encode_parts(body)) for body in bodies]


@settings(max_examples=60, deadline=None)
@given(head=st.binary(min_size=0, max_size=600), body=st.binary(min_size=1, max_size=20_000),
       chunk=st.integers(1, 9000))
def test_pieces_chunk_and_encode_like_one_buffer(head: bytes, body: bytes, chunk: int) -> None:
    whole, pieced = DataSendStream(1, max_chunk=chunk), DataSendStream(1, max_chunk=chunk)
    for s in (whole, pieced):
        list(s.init_segment(b"init"))
    assert _encoded(pieced, (head, memoryview(body))) == _encoded(whole, head + body)
    assert pieced.bytes_sent == whole.bytes_sent == len(head) + len(body) + 4


def test_large_pieces_are_passed_on_not_copied() -> None:
    body = bytearray(300_000)
    stream = DataSendStream(1)
    list(stream.init_segment(b"init"))
    first = next(iter(stream.fragment((b"\x01" * 100, memoryview(body)), now=0.0)))
    data = first["packets"][0]["data"]  # type: ignore[index]
    assert isinstance(data, Pieces) and data.nbytes == 262_144
    parts = opack.encode_parts(first)
    assert any(isinstance(p, memoryview) and p.obj is body for p in parts)
    assert opack.decode(b"".join(bytes(p) for p in parts))["packets"][0]["data"] == b"\x01" * 100 + bytes(262_044)  # type: ignore[index,call-overload]
