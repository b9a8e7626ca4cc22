"""The event journal on disk: what a restart brings back, the bounds, the file's mode, and a
damaged file set aside with one warning (real files in a temporary directory)."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.camera.events import MotionChanged, PipelineChanged, RecordingEnded, RecordingOpened
from sidecar.web.journal import CUT_BY_RESTART, MAX_AGE_S, MAX_ENTRIES, EventJournal
from sidecar.web.journal_store import JournalStore

NOW = 1_800_000_000.0


def _day(journal: EventJournal, start: float, motions: int) -> None:
    """``motions`` motions on "Door", each answered by a recording that ends normally."""
    for i in range(motions):
        at = start + 60 * i
        journal.observe(MotionChanged(camera="Door", at=at, active=True, source="http"))
        journal.observe(RecordingOpened(camera="Door", at=at + 1, stream_id=i + 1, selection="640x360@15"))
        journal.observe(RecordingEnded(camera="Door", at=at + 9, stream_id=i + 1, reason="NORMAL", reason_code=0,
                                       closed_by="hub", bytes_sent=1000 + i, fragments_sent=4, first_byte_s=0.2,
                                       prebuffer_s=4.0, duration_s=8.0))
        journal.observe(MotionChanged(camera="Door", at=at + 10, active=False, source="http"))


async def test_a_full_journal_comes_back_after_a_restart_with_its_verdicts(executor_joined: None,
                                                                          tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    before = EventJournal()
    _day(before, NOW - 60 * (MAX_ENTRIES + 20) - 100, MAX_ENTRIES + 20)
    before.observe(PipelineChanged(camera="Door", at=NOW - 5, state="restarting", error="connection refused",
                                   restart_in_s=2.0))
    before.observe(RecordingOpened(camera="Door", at=NOW - 2, stream_id=999, selection=None))  # open at the stop
    store = JournalStore(before, path, clock=lambda: NOW)
    store.changed()
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["events.json"]  # no temporary file left

    after = EventJournal()
    restored = await JournalStore(after, path, clock=lambda: NOW).load()
    assert restored == MAX_ENTRIES
    old, new = before.entries("Door"), after.entries("Door")
    assert [e.to_json(NOW) for e in old[1:]] == [e.to_json(NOW) for e in new[1:]]
    assert new[0].recordings[0].outcome == CUT_BY_RESTART  # it never ended: the restart cut it
    assert after.last_motion("Door") is not None and after.last_motion("Door").id == old[2].id  # type: ignore[union-attr]
    # New events get new ids, after the restored ones; a new recording is not counted under old motion.
    after.observe(RecordingOpened(camera="Door", at=NOW + 1, stream_id=1, selection=None))
    newest = after.entries("Door")[0]
    assert newest.kind == "recording" and newest.id > max(e.id for e in old)


async def test_entries_older_than_the_age_bound_are_not_kept(executor_joined: None, tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    journal = EventJournal()
    _day(journal, NOW - MAX_AGE_S - 600, 5)  # 5 motions a month and ten minutes ago
    _day(journal, NOW - 600, 2)
    store = JournalStore(journal, path, clock=lambda: NOW)
    store.changed()
    await store.close()
    after = EventJournal()
    assert await JournalStore(after, path, clock=lambda: NOW).load() == 2
    assert len(json.loads(path.read_bytes())["cameras"]["Door"]) == 2


@pytest.mark.parametrize("damage", [b"{not json", b"[]", b'{"format": 99, "cameras": {}}',
                                    b'{"format": 1, "cameras": {"Door": [{"kind": "motion"}]}}',
                                    b'{"format": 1, "cameras": {"Door": "x"}}', b"\xff\xfe"])
async def test_a_damaged_file_is_set_aside_with_one_warning(executor_joined: None, tmp_path: Path, damage: bytes,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(damage)
    journal = EventJournal()
    with caplog.at_level(logging.WARNING, logger="sidecar.web.journal_store"):
        assert await JournalStore(journal, path).load() == 0
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "damaged" in caplog.records[0].getMessage()
    assert not path.exists() and (tmp_path / "events.json.damaged").read_bytes() == damage
    assert journal.entries("Door") == []


async def test_no_file_is_an_empty_journal(executor_joined: None, tmp_path: Path) -> None:
    assert await JournalStore(EventJournal(), tmp_path / "events.json").load() == 0


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                               max_size=4), max_leaves=30))
def test_load_takes_any_json_without_crashing(data: object) -> None:
    """Whatever JSON the file holds, loading it restores entries or raises the errors the store
    catches, and a failed load leaves the journal empty."""
    journal = EventJournal()
    try:
        journal.load({"Door": data} if not isinstance(data, dict) else data, NOW)
    except (ValueError, KeyError, TypeError):
        assert all(journal.entries(name) == [] for name in list(journal.cameras()))
