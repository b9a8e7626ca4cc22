"""The shared connection limiter, in memory with a fake clock: who is evicted, who is refused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sidecar.connection_limiter import Admission, ConnectionLimiter


def test_admits_until_full_then_evicts_the_oldest_unverified() -> None:
    limiter: ConnectionLimiter[int] = ConnectionLimiter(3)
    assert limiter.opened(1, "a", 0.0) == Admission(admitted=True)
    assert limiter.opened(2, "b", 1.0).evict is None
    assert limiter.opened(3, "c", 2.0).evict is None
    answer = limiter.opened(4, "d", 3.0)
    assert answer.admitted and answer.evict == 1 and answer.warn
    assert len(limiter) == 3 and 1 not in limiter and 4 in limiter
    assert limiter.evictions == 1


def test_the_busiest_peer_evicts_its_own_oldest_and_other_hosts_stay() -> None:
    limiter: ConnectionLimiter[str] = ConnectionLimiter(4)
    limiter.opened("hub", "10.0.0.2", 0.0)
    limiter.verified("hub")
    limiter.opened("other", "10.0.0.3", 0.5)  # unverified, but alone on its host
    limiter.opened("f1", "10.0.0.66", 1.0)
    limiter.opened("f2", "10.0.0.66", 2.0)
    evicted = [limiter.opened(f"f{n}", "10.0.0.66", 2.0 + n).evict for n in range(3, 53)]
    assert evicted == [f"f{n}" for n in range(1, 51)]
    assert "hub" in limiter and "other" in limiter
    # A newcomer from a third host evicts the flood's oldest, never the verified one.
    assert limiter.opened("new", "10.0.0.9", 100.0).evict == "f51"


def test_equal_peers_give_up_the_oldest_connection() -> None:
    limiter: ConnectionLimiter[int] = ConnectionLimiter(2)
    limiter.opened(1, "b", 5.0)
    limiter.opened(2, "a", 1.0)  # older, though it came in second (clocks are the adapter's)
    assert limiter.opened(3, "c", 6.0).evict == 2


def test_all_verified_refuses_the_newcomer() -> None:
    limiter: ConnectionLimiter[int] = ConnectionLimiter(2)
    for key in (1, 2):
        limiter.opened(key, "hub", 0.0)
        limiter.verified(key)
    assert limiter.opened(3, "flood", 1.0) == Admission(admitted=False)
    assert 3 not in limiter and len(limiter) == 2 and limiter.evictions == 0
    limiter.closed(1)
    limiter.closed(1)  # idempotent
    assert limiter.opened(3, "flood", 2.0) == Admission(admitted=True)


def test_warns_on_the_first_eviction_and_then_every_hundredth() -> None:
    limiter: ConnectionLimiter[int] = ConnectionLimiter(1)
    limiter.opened(0, "flood", 0.0)
    warned = [n for n in range(1, 302) if limiter.opened(n, "flood", float(n)).warn]
    assert warned == [1, 101, 201, 301]
    assert limiter.evictions == 301


def test_verifying_or_closing_an_unknown_key_is_harmless() -> None:
    limiter: ConnectionLimiter[int] = ConnectionLimiter(1)
    limiter.verified(7)
    limiter.closed(7)
    assert len(limiter) == 0


@given(st.lists(st.tuples(st.sampled_from(["open", "verify", "close"]), st.integers(0, 30),
                          st.sampled_from(["a", "b", None])), max_size=200),
       st.integers(1, 6))
def test_never_over_capacity_and_never_evicts_a_verified_connection(
        ops: list[tuple[str, int, str | None]], capacity: int) -> None:
    limiter: ConnectionLimiter[int] = ConnectionLimiter(capacity)
    live: set[int] = set()
    verified: set[int] = set()
    for now, (op, key, peer) in enumerate(ops):
        if op == "open" and key not in live:
            answer = limiter.opened(key, peer, float(now))
            if answer.evict is not None:
                assert answer.evict in live and answer.evict not in verified
                live.discard(answer.evict)
            if answer.admitted:
                live.add(key)
            else:
                assert len(verified) == capacity
        elif op == "verify" and key in live:
            limiter.verified(key)
            verified.add(key)
        elif op == "close":
            limiter.closed(key)
            live.discard(key)
            verified.discard(key)
        assert len(limiter) == len(live) <= capacity
