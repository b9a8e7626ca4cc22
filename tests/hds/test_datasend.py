"""dataSend stream object and open decisions, without any connection."""

from __future__ import annotations

import pytest

from sidecar.hds.datasend import CloseReason, DataSendStream, StreamRegistry, decide_open, reason_code
from sidecar.hds.errors import StreamClosedError
from sidecar.hds.messages import HDSStatus

from .peers import Gate

OPEN = {"target": "controller", "type": "ipcamera.recording", "streamId": 1}


def test_reason_codes_match_the_table() -> None:
    assert [r.value for r in CloseReason] == list(range(10))
    assert CloseReason.TIMEOUT == 6 and CloseReason.INVALID_CONFIGURATION == 9
    assert reason_code(6) is CloseReason.TIMEOUT
    assert reason_code(77) == 77
    assert reason_code(None) is None and reason_code(True) is None


def test_accept_and_reject_order() -> None:
    assert decide_open(OPEN, Gate(), False).accepted
    assert decide_open("nope", Gate(), False).status == CloseReason.UNEXPECTED_FAILURE
    assert decide_open({**OPEN, "streamId": True}, Gate(), False).status == CloseReason.UNEXPECTED_FAILURE
    assert decide_open(OPEN, Gate(recording=False), True).status == CloseReason.NOT_ALLOWED
    assert decide_open(OPEN, Gate(selected=False), True).status == CloseReason.BUSY
    rejected = decide_open(OPEN, Gate(selected=False), False)
    assert (rejected.header_status, rejected.status) == (HDSStatus.PROTOCOL_SPECIFIC_ERROR, 9)
    assert rejected.body() == {"status": 9}


def test_chunks_reference_the_callers_buffer() -> None:
    stream = DataSendStream(1, max_chunk=4)
    data = bytearray(b"abcdefghij")
    (_init,) = stream.init_segment(b"ftyp")
    chunks = list(stream.fragment(data))
    pieces = [c["packets"][0]["data"] for c in chunks]  # type: ignore[index]
    assert all(isinstance(p, memoryview) for p in pieces)
    assert [bytes(p) for p in pieces] == [b"abcd", b"efgh", b"ij"]
    assert stream.bytes_sent == 14


def test_init_first_and_once_and_no_empty_segments() -> None:
    stream = DataSendStream(1)
    with pytest.raises(ValueError):
        stream.fragment(b"x")
    with pytest.raises(ValueError):
        stream.init_segment(b"")
    list(stream.init_segment(b"x"))
    with pytest.raises(ValueError):
        stream.init_segment(b"x")


def test_nothing_after_end_of_stream_or_close() -> None:
    stream = DataSendStream(1)
    list(stream.init_segment(b"x"))
    list(stream.fragment(b"y", end_of_stream=True, now=3.0))
    assert stream.end_of_stream_deadline() == 15.0
    with pytest.raises(StreamClosedError):
        stream.fragment(b"z")
    assert stream.mark_closed("hub", 0) is True
    assert stream.mark_closed("accessory", 3) is False
    assert (stream.closed_by, stream.close_reason) == ("hub", 0)
    with pytest.raises(StreamClosedError):
        stream.init_segment(b"x")


def test_registry_holds_one_stream() -> None:
    registry = StreamRegistry(Gate())
    decision, stream = registry.open(OPEN, "conn-a")
    assert decision.accepted and stream is not None and registry.owner == "conn-a"
    decision2, none = registry.open({**OPEN, "streamId": 2}, "conn-b")
    assert none is None and decision2.status == CloseReason.BUSY
    registry.release(stream)
    registry.release(stream)
    assert registry.active is None
