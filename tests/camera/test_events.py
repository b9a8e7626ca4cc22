"""The camera event bus: every observer sees every event; a failing observer disturbs nobody."""

from __future__ import annotations

import logging

import pytest

from sidecar.camera.events import CameraEvent, EventBus, MotionChanged


def test_fan_out_and_unsubscribe() -> None:
    bus = EventBus()
    seen_a: list[CameraEvent] = []
    seen_b: list[CameraEvent] = []
    bus.subscribe(seen_a.append)
    unsubscribe = bus.subscribe(seen_b.append)
    first = MotionChanged(camera="Door", active=True, source="http")
    bus.emit(first)
    unsubscribe()
    unsubscribe()  # twice is harmless
    second = MotionChanged(camera="Door", active=False, source="timeout")
    bus.emit(second)
    assert seen_a == [first, second]
    assert seen_b == [first]


def test_failing_observer_is_logged_and_others_still_see_the_event(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[CameraEvent] = []

    def broken(event: CameraEvent) -> None:
        raise RuntimeError("observer bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    event = MotionChanged(camera="Door", active=True, source="mqtt")
    with caplog.at_level(logging.ERROR):
        bus.emit(event)
    assert seen == [event]
    assert "observer failed on MotionChanged" in caplog.text
