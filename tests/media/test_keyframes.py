"""Keyframe-interval measurement and the copy-mode verdicts (sans-IO)."""

from __future__ import annotations

import pytest

from sidecar.media import GopVerdict, KeyframeMonitor

from .fakes import make_fragment, make_init


def run(monitor: KeyframeMonitor, durations: list[float], **kw: object) -> None:
    monitor.reset(make_init())
    t = 0.0
    for i, d in enumerate(durations):
        monitor.observe(make_fragment(i + 1, start_s=t, duration_s=d, **kw))  # type: ignore[arg-type]
        t += d


def test_unknown_until_enough_fragments() -> None:
    m = KeyframeMonitor()
    run(m, [4.0])
    assert m.verdict is GopVerdict.UNKNOWN  # the first fragment is ignored
    run(m, [4.0, 4.0])
    assert m.verdict is GopVerdict.OK


def test_four_second_gop_is_ok_with_one_frame_of_slack() -> None:
    m = KeyframeMonitor()
    run(m, [3.2, 4.0, 4.0 + 1 / 15, 4.0])
    assert m.verdict is GopVerdict.OK and m.advice() is None
    meas = m.measurement
    assert meas.keyframe_interval_s == pytest.approx(4.0 + 1 / 15)
    assert meas.fps == pytest.approx(15, rel=0.02)
    assert meas.bitrate_kbps == pytest.approx(1000 * 8 / 4.0 / 1000, rel=0.05)
    assert m.suggested_min_frag_duration_us() is None


def test_long_gop_is_flagged_with_the_fix() -> None:
    m = KeyframeMonitor()
    run(m, [10.0, 10.0, 10.0])
    assert m.verdict is GopVerdict.TOO_LONG
    advice = m.advice()
    assert advice is not None and "I-frame" in advice and "4 s" in advice


def test_short_gops_get_a_merge_suggestion() -> None:
    m = KeyframeMonitor()
    run(m, [2.0] * 4)
    assert m.verdict is GopVerdict.SHORT
    assert m.suggested_min_frag_duration_us() == 3_000_000
    run(m, [1.0] * 4)
    assert m.suggested_min_frag_duration_us() == 3_500_000


def test_merged_fragments_with_inner_keyframes_are_ok() -> None:
    m = KeyframeMonitor()
    run(m, [4.0] * 4, gop_s=2.0)  # -min_frag_duration merged two 2 s GOPs
    assert m.measurement.keyframe_interval_s == pytest.approx(2.0)
    assert m.verdict is GopVerdict.OK


def test_fragments_not_starting_on_a_keyframe() -> None:
    m = KeyframeMonitor()
    run(m, [4.0] * 4, keyframe=False, gop_s=1.5)
    assert m.verdict is GopVerdict.NOT_KEYFRAME_ALIGNED
    assert m.advice() is not None
