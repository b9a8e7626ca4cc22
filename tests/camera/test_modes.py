"""Operating-mode persistence and the snapshot rules of docs/protocol.md §Snapshots, every combination."""

from __future__ import annotations

import itertools

import pytest

from sidecar.camera.settings import CameraSettings, snapshot_refusal


def test_round_trip_and_damage_tolerance() -> None:
    app: dict[str, object] = {}
    s = CameraSettings(recording_active=1, homekit_active=0, selection="AQI=", supported_hash="h")
    s.store(app)
    assert CameraSettings.load(app) == s
    assert CameraSettings.load({"camera": "garbage"}) == CameraSettings()
    assert CameraSettings.load({"camera": {"recording_active": 1, "unknown": 3}}).recording_active == 1
    s.factory_reset()
    assert s == CameraSettings()


def test_mode_names_follow_the_four_state_table() -> None:
    assert CameraSettings(homekit_active=0, rtp_active=0).mode_name == "off"
    assert CameraSettings(rtp_active=0).mode_name == "detect activity"
    assert CameraSettings().mode_name == "stream"
    assert CameraSettings(recording_active=1).mode_name == "stream and allow recording"


def expected(rtp: int, hk: int, event: int, periodic: int, reason: int | None) -> int | None:
    """The docs/protocol.md §Snapshots table, written out independently of the implementation's control flow."""
    rows = [
        (not rtp, -70412), (not hk, -70412),
        (not event and reason is None, -70401), (not event and reason == 1, -70412),
        (not periodic and reason is None, -70401), (not periodic and reason == 0, -70412),
    ]
    for condition, status in rows:
        if condition:
            return status
    return None


@pytest.mark.parametrize(("rtp", "hk", "event", "periodic", "reason"),
                         list(itertools.product((0, 1), (0, 1), (0, 1), (0, 1), (None, 0, 1))))
def test_snapshot_rules(rtp: int, hk: int, event: int, periodic: int, reason: int | None) -> None:
    s = CameraSettings(rtp_active=rtp, homekit_active=hk, event_snapshots=event, periodic_snapshots=periodic)
    got = snapshot_refusal(s, reason)
    assert (None if got is None else int(got)) == expected(rtp, hk, event, periodic, reason)
