"""The restart schedule (sans-IO) with a fake clock: backoff, jitter, reset, outages."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.media import RestartSchedule


def test_backoff_doubles_from_1_s_to_60_s_without_jitter() -> None:
    schedule = RestartSchedule(1.0, 60.0, jitter=0.0)
    now = 0.0
    delays = []
    for _ in range(9):
        end = schedule.run_ended(now, "connection refused")
        assert end.next_start_at == now + end.delay_s  # what the log prints is when it happens
        delays.append(end.delay_s)
        now = end.next_start_at + 0.05  # the next attempt fails 50 ms after it starts
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_jitter_only_shortens_and_stays_within_bounds() -> None:
    rands = itertools.cycle([0.0, 0.5, 0.999])
    schedule = RestartSchedule(1.0, 60.0, jitter=0.2, rand=lambda: next(rands))
    now = 0.0
    for failure in range(12):
        base = min(60.0, 2.0**failure)
        end = schedule.run_ended(now, "x")
        assert 0.8 * base - 1e-9 <= end.delay_s <= base
        now = end.next_start_at


@given(st.lists(st.tuples(st.floats(0, 0.999999), st.booleans()), max_size=60))
def test_any_sequence_of_failures_and_recoveries_keeps_delays_in_1_to_60_s(events: list[tuple[float, bool]]) -> None:
    values = iter([r for r, _ in events])
    schedule = RestartSchedule(1.0, 60.0, jitter=0.2, rand=lambda: next(values))
    now = 0.0
    for _, healthy_before in events:
        if healthy_before:
            schedule.healthy(now)
        end = schedule.run_ended(now, "x")
        assert 0.8 <= end.delay_s <= 60.0
        if healthy_before:
            assert end.delay_s <= 1.0 and end.outage_started  # reset by the healthy run
        now = end.next_start_at


def test_a_healthy_run_resets_the_backoff_and_closes_the_outage() -> None:
    schedule = RestartSchedule(1.0, 60.0, jitter=0.0)
    assert schedule.healthy(0.0) is None  # no outage open: nothing to report
    first = schedule.run_ended(10.0, "the source ended the stream")
    assert first.outage_started and first.worth_logging and first.attempt == 1
    second = schedule.run_ended(11.0, "connection refused")
    assert not second.outage_started and second.cause_changed and second.worth_logging
    quiet = [schedule.run_ended(t, "connection refused") for t in (13.0, 17.0, 25.0, 41.0)]
    assert not any(e.worth_logging for e in quiet)
    assert [e.delay_s for e in quiet] == [4, 8, 16, 32]
    assert schedule.remaining(41.0) == 32 and schedule.remaining(80.0) == 0
    recovery = schedule.healthy(75.0)
    assert recovery is not None
    assert (recovery.outage_s, recovery.attempts, recovery.last_cause) == (65.0, 6, "connection refused")
    again = schedule.run_ended(100.0, "connection refused")
    assert again.delay_s == 1.0 and again.outage_started  # a new outage starts from 1 s


def test_a_60_s_outage_costs_a_handful_of_attempts_and_one_line() -> None:
    """The issue's storm: 650 ffmpegs in 40 s. With the schedule: at most 7 in 60 s."""
    schedule = RestartSchedule(1.0, 60.0, jitter=0.2, rand=lambda: 0.999999)  # shortest delays
    now, attempts, lines = 0.0, 0, 0
    while now < 60.0:
        attempts += 1
        end = schedule.run_ended(now + 0.05, "connection refused")  # each attempt fails in 50 ms
        lines += end.worth_logging
        now = end.next_start_at
    assert attempts <= 7 and lines == 1


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RestartSchedule(0.0, 60.0)
    with pytest.raises(ValueError):
        RestartSchedule(2.0, 1.0)
    with pytest.raises(ValueError):
        RestartSchedule(1.0, 60.0, jitter=1.0)
