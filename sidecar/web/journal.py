"""The event journal: what happened to each camera, correlated into answers (sans-IO).

The question users ask most is "motion, but no clip in the Home app: why?" (docs/field-lessons.md §What users ask for).
The camera's raw events (motion rose, a hub opened a recording, it ended with reason 6 after
1.2 MB) do not answer it on their own; put together, they do. The journal follows
``Camera.events`` and keeps, per camera, the last :data:`MAX_ENTRIES` entries:

* a **motion entry** per motion event: when it rose and cleared and from which source, the
  recordings hubs opened for it (a recording opened while motion is up, or within
  :data:`OPEN_WINDOW_S` of its start, belongs to it), and for each recording how it ended;
* a **recording entry** for a recording no motion explains (a hub may open one on its own);
* **notes**: ffmpeg state changes, pairings, wrong setup codes, doorbell presses.

Nothing here does I/O or reads a clock except through the events' own timestamps and the
``now`` passed to :meth:`EventJournal.entries`, so the correlation rules are tested in memory.
:meth:`EventJournal.dump` and :meth:`EventJournal.load` turn the entries into plain JSON data and
back, so that :mod:`.journal_store` can keep them across restarts (the question is asked after
a restart as often as before it). A recording that was still open when the data was dumped is
restored as cut short by the restart.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..camera.events import (
    CameraEvent,
    DoorbellPressed,
    MotionChanged,
    PairingChanged,
    PipelineChanged,
    RecordingEnded,
    RecordingOpened,
    SetupCodeRejected,
)

__all__ = [
    "MAX_AGE_S",
    "MAX_ENTRIES",
    "NO_HUB_WAIT_S",
    "EventJournal",
    "JournalEntry",
    "RecordingRecord",
    "describe_end",
]

MAX_ENTRIES = 100
MAX_AGE_S = 30 * 86_400.0  # entries older than this are not kept across a restart
CUT_BY_RESTART = "the sidecar stopped (or restarted) while this recording was open"
OPEN_WINDOW_S = 15.0  # a hub opens within a few seconds of motion; later opens still count if motion is up
NO_HUB_WAIT_S = 10.0  # after this long without an open, say that no hub asked

NO_HUB = ("no hub asked for this motion: is the camera in Stream & Allow Recording mode, is a home hub "
          "(Apple TV or HomePod) on the same subnet, and has it selected a recording configuration?")

# (reason, closed_by) -> words. ``closed_by``: hub, accessory (the sidecar), connection (the hub
# vanished), ack (the hub acknowledged the end of the stream).
_END_WORDS: dict[tuple[str, str], str] = {
    ("NORMAL", "hub"): "the hub closed normally",
    ("NORMAL", "ack"): "the hub acknowledged the end of the stream",
    ("NORMAL", "accessory"): "the sidecar ended it at the maximum event length",
    ("NOT_ALLOWED", "accessory"): "the camera was switched off (or recording turned off) in the Home app",
    ("CANCELLED", "accessory"): "the sidecar cancelled it: ffmpeg restarted, the source changed, or the sidecar "
                                "stopped",
    ("CANCELLED", "hub"): "the hub cancelled it",
    ("TIMEOUT", "accessory"): "the hub stopped reading",
    ("TIMEOUT", "hub"): "the hub gave up waiting for media (no data for several seconds)",
    ("UNEXPECTED_FAILURE", "accessory"): "the prebuffer was not ready (ffmpeg still starting)",
    ("UNEXPECTED_FAILURE", "hub"): "the hub reported an unexpected failure",
    ("BUSY", "accessory"): "another recording was running",
    ("INVALID_CONFIGURATION", "accessory"): "the hub has not selected a recording configuration",
    ("BAD_DATA", "hub"): "the hub could not use the media (bad data): check the codec and keyframes",
    ("PROTOCOL_ERROR", "hub"): "the hub reported a protocol error",
}


def describe_end(reason: str, closed_by: str, detail: str = "") -> str:
    """How a recording ended, in plain words.

    When the sidecar closed the stream, its own ``detail`` is the most specific cause ("ffmpeg
    restarted mid-clip"). When the hub closed it or vanished, the words come from the reason.
    """
    if closed_by == "connection":
        return "the hub vanished: its connection dropped mid-stream (network, hub restart or sleep)"
    if closed_by == "accessory" and detail:
        return detail
    words = _END_WORDS.get((reason, closed_by))
    if words is not None:
        return words
    if detail:
        return detail
    who = {"hub": "the hub", "accessory": "the sidecar", "ack": "the hub"}.get(closed_by, closed_by or "someone")
    return f"{who} closed it with reason {reason}"


@dataclass
class RecordingRecord:
    """One recording a hub opened, and (once over) how it ended."""

    stream_id: int
    opened_at: float
    selection: str | None
    ended: RecordingEnded | None = None
    cut_by_restart: bool = False  # still open when the sidecar stopped: its end was never seen

    @property
    def outcome(self) -> str:
        if self.ended is None:
            return CUT_BY_RESTART if self.cut_by_restart else "recording now"
        e = self.ended
        return describe_end(e.reason, e.closed_by, e.detail)

    def to_json(self) -> dict[str, Any]:
        e = self.ended
        return {
            "stream_id": self.stream_id,
            "opened_at": self.opened_at,
            "selection": self.selection,
            "ended_at": e.at if e else None,
            "reason": e.reason if e else None,
            "reason_code": e.reason_code if e else None,
            "closed_by": e.closed_by if e else None,
            "bytes_sent": e.bytes_sent if e else None,
            "fragments_sent": e.fragments_sent if e else None,
            "first_byte_s": e.first_byte_s if e else None,
            "prebuffer_s": e.prebuffer_s if e else None,
            "duration_s": e.duration_s if e else None,
            "outcome": self.outcome,
        }

    def dump(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "opened_at": self.opened_at, "selection": self.selection,
                "ended": None if self.ended is None else _event_fields(self.ended)}

    @classmethod
    def load(cls, camera: str, data: dict[str, Any]) -> RecordingRecord:
        ended = data["ended"]
        return cls(int(data["stream_id"]), float(data["opened_at"]), _opt_str(data["selection"]),
                   None if ended is None else RecordingEnded(camera=camera, **_checked_end(ended)),
                   cut_by_restart=ended is None)


@dataclass
class JournalEntry:
    """One line of a camera's event list: a motion, a recording without motion, or a note."""

    id: int
    kind: str  # "motion", "recording", "note"
    at: float  # wall clock of the start
    source: str = ""  # motion source
    ended_at: float | None = None  # motion cleared
    recordings: list[RecordingRecord] = field(default_factory=list)
    mode: str | None = None  # the camera's mode when motion rose
    text: str = ""  # notes

    def verdict(self, now: float) -> str:
        """The answer for this entry, in plain words."""
        if self.kind == "note":
            return self.text
        if self.recordings:
            return "; ".join(r.outcome for r in self.recordings)
        if now - self.at < NO_HUB_WAIT_S:
            return "waiting for a hub to open a recording"
        if self.mode is not None and self.mode != "Stream & Allow Recording":
            return (f"no hub asked for this motion: the camera was in {self.mode} mode; the Home app must set "
                    "Stream & Allow Recording for clips")
        return NO_HUB

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "at": self.at,
            "source": self.source or None,
            "ended_at": self.ended_at,
            "mode": self.mode,
            "recordings": [r.to_json() for r in self.recordings],
            "verdict": self.verdict(now),
        }

    def dump(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, "source": self.source, "ended_at": self.ended_at,
                "recordings": [r.dump() for r in self.recordings], "mode": self.mode, "text": self.text}

    @classmethod
    def load(cls, camera: str, data: dict[str, Any]) -> JournalEntry:
        kind = data["kind"]
        if kind not in ("motion", "recording", "note"):
            raise ValueError(f"unknown entry kind {kind!r}")
        ended_at = data["ended_at"]
        return cls(int(data["id"]), kind, float(data["at"]), source=str(data["source"]),
                   ended_at=None if ended_at is None else float(ended_at),
                   recordings=[RecordingRecord.load(camera, r) for r in data["recordings"]],
                   mode=_opt_str(data["mode"]), text=str(data["text"]))


def _event_fields(event: RecordingEnded) -> dict[str, Any]:
    fields = asdict(event)
    del fields["camera"]
    return fields


_END_TYPES: dict[str, tuple[type, ...]] = {
    "at": (int, float), "stream_id": (int,), "reason": (str,), "reason_code": (int, type(None)),
    "closed_by": (str,), "detail": (str,), "bytes_sent": (int,), "fragments_sent": (int,),
    "first_byte_s": (int, float, type(None)), "prebuffer_s": (int, float, type(None)), "duration_s": (int, float),
    "video_codec": (str, type(None)),
}
#: Fields a journal written by an older version lacks (they take their default).
_END_OPTIONAL = frozenset({"video_codec"})


def _checked_end(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not set(_END_TYPES) - _END_OPTIONAL <= set(data) <= set(_END_TYPES):
        raise ValueError("a recording's end has unexpected fields")
    checked: dict[str, Any] = {"video_codec": None}
    checked.update(data)
    for key, types in _END_TYPES.items():
        if not isinstance(checked[key], types) or isinstance(checked[key], bool):
            raise ValueError(f"a recording's {key} has the wrong type")
    return checked


def _opt_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("expected text")
    return value


class _CameraJournal:
    def __init__(self, mode_of: Callable[[], str | None]) -> None:
        self.entries: deque[JournalEntry] = deque(maxlen=MAX_ENTRIES)
        self.mode_of = mode_of
        self.motion: JournalEntry | None = None  # the latest motion entry (open or recently cleared)
        self.open: dict[int, RecordingRecord] = {}
        self.restart_due: float | None = None  # wall clock of ffmpeg's next start while it backs off
        self.pipeline_failed = False  # the last stop needs the user (a wrong password, a missing file)


class EventJournal:
    """Per-camera journal. Feed it every camera event with :meth:`observe`."""

    def __init__(self) -> None:
        self._cameras: dict[str, _CameraJournal] = {}
        self._ids = itertools.count(1)

    def add_camera(self, name: str, mode_of: Callable[[], str | None] = lambda: None) -> None:
        """``mode_of`` tells the camera's mode at the time motion rises (for the verdict)."""
        self._cameras.setdefault(name, _CameraJournal(mode_of))

    def _note(self, cam: _CameraJournal, event: CameraEvent, text: str) -> None:
        cam.entries.append(JournalEntry(next(self._ids), "note", event.at, text=text))

    def observe(self, event: CameraEvent) -> None:
        cam = self._cameras.get(event.camera)
        if cam is None:
            self.add_camera(event.camera)
            cam = self._cameras[event.camera]
        if isinstance(event, MotionChanged):
            self._motion(cam, event)
        elif isinstance(event, RecordingOpened):
            self._opened(cam, event)
        elif isinstance(event, RecordingEnded):
            record = cam.open.pop(event.stream_id, None)
            if record is None:  # an end without its open (journal attached late): keep the facts
                record = RecordingRecord(event.stream_id, event.at - event.duration_s, None)
                cam.entries.append(JournalEntry(next(self._ids), "recording", record.opened_at,
                                                recordings=[record]))
            record.ended = event
        elif isinstance(event, PipelineChanged):
            cam.restart_due = event.at + event.restart_in_s if event.restart_in_s is not None else None
            cam.pipeline_failed = event.state == "failed"
            text = f"ffmpeg {event.state}"
            if event.error:
                text += f": {event.error}"
            if event.restart_in_s is not None:
                text += f" (restarting in {event.restart_in_s:.0f} s)"
            self._note(cam, event, text)
        elif isinstance(event, PairingChanged):
            role = "admin" if event.admin else "not admin"
            self._note(cam, event, f"controller {event.controller} {'paired' if event.added else 'removed'} ({role})"
                       + ("" if event.paired else "; the camera is now unpaired"))
        elif isinstance(event, SetupCodeRejected):
            self._note(cam, event, f"wrong setup code entered ({event.failed_attempts} failed attempt(s))")
        elif isinstance(event, DoorbellPressed):
            self._note(cam, event, f"doorbell pressed ({event.source})")

    def _motion(self, cam: _CameraJournal, event: MotionChanged) -> None:
        if event.active:
            entry = JournalEntry(next(self._ids), "motion", event.at, source=event.source, mode=cam.mode_of())
            cam.entries.append(entry)
            cam.motion = entry
        elif cam.motion is not None and cam.motion.ended_at is None:
            cam.motion.ended_at = event.at

    def _opened(self, cam: _CameraJournal, event: RecordingOpened) -> None:
        record = RecordingRecord(event.stream_id, event.at, event.selection)
        cam.open[event.stream_id] = record
        motion = cam.motion
        if motion is not None and (
                motion.ended_at is None or event.at - motion.at <= OPEN_WINDOW_S):
            motion.recordings.append(record)
            return
        cam.entries.append(JournalEntry(next(self._ids), "recording", event.at, recordings=[record]))

    def dump(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """Every camera's entries younger than :data:`MAX_AGE_S`, oldest first, as JSON data."""
        return {name: [e.dump() for e in cam.entries if now - e.at <= MAX_AGE_S]
                for name, cam in self._cameras.items()}

    def load(self, data: Any, now: float) -> int:
        """Put back what :meth:`dump` gave; returns the number of entries restored. Raises
        ValueError (or KeyError, TypeError) on malformed data, leaving the journal as it was.
        Entries already observed are newer and stay after the restored ones; a restored motion
        is never the current one that a new recording is counted under."""
        if not isinstance(data, dict):
            raise ValueError("the journal is not a JSON object")
        restored: dict[str, list[JournalEntry]] = {}
        for name, items in data.items():
            if not isinstance(name, str) or not isinstance(items, list):
                raise ValueError("a camera's entries are not a list")
            entries = [JournalEntry.load(name, item) for item in items]
            restored[name] = [e for e in entries if now - e.at <= MAX_AGE_S][-MAX_ENTRIES:]
        top = 0
        for name, entries in restored.items():
            self.add_camera(name)
            cam = self._cameras[name]
            cam.entries = deque([*entries, *cam.entries][-MAX_ENTRIES:], maxlen=MAX_ENTRIES)
            top = max([top, *(e.id for e in entries)])
        self._ids = itertools.count(max(top, next(self._ids)) + 1)
        return sum(len(e) for e in restored.values())

    def entries(self, camera: str, limit: int = MAX_ENTRIES) -> list[JournalEntry]:
        """Newest first."""
        cam = self._cameras.get(camera)
        if cam is None:
            return []
        return list(reversed(cam.entries))[: max(0, limit)]

    def cameras(self) -> Iterable[str]:
        return self._cameras.keys()

    def restart_in(self, camera: str, now: float) -> float | None:
        """Seconds until ffmpeg's next start, while it waits after a failure (else None)."""
        cam = self._cameras.get(camera)
        if cam is None or cam.restart_due is None:
            return None
        return max(0.0, cam.restart_due - now)

    def pipeline_failed(self, camera: str) -> bool:
        """Whether ffmpeg's last stop has a cause only the user can fix (it still retries)."""
        cam = self._cameras.get(camera)
        return cam is not None and cam.pipeline_failed

    def last_motion(self, camera: str) -> JournalEntry | None:
        cam = self._cameras.get(camera)
        if cam is None:
            return None
        if cam.motion is not None:
            return cam.motion
        return next((e for e in reversed(cam.entries) if e.kind == "motion"), None)  # from before a restart

    def last_recording(self, camera: str) -> RecordingRecord | None:
        for entry in self.entries(camera):
            if entry.recordings:
                return entry.recordings[-1]
        return None
