"""The sealing pool shared by cameras: idle memory bounded by ``limit``, not by the camera count."""

from __future__ import annotations

import pytest

from sidecar.hds.frames import SEAL_BATCH, batch_bound, sealed_bound
from sidecar.hds.sealing_pool import SealingPool


def test_one_buffer_per_reserving_camera_up_to_the_limit() -> None:
    pool = SealingPool(limit=3)
    owners = [object() for _ in range(8)]
    for count, owner in enumerate(owners, start=1):
        pool.reserve(owner, 1_000_000)
        assert pool.idle == min(count, 3)
    assert all(len(b) == batch_bound(1_000_000) == SEAL_BATCH for b in pool._idle)  # a batch, not a fragment
    bytes_at_limit = pool.idle_bytes
    for owner in owners:  # asking again makes nothing more
        pool.reserve(owner, 1_000_000)
    assert pool.idle_bytes == bytes_at_limit


def test_every_buffer_fits_the_largest_batch_asked_for() -> None:
    pool = SealingPool(limit=4)
    small, large = object(), object()
    pool.reserve(small, 20_000)  # a camera with small fragments: a batch is its whole fragment
    assert pool.idle == 1 and pool.idle_bytes == sealed_bound(20_000)
    pool.reserve(large, 1_500_000)
    assert pool.idle == 2 and all(len(b) == SEAL_BATCH for b in pool._idle)


def test_a_lent_buffer_is_not_handed_out_twice_and_comes_back() -> None:
    pool = SealingPool(limit=2)
    a, b = object(), object()
    pool.reserve(a, 500_000)
    pool.reserve(b, 500_000)
    first, second = pool.take(), pool.take()
    assert first is not None and second is not None and first is not second
    assert pool.take() is None  # both lent: a third recording seals into fresh memory
    pool.give(a, first)
    pool.give(b, second)
    assert pool.idle == 2
    pool.give(a, bytearray(sealed_bound(500_000)))  # one more than wanted: the smallest goes
    assert pool.idle == 2


def test_a_recordings_buffer_is_kept_without_a_reservation() -> None:
    pool = SealingPool(limit=1)
    owner = object()
    buffer = bytearray(300_000)
    pool.give(owner, buffer)
    assert pool.take() is buffer


def test_a_closed_listener_gives_up_its_share() -> None:
    pool = SealingPool(limit=4)
    a, b = object(), object()
    pool.reserve(a, 400_000)
    pool.reserve(b, 400_000)
    pool.forget(a)
    assert pool.idle == 1
    pool.forget(b)
    assert pool.idle == 0 and pool.idle_bytes == 0


def test_a_limit_of_zero_keeps_nothing() -> None:
    pool = SealingPool(limit=0)
    owner = object()
    pool.reserve(owner, 400_000)
    pool.give(owner, bytearray(400_000))
    assert pool.idle == 0 and pool.take() is None
    with pytest.raises(ValueError):
        SealingPool(limit=-1)
