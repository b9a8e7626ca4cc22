"""Prebuffer ring and live subscriptions, sans-IO with a fake clock (plus the asyncio wrapper)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.media import (
    Fragment,
    InitSegment,
    Prebuffer,
    PrebufferNotReady,
    PrebufferSubscription,
    SubscriptionClosed,
    SubscriptionEnd,
)
from sidecar.media.prebuffer import KEYFRAME_SEARCH_S

from .fakes import make_fragment, make_init


def fill(pb: Prebuffer, count: int, *, t0: float = 100.0, duration: float = 4.0, **kw: object) -> float:
    now = t0
    for i in range(count):
        now = t0 + (i + 1) * duration
        pb.push(make_fragment(i + 1, start_s=i * duration, duration_s=duration, **kw), now)  # type: ignore[arg-type]
    return now


def test_generation_and_init() -> None:
    pb = Prebuffer()
    assert pb.fragments_since(4000, 0.0) is None
    with pytest.raises(PrebufferNotReady):
        pb.push(make_fragment(1, start_s=0), 0.0)
    init = make_init()
    assert pb.start_generation(init, 1.0) == 1
    assert pb.init is init
    assert pb.start_generation(make_init(tag=b"2"), 2.0) == 2


@pytest.mark.parametrize(("serve_ms", "held", "served_late"), [(4000, [10], [10]), (8000, [9, 10], [9, 10]),
                                                           (6000, [9, 10], [9, 10])])
def test_the_ring_holds_exactly_what_its_request_reaches(
        serve_ms: int, held: list[int], served_late: list[int]) -> None:
    """A recording is sent the selected prebuffer: 4 s (what hubs select) is the newest 4 s
    fragment, 8 s the newest two, 6 s two as well. Anything older (1 MB per camera per fragment at
    2 Mbps) could never be sent, so the ring does not keep it."""
    pb = Prebuffer(serve_ms=serve_ms)
    pb.start_generation(make_init(), 100.0)
    now = fill(pb, 10)
    assert [f.sequence_number for f in pb.fragments()] == held
    snap = pb.fragments_since(serve_ms, now + 3.9)  # the next fragment is nearly complete
    assert snap is not None and [f.sequence_number for f in snap.fragments] == served_late


def test_a_newest_fragment_that_does_not_start_on_a_keyframe_keeps_the_one_before() -> None:
    """The walk back goes on to a keyframe, so the ring keeps the fragment it ends on; and a
    source that never sends one is bounded by age, not by its caps alone."""
    pb = Prebuffer(serve_ms=4000)
    pb.start_generation(make_init(), 100.0)
    now = fill(pb, 9)
    pb.push(make_fragment(10, start_s=36.0, keyframe=False), now + 4.0)
    assert [f.sequence_number for f in pb.fragments()] == [9, 10]
    snap = pb.fragments_since(4000, now + 4.0)
    assert snap is not None and [f.sequence_number for f in snap.fragments] == [9, 10]
    none = Prebuffer(serve_ms=4000)
    none.start_generation(make_init(), 100.0)
    fill(none, 30, keyframe=False)
    assert none.duration_s <= 4.0 + KEYFRAME_SEARCH_S + 4.0 and none.fragments_since(4000, 300.0) is None


def test_a_larger_request_fills_the_ring_as_fragments_come_and_a_smaller_one_empties_it() -> None:
    pb = Prebuffer(serve_ms=4000)
    pb.start_generation(make_init(), 100.0)
    now = fill(pb, 5)
    pb.serve_ms = 8000
    assert not pb.ready(8000, now)  # what went is not brought back
    pb.push(make_fragment(6, start_s=20.0), now + 4.0)
    assert pb.ready(8000, now + 4.0) and pb.fragment_count == 2
    pb.serve_ms = 4000
    pb.push(make_fragment(7, start_s=24.0), now + 8.0)
    assert [f.sequence_number for f in pb.fragments()] == [7]


@settings(max_examples=300, deadline=None)
@given(serve_ms=st.integers(4000, 30000),
       fragments=st.lists(st.tuples(st.floats(0.5, 10.0), st.booleans()), min_size=12, max_size=40))
def test_the_ring_serves_its_request_in_full_and_holds_nothing_it_does_not_reach(
        serve_ms: int, fragments: list[tuple[float, bool]]) -> None:
    """Whatever the fragments' lengths, and whether each starts on a keyframe: after each
    fragment, whenever the media so far can serve ``serve_ms`` in full from a keyframe, the ring
    does, and its oldest fragment is one the request is sent (nothing held that no hub gets)."""
    pb = Prebuffer(serve_ms=serve_ms, stale_after_s=1e9)
    pb.start_generation(make_init(), 0.0)
    now, start = 0.0, 0.0
    pushed: list[tuple[float, bool]] = []
    for i, (d, keyframe) in enumerate(fragments):
        now += d
        pb.push(make_fragment(i + 1, start_s=start, duration_s=d, keyframe=keyframe), now)
        start += d
        pushed.append((d, keyframe))
        span, servable = 0.0, False  # could all the media so far serve the request, within the age bound?
        for dur, kf in reversed(pushed):
            span += dur
            if kf and span * 1000 >= serve_ms:
                servable = span - dur < serve_ms / 1000 + KEYFRAME_SEARCH_S
                break
        snap = pb.fragments_since(serve_ms, now)
        if servable:
            assert snap is not None and snap.duration_s * 1000 >= serve_ms - 1e-6
            assert snap.fragments[0] is pb.fragments()[0]


def test_ring_byte_and_count_caps() -> None:
    pb = Prebuffer(serve_ms=1_000_000, max_bytes=5000, max_fragments=64)
    pb.start_generation(make_init(), 0.0)
    fill(pb, 20, size=1000)  # type: ignore[arg-type]
    assert pb.bytes <= 5000 and pb.fragment_count == 5
    pb = Prebuffer(serve_ms=1_000_000, max_fragments=3)
    pb.start_generation(make_init(), 0.0)
    fill(pb, 20, duration=0.0)
    assert pb.fragment_count == 3


def test_fragments_since_covers_the_span_from_a_keyframe() -> None:
    pb = Prebuffer()
    pb.start_generation(make_init(), 0.0)
    now = 0.0
    # 2 s fragments; every other one starts on a keyframe (a 4 s GOP merged differently).
    for i in range(8):
        now = (i + 1) * 2.0
        pb.push(make_fragment(i + 1, start_s=i * 2.0, duration_s=2.0, keyframe=(i % 2 == 0)), now)
    snap = pb.fragments_since(4000, now)
    assert snap is not None and snap.generation == 1
    assert [f.sequence_number for f in snap.fragments] == [7, 8]
    snap = pb.fragments_since(5000, now)
    assert snap is not None
    assert [f.sequence_number for f in snap.fragments] == [5, 6, 7, 8]
    assert snap.fragments[0].keyframe and snap.duration_s == pytest.approx(8.0)
    assert snap.size == len(snap.init.data) + 4000
    assert pb.ready(4000, now)


def test_fragments_since_while_filling_and_when_stale() -> None:
    pb = Prebuffer(stale_after_s=8.0)
    pb.start_generation(make_init(), 0.0)
    pb.push(make_fragment(1, start_s=0.0), 4.0)
    snap = pb.fragments_since(8000, 4.0)
    assert snap is not None and len(snap.fragments) == 1
    assert not pb.ready(8000, 4.0) and pb.ready(4000, 4.0)
    # Nothing new for a long time: the old fragment no longer describes "the last 4 s".
    assert pb.fragments_since(4000, 4.0 + 4.0 + 8.0 + 0.1) is None
    # No keyframe-started fragment at all: nothing to serve.
    pb2 = Prebuffer()
    pb2.start_generation(make_init(), 0.0)
    pb2.push(make_fragment(1, start_s=0.0, keyframe=False), 4.0)
    assert pb2.fragments_since(4000, 4.0) is None
    with pytest.raises(PrebufferNotReady):
        pb2.subscribe(4000, 4.0)


def test_subscription_gets_init_prebuffer_then_live() -> None:
    pb = Prebuffer()
    init = make_init()
    pb.start_generation(init, 0.0)
    now = fill(pb, 3)
    sub = pb.subscribe(4000, now)
    items = [sub.pop(), sub.pop()]
    assert items[0] is init
    assert isinstance(items[1], Fragment) and items[1].sequence_number == 3
    assert sub.pop() is None
    pb.push(make_fragment(4, start_s=12.0), now + 4)
    item = sub.pop()
    assert isinstance(item, Fragment) and item.sequence_number == 4
    sub.close()
    assert sub.close_reason is SubscriptionEnd.CLOSED and pb.subscriber_count == 0
    pb.push(make_fragment(5, start_s=16.0), now + 8)
    assert sub.pop() is None


def test_slow_consumer_is_closed_and_its_queue_dropped() -> None:
    pb = Prebuffer()
    pb.start_generation(make_init(), 0.0)
    now = fill(pb, 2)
    sub = pb.subscribe(4000, now, max_pending=4)
    for i in range(3):
        pb.push(make_fragment(10 + i, start_s=100.0 + 4 * i), now + 4 * (i + 1))
    assert not sub.closed and sub.pending == 4
    pb.push(make_fragment(20, start_s=200.0), now + 20)
    assert sub.close_reason is SubscriptionEnd.SLOW_CONSUMER
    assert sub.pending == 0 and sub.pending_bytes == 0 and sub.pop() is None
    assert pb.subscriber_count == 0
    # Byte bound as well.
    sub = pb.subscribe(4000, now + 20, max_pending=100, max_pending_bytes=2500)
    pb.push(make_fragment(21, start_s=204.0, size=2000), now + 24)
    assert sub.close_reason is SubscriptionEnd.SLOW_CONSUMER


def test_new_generation_closes_old_subscribers() -> None:
    pb = Prebuffer()
    pb.start_generation(make_init(), 0.0)
    now = fill(pb, 2)
    sub = pb.subscribe(4000, now)
    pb.start_generation(make_init(tag=b"new"), now + 1)
    assert sub.close_reason is SubscriptionEnd.NEW_GENERATION and sub.pop() is None
    assert pb.fragment_count == 0 and pb.generation == 2
    pb.reset()
    assert pb.init is None and pb.fragments_since(4000, now) is None


async def test_live_subscription_async() -> None:
    pb = Prebuffer()
    init = make_init()
    pb.start_generation(init, 0.0)
    now = fill(pb, 2)
    live = PrebufferSubscription(pb.subscribe(4000, now, max_pending=8))
    got: list[InitSegment | Fragment] = []

    async def consume() -> None:
        async for item in live:
            got.append(item)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    for i in range(3):
        pb.push(make_fragment(10 + i, start_s=50.0 + 4 * i), now + i)
        await asyncio.sleep(0)
    pb.reset(SubscriptionEnd.STOPPED)
    async with asyncio.timeout(2):
        await task
    assert got[0] is init
    assert [f.sequence_number for f in got[1:] if isinstance(f, Fragment)] == [2, 10, 11, 12]
    assert live.close_reason is SubscriptionEnd.STOPPED
    with pytest.raises(SubscriptionClosed) as info:
        await live.get()
    assert info.value.reason is SubscriptionEnd.STOPPED


async def test_live_subscription_context_manager_unsubscribes() -> None:
    pb = Prebuffer()
    pb.start_generation(make_init(), 0.0)
    now = fill(pb, 1)
    async with PrebufferSubscription(pb.subscribe(4000, now)) as live:
        assert isinstance(await live.get(), InitSegment)
        assert pb.subscriber_count == 1
    assert pb.subscriber_count == 0 and live.close_reason is SubscriptionEnd.CLOSED
