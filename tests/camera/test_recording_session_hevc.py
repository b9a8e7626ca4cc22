"""RecordingSession with an H.265 run, in memory with a fake clock: what the hub receives meets
every rule of a tvOS 27 hub (tests/hub/hevc_rules.py), the mdat is never copied, and an H.264
run goes out exactly as before (docs/h265.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sidecar.camera.recording.session import RecordingSession, SendFragment, SendInit, SourceView, Subscribe
from sidecar.media import MOVFLAGS, Fmp4Reader, Fragment, InitSegment
from tests.hub.hevc_rules import check_fragments, check_init, read_init

WALL = 1_800_000_000.0  # Unix time at monotonic 0 in this test


@pytest.fixture(scope="module")
def hevc_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[InitSegment, list[Fragment]]:
    out = tmp_path_factory.mktemp("hevc") / "run.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=32000", "-t", "13",
         "-map", "0:v", "-map", "1:a", "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-x265-params", "keyint=60:min-keyint=60:scenecut=0:bframes=0:log-level=error", "-tag:v", "hvc1",
         "-c:a", "aac", "-ac", "1", "-f", "mp4", "-movflags", MOVFLAGS, str(out)],
        check=True, timeout=120,
    )
    events = Fmp4Reader().feed(Path(out).read_bytes())
    assert isinstance(events[0], InitSegment)
    return events[0], [e for e in events[1:] if isinstance(e, Fragment)]


def _record(init: InitSegment, fragments: list[Fragment], *,
            prebuffered: int) -> tuple[list[bytes], list[SendFragment]]:
    """Open at t=100 with ``prebuffered`` fragments already there (arrived 4 s apart), then live ones."""
    session = RecordingSession(7, 100.0, prebuffer_ms=8000, wall_clock_offset_s=WALL)
    assert session.source_changed(SourceView(1, True), 100.0) == [Subscribe(8000)]
    arrived = tuple(100.0 - 4.0 * (prebuffered - i) for i in range(prebuffered))
    assert session.subscribed(1, prebuffered, 100.0, arrived) == []
    sent: list[bytes] = []
    actions: list[SendFragment] = []
    now = 100.0
    for action in session.item(init, now):
        assert isinstance(action, SendInit)
        sent.append(bytes(action.data))
    for index, fragment in enumerate(fragments):
        if index >= prebuffered:
            now += fragment.duration_s
        for action in session.item(fragment, now):
            if isinstance(action, SendFragment):
                actions.append(action)
                head, body = action.payload if isinstance(action.payload, tuple) else (b"", action.payload)
                sent.append(bytes(head) + bytes(body))
                session.sent(action, now)
    assert session.video_codec == "hvc1"
    return sent, actions


def test_an_hevc_recording_meets_every_hub_rule(hevc_run: tuple[InitSegment, list[Fragment]]) -> None:
    init, fragments = hevc_run
    sent, actions = _record(init, fragments[1:], prebuffered=1)  # the run's second fragment comes first
    parsed = read_init(sent[0])
    assert check_init(parsed) == []
    assert check_fragments(parsed, sent[1:], now=WALL + 100) == []
    for action, fragment in zip(actions, fragments[1:], strict=True):
        assert action.pieces is not None and action.pieces[1].obj is fragment.data.obj  # mdat not copied
        assert action.size == fragment.size + 32


def test_the_hub_rules_catch_an_unrewritten_hevc_fragment(hevc_run: tuple[InitSegment, list[Fragment]]) -> None:
    init, fragments = hevc_run
    parsed = read_init(init.data)
    problems = check_fragments(parsed, [bytes(f.data) for f in fragments[1:]], now=WALL)
    assert problems and all("not prft then moof" in p for p in problems)


def test_the_first_fragments_wall_clock_comes_from_its_arrival(hevc_run: tuple[InitSegment, list[Fragment]]) -> None:
    init, fragments = hevc_run
    sent, _ = _record(init, fragments, prebuffered=2)
    ntp = int.from_bytes(sent[1][16:24], "big")
    # Arrived at t=92 (two prebuffered fragments, 4 s apart before the open), lasting 4 s.
    assert ntp / 2**32 - 2_208_988_800 == pytest.approx(WALL + 92.0 - fragments[0].duration_s, abs=1e-6)
