"""The sans-IO connection: identification, hello, dispatch, dataSend, timers (fake clock)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.hds import frames, keys, messages
from sidecar.hds.connection import (
    ConnectionClosed,
    HDSConnection,
    HelloReceived,
    Identified,
    StreamEnded,
    StreamOpened,
)
from sidecar.hds.datasend import CloseReason
from sidecar.hds.errors import StreamClosedError
from sidecar.hds.messages import HDSStatus, Kind

from .peers import Gate, Hub, Pair, make_pair, ready_pair


def closed_reason(conn: HDSConnection) -> str:
    events = [e for e in conn.events() if isinstance(e, ConnectionClosed)]
    assert conn.closed and events
    return events[-1].reason


def test_hello_identifies_and_readies_the_connection() -> None:
    pair = make_pair()
    assert pair.conn.state == "unidentified"
    assert pair.manager.pending == 1
    (response,) = pair.exchange(pair.hub.hello())
    assert response.header == messages.Header(Kind.RESPONSE, "control", "hello", 1, 0)
    assert response.body == {}
    events = pair.conn.events()
    assert isinstance(events[0], Identified) and isinstance(events[1], HelloReceived)
    assert pair.conn.state == "ready"
    assert pair.manager.pending == 0  # the prepared session is consumed
    assert pair.conn.next_deadline() is None


def test_hello_and_open_in_one_read() -> None:
    pair = make_pair()
    responses = pair.exchange(pair.hub.hello() + pair.hub.open(5))
    assert [r.header.topic for r in responses] == ["hello", "open"]
    assert responses[1].header.status == 0 and responses[1].body == {"status": 0}


def test_wrong_key_closes_at_once() -> None:
    pair = make_pair()
    stranger = Hub(keys.controller_keys(b"\x01" * 32, b"\xaa" * 32, b"\xbb" * 32))
    assert pair.exchange(stranger.hello()) == []
    assert "no prepared session" in closed_reason(pair.conn)
    assert pair.manager.pending == 1  # still there for the right hub


def test_garbage_closes() -> None:
    pair = make_pair()
    pair.conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(100), 0.0)
    assert pair.conn.closed
    assert pair.conn.data_to_send() == []


def test_first_frame_larger_than_a_hello_is_refused_before_buffering() -> None:
    pair = make_pair()
    pair.conn.receive_data(bytes([1, 0x01, 0x00, 0x00]), 0.0)  # 64 KiB announced
    assert "oversize" in closed_reason(pair.conn)


@pytest.mark.parametrize(
    "first",
    [
        lambda hub: hub.open(1),
        lambda hub: hub.event("control", "hello", {}),
        lambda hub: hub.request("control", "whoami"),
        lambda hub: hub.frame(b"\x00"),  # empty header
        lambda hub: hub.frame(b"\x05\xff\xff\xff\xff\xff"),  # undecodable header
    ],
    ids=["open", "hello-as-event", "other-request", "empty-header", "garbage-header"],
)
def test_anything_but_hello_first_closes(first) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair()
    assert pair.exchange(first(pair.hub)) == []
    assert pair.conn.closed


def test_no_hello_within_10_s_of_accept_closes() -> None:
    pair = make_pair(now=100.0)
    assert pair.conn.next_deadline() == 110.0
    pair.conn.handle_timeout(109.9)
    assert not pair.conn.closed
    pair.conn.handle_timeout(110.0)
    assert "hello" in closed_reason(pair.conn)


def test_hello_deadline_runs_from_accept_not_identification() -> None:
    pair = make_pair(now=0.0)
    # half a hello at 9 s neither identifies the socket nor moves the deadline
    pair.conn.receive_data(pair.hub.hello()[:10], 9.0)
    assert pair.conn.next_deadline() == 10.0
    pair.conn.handle_timeout(10.0)
    assert pair.conn.closed


def test_bad_tag_after_identification_closes() -> None:
    pair = ready_pair()
    frame = bytearray(pair.hub.request("control", "hello"))
    frame[-1] ^= 0xFF
    pair.conn.receive_data(frame, 1.0)
    assert "bad frame" in closed_reason(pair.conn)


def test_oversize_frame_after_identification_closes() -> None:
    pair = ready_pair()
    pair.conn.receive_data(bytes([1, 0x10, 0, 0]), 1.0)
    assert "oversize" in closed_reason(pair.conn)


def test_a_full_size_frame_after_hello_is_accepted() -> None:
    pair = ready_pair()
    big = pair.hub.event("dataSend", "data", {"blob": bytes(frames.MAX_PAYLOAD - 100)})
    pair.conn.receive_data(big, 1.0)
    assert not pair.conn.closed


def test_other_frame_types_are_skipped_without_a_counter_step() -> None:
    pair = ready_pair()
    pair.conn.receive_data(bytes([3, 0, 0, 1]) + b"x" + bytes(16), 1.0)
    (response,) = pair.exchange(pair.hub.request("control", "hello"))
    assert response.header.status == 0
    assert pair.conn.frames_skipped == 1


def test_unknown_requests_get_a_header_status() -> None:
    pair = ready_pair()
    r1, r2, r3 = pair.exchange(
        pair.hub.request("targetControl", "whoami")
        + pair.hub.request("dataSend", "teleport")
        + pair.hub.request("control", "hello")
    )
    assert r1.header.status == HDSStatus.MISSING_PROTOCOL
    assert r2.header.status == HDSStatus.HEADER_ERROR
    assert r3.header.status == HDSStatus.SUCCESS
    assert (r1.header.protocol, r1.header.topic, r1.header.id) == ("targetControl", "whoami", 2)


def test_request_with_undecodable_body_gets_payload_error() -> None:
    pair = ready_pair()
    header = messages.encode_request("dataSend", "open", 77, {})[:-1]  # drop the body
    (response,) = pair.exchange(pair.hub.frame(bytes(header) + b"\xff"))
    assert response.header.id == 77 and response.header.status == HDSStatus.PAYLOAD_ERROR
    assert not pair.conn.closed


def test_unknown_events_and_responses_are_ignored() -> None:
    pair = ready_pair()
    frames_in = (
        pair.hub.event("dataSend", "ack", {"streamId": 1})
        + pair.hub.event("other", "thing", {})
        + pair.hub.frame(messages.encode_response("control", "hello", 5, 0, {}))
    )
    assert pair.exchange(frames_in) == []
    assert not pair.conn.closed and pair.conn.events() == []


def open_stream(pair, stream_id: int = 1):  # type: ignore[no-untyped-def]
    (response,) = pair.exchange(pair.hub.open(stream_id))
    assert response.header.status == 0 and response.body == {"status": 0}
    (event,) = pair.conn.events()
    assert isinstance(event, StreamOpened)
    return event.stream


@pytest.mark.parametrize(
    ("gate", "overrides", "status"),
    [
        (Gate(), {"target": "hub"}, 5),
        (Gate(), {"type": "ipcamera.live"}, 5),
        (Gate(), {"streamId": "one"}, 5),
        (Gate(recording=False), {}, 1),
        (Gate(camera=False), {}, 1),
        (Gate(selected=False), {}, 9),
        (Gate(recording=False, selected=False), {"target": "x"}, 5),  # order: mismatch first
    ],
)
def test_open_rejections(gate: Gate, overrides: dict[str, object], status: int) -> None:
    pair = ready_pair(gate=gate)
    (response,) = pair.exchange(pair.hub.open(1, **overrides))
    assert response.header.status == HDSStatus.PROTOCOL_SPECIFIC_ERROR
    assert response.body == {"status": status}
    assert pair.registry.active is None


def test_busy_on_same_connection_and_on_another() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 1)
    (again,) = pair.exchange(pair.hub.open(2))
    assert (again.header.status, again.body) == (6, {"status": 2})
    hub2, conn2, _ = pair.another_connection()
    conn2.receive_data(hub2.hello() + hub2.open(3), 0.0)
    _hello, other = hub2.receive(conn2.data_to_send())
    assert (other.header.status, other.body) == (6, {"status": 2})
    # busy comes before the configuration check
    pair.gate.selected = False
    conn2.receive_data(hub2.open(4), 0.0)
    (other,) = hub2.receive(conn2.data_to_send())
    assert other.body == {"status": 2}
    assert pair.registry.active is stream


def test_data_events_numbering_and_chunking() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 9)
    init = b"I" * 1000
    frag1 = bytes(range(256)) * 2048  # 524288 bytes = 2 chunks exactly
    frag2 = b"F" * 262_145  # 2 chunks, the second of one byte
    pair.conn.send_init(stream, init)
    pair.conn.send_fragment(stream, frag1, now=1.0)
    pair.conn.send_fragment(stream, frag2, end_of_stream=True, now=2.0)
    received = pair.hub.receive(pair.conn.data_to_send())
    assert [m.header.topic for m in received] == ["data"] * 5
    metas = [m.body["packets"][0]["metadata"] for m in received]  # type: ignore[index]
    assert [(m["dataSequenceNumber"], m["dataChunkSequenceNumber"], m["isLastDataChunk"]) for m in metas] == [
        (1, 1, True),
        (2, 1, False),
        (2, 2, True),
        (3, 1, False),
        (3, 2, True),
    ]
    assert [m["dataType"] for m in metas] == ["mediaInitialization"] + ["mediaFragment"] * 4
    assert [m.get("dataTotalSize") for m in metas] == [1000, 524288, None, 262145, None]
    assert [m.body.get("endOfStream") for m in received] == [False, None, False, None, True]  # type: ignore[union-attr]
    assert b"".join(m.body["packets"][0]["data"] for m in received[1:3]) == frag1  # type: ignore[index]
    assert all(len(m.body["packets"][0]["data"]) <= 262_144 for m in received)  # type: ignore[index]
    assert all(m.body["streamId"] == 9 for m in received)  # type: ignore[index]


def test_hub_close_ends_the_stream_with_its_reason() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 4)
    assert pair.exchange(pair.hub.event("dataSend", "close", {"streamId": 99, "reason": 0})) == []
    assert not stream.closed  # other stream id: ignored
    pair.exchange(pair.hub.event("dataSend", "close", {"streamId": 4, "reason": 6}))
    (event,) = pair.conn.events()
    assert isinstance(event, StreamEnded) and (event.by, event.reason) == ("hub", CloseReason.TIMEOUT)
    assert stream.closed and pair.registry.active is None
    with pytest.raises(StreamClosedError):
        pair.conn.send_fragment(stream, b"x", now=1.0)
    # a new stream can open now
    open_stream(pair, 5)


def test_unknown_close_reason_is_kept_as_int() -> None:
    pair = ready_pair()
    open_stream(pair, 4)
    pair.exchange(pair.hub.event("dataSend", "close", {"streamId": 4, "reason": 42}))
    (event,) = pair.conn.events()
    assert isinstance(event, StreamEnded) and event.reason == 42


def test_ack_ends_the_stream() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 4)
    pair.conn.send_init(stream, b"init")
    pair.conn.send_fragment(stream, b"frag", end_of_stream=True, now=1.0)
    pair.hub.receive(pair.conn.data_to_send())
    pair.exchange(pair.hub.event("dataSend", "ack", {"streamId": 4, "endOfStream": True}))
    (event,) = pair.conn.events()
    assert isinstance(event, StreamEnded) and event.by == "ack"


def test_accessory_close_sends_reason_once() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 4)
    pair.conn.close_stream(stream, CloseReason.NOT_ALLOWED)
    pair.conn.close_stream(stream, CloseReason.CANCELLED)
    (message,) = pair.hub.receive(pair.conn.data_to_send())
    assert (message.header.kind, message.header.topic) == (Kind.EVENT, "close")
    assert message.body == {"streamId": 4, "reason": 1}
    (event,) = pair.conn.events()
    assert isinstance(event, StreamEnded) and (event.by, event.reason) == ("accessory", CloseReason.NOT_ALLOWED)


def test_end_of_stream_without_ack_is_cancelled_after_12_s() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 4)
    pair.conn.send_init(stream, b"init")
    pair.conn.send_fragment(stream, b"frag", end_of_stream=True, now=50.0)
    pair.hub.receive(pair.conn.data_to_send())
    assert pair.conn.next_deadline() == 62.0
    with pytest.raises(StreamClosedError):
        pair.conn.send_fragment(stream, b"more", now=51.0)
    pair.conn.handle_timeout(62.0)
    (message,) = pair.hub.receive(pair.conn.data_to_send())
    assert message.body == {"streamId": 4, "reason": CloseReason.CANCELLED}


def test_connection_loss_frees_the_stream_slot() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 4)
    pair.conn.connection_lost()
    events = pair.conn.events()
    assert isinstance(events[0], StreamEnded) and events[0].by == "connection"
    assert isinstance(events[1], ConnectionClosed)
    assert stream.closed and pair.registry.active is None
    pair.conn.receive_data(pair.hub.hello(), 1.0)  # ignored once closed
    assert pair.conn.data_to_send() == []


def test_send_before_ready_or_for_a_foreign_stream_raises() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 4)
    hub2, conn2, _ = pair.another_connection()
    conn2.receive_data(hub2.hello(), 0.0)
    with pytest.raises(StreamClosedError):
        conn2.send_init(stream, b"x")


def _fragments_received(pair: Pair, data: list[bytes | bytearray | memoryview]) -> list[bytes]:
    """The media of every mediaFragment the hub decodes from ``data``, reassembled per sequence."""
    pieces: dict[int, bytearray] = {}
    for message in pair.hub.receive(data):  # type: ignore[arg-type]
        packet = message.body["packets"][0]  # type: ignore[index]
        if packet["metadata"]["dataType"] == "mediaFragment":
            pieces.setdefault(packet["metadata"]["dataSequenceNumber"], bytearray()).extend(packet["data"])
    return [bytes(pieces[k]) for k in sorted(pieces)]


def test_a_large_segment_is_sealed_into_the_buffer_handed_back() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 3)
    wire: list[bytes] = []

    def sealed() -> memoryview | bytearray:
        (out,) = pair.conn.data_to_send()
        wire.append(bytes(out))
        return out

    pair.conn.send_init(stream, b"init")
    sealed()
    pair.conn.send_fragment(stream, os.urandom(1_000_000), now=1.0)
    first = sealed()
    assert isinstance(first, memoryview) and isinstance(first.obj, bytearray)
    pair.conn.outbox.spare.keep(first.obj)
    pair.conn.send_fragment(stream, os.urandom(4000), now=2.0)  # small: a buffer of its own
    assert sealed().obj is not first.obj  # type: ignore[union-attr]
    second_data = os.urandom(1_100_000)  # a bit larger: the headroom still fits it
    pair.conn.send_fragment(stream, second_data, now=3.0)
    assert sealed().obj is first.obj  # type: ignore[union-attr]
    pair.conn.send_fragment(stream, os.urandom(1_000_000), now=4.0)  # the spare is in use: a new one
    assert sealed().obj is not first.obj  # type: ignore[union-attr]
    assert _fragments_received(pair, wire)[2] == second_data  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["fragment", "deliver", "recycle"]), st.integers(1, 700_000),
                              st.integers(0, 10)), min_size=1, max_size=25))
def test_a_buffer_waiting_to_be_sent_is_never_written_into(ops: list[tuple[str, int, int]]) -> None:
    """Segments sealed, delivered in order and handed back in any order: a buffer still waiting to
    be sent is never touched again, and the hub decodes every segment as it was sent."""
    pair = ready_pair()
    stream = open_stream(pair, 3)
    pair.conn.send_init(stream, b"init")
    wire: list[bytes] = [bytes(b) for b in pair.conn.data_to_send()]  # the bytes as sealed, in order
    waiting: list[tuple[memoryview | bytearray, bytes]] = []
    delivered: list[memoryview | bytearray] = []
    fragments: list[bytes] = []
    for op, size, pick in ops:
        if op == "fragment":
            fragments.append(os.urandom(size))
            pair.conn.send_fragment(stream, fragments[-1], now=1.0)
            for out in pair.conn.data_to_send():
                wire.append(bytes(out))
                waiting.append((out, wire[-1]))
        elif op == "deliver" and waiting:
            delivered.append(waiting.pop(0)[0])  # a socket sends in order
        elif op == "recycle" and delivered:
            out = delivered.pop(pick % len(delivered))
            if isinstance(out, memoryview) and isinstance(out.obj, bytearray):
                pair.conn.outbox.spare.keep(out.obj)
        for out, sealed in waiting:
            assert bytes(out) == sealed
    assert _fragments_received(pair, wire) == fragments  # type: ignore[arg-type]


# -- sealing on demand: what is queued is encrypted only when the adapter asks for it ------------


def _sizes_on_wire(out: list[bytearray | memoryview]) -> int:
    return sum(memoryview(b).nbytes for b in out)


def _media(received: list[messages.Message]) -> list[bytes]:
    """The mediaFragments in the hub's decoded messages, reassembled per sequence."""
    pieces: dict[int, bytearray] = {}
    for message in received:
        if message.header.topic != "data":
            continue
        packet = message.body["packets"][0]  # type: ignore[index]
        if packet["metadata"]["dataType"] == "mediaFragment":
            pieces.setdefault(packet["metadata"]["dataSequenceNumber"], bytearray()).extend(packet["data"])
    return [bytes(pieces[k]) for k in sorted(pieces)]


def test_frames_are_sealed_in_batches_on_demand_in_the_order_they_were_queued() -> None:
    """A 1 MB fragment, then a response and a close queued behind it: each ``data_to_send(limit)``
    seals whole frames up to ``limit`` (one 256 KiB chunk per batch here), the backlog shrinks by
    exactly what was returned, and the hub decrypts everything in order (the nonce counter
    follows the wire, whatever was queued between the chunks)."""
    pair = ready_pair()
    stream = open_stream(pair, 3)
    media = os.urandom(1_000_000)
    pair.conn.send_init(stream, b"init")
    pair.conn.send_fragment(stream, media, now=1.0)
    pair.conn.receive_data(pair.hub.hello(), 1.0)  # a request answered while the media waits
    pair.conn.close_stream(stream, CloseReason.NORMAL)
    wire: list[bytes] = []
    while (left := pair.conn.outbox.unsealed_bytes) > 0:
        out = pair.conn.data_to_send(frames.SEAL_BATCH)
        assert len(out) == 1
        size = _sizes_on_wire(out)
        assert size <= frames.SEAL_BATCH
        assert pair.conn.outbox.unsealed_bytes == left - size
        wire.append(bytes(out[0]))
    assert pair.conn.data_to_send(frames.SEAL_BATCH) == []
    assert len(wire) == 4  # 4 chunks of media: the init rides with the first, the response and close with the last
    received = pair.hub.receive(wire)  # type: ignore[arg-type]
    assert [(m.header.kind, m.header.topic) for m in received] == (
        [(Kind.EVENT, "data")] * 5 + [(Kind.RESPONSE, "hello"), (Kind.EVENT, "close")])
    assert _media(received) == [media]


def test_a_frame_larger_than_the_limit_is_sealed_alone() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 3)
    pair.conn.send_init(stream, b"init")
    pair.conn.data_to_send()
    pair.conn.send_fragment(stream, os.urandom(300_000), now=1.0)
    first = pair.conn.data_to_send(1000)  # at least one frame, whatever the limit
    assert _sizes_on_wire(first) > 262_144
    second = pair.conn.data_to_send(1000)
    assert 300_000 - 262_144 < _sizes_on_wire(second) < 300_000 - 262_144 + 1000
    assert pair.conn.outbox.unsealed_bytes == 0


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["fragment", "request", "pull"]), st.integers(1, 700_000)),
                    min_size=1, max_size=30))
def test_any_mix_of_queueing_and_pulling_reaches_the_hub_intact(ops: list[tuple[str, int]]) -> None:
    """Fragments and requests queued, batches pulled with any limit in between: every batch is
    within its limit unless it is one frame, and the hub decodes every response and every
    fragment exactly as queued."""
    pair = ready_pair()
    stream = open_stream(pair, 3)
    pair.conn.send_init(stream, b"init")
    wire: list[bytes] = []
    fragments: list[bytes] = []
    requests = 0

    def pull(limit: int | None) -> None:
        before = pair.conn.outbox.unsealed_bytes
        out = pair.conn.data_to_send(limit)
        size = _sizes_on_wire(out)
        assert pair.conn.outbox.unsealed_bytes == before - size
        if limit is not None and size > limit:  # over the limit only as one frame alone
            reader = frames.FrameReader()
            reader.feed(out[0])
            assert reader.next_frame() is not None and reader.next_frame() is None
        wire.extend(bytes(b) for b in out)

    for op, number in ops:
        if op == "fragment":
            fragments.append(os.urandom(number))
            pair.conn.send_fragment(stream, fragments[-1], now=1.0)
        elif op == "request":
            pair.conn.receive_data(pair.hub.hello(), 1.0)
            requests += 1
        else:
            pull(number)
    pull(None)
    received = pair.hub.receive(wire)  # type: ignore[arg-type]
    assert sum(m.header.kind is Kind.RESPONSE for m in received) == requests
    assert _media(received) == fragments


def test_a_writable_buffer_is_copied_when_queued_and_a_read_only_one_is_not() -> None:
    """Sealing happens after the call returns, so a buffer its owner may change is copied at
    once; a read-only view (how a camera's fragments come) is kept as it is, without a copy."""
    pair = ready_pair()
    stream = open_stream(pair, 3)
    pair.conn.send_init(stream, b"init")
    writable = bytearray(os.urandom(10_000))
    sent = bytes(writable)
    pair.conn.send_fragment(stream, writable, now=1.0)
    writable[:] = bytes(len(writable))  # the owner reuses its buffer before anything was sealed
    owned = bytearray(os.urandom(10_000))
    view = memoryview(owned).toreadonly()
    pair.conn.send_fragment(stream, view, now=2.0)
    with pytest.raises(BufferError):  # the queued frame still refers to the caller's memory
        owned.extend(b"x")
    wire = [bytes(b) for b in pair.conn.data_to_send()]
    assert _fragments_received(pair, wire) == [sent, bytes(owned)]  # type: ignore[arg-type]


def test_dropping_what_is_unsent_releases_the_media() -> None:
    pair = ready_pair()
    stream = open_stream(pair, 3)
    pair.conn.send_init(stream, b"init")
    owned = bytearray(os.urandom(10_000))
    pair.conn.send_fragment(stream, memoryview(owned).toreadonly(), now=1.0)
    pair.conn.outbox.drop()
    assert pair.conn.outbox.unsealed_bytes == 0 and pair.conn.data_to_send() == []
    owned.extend(b"x")  # nothing refers to it any more
