"""One dataSend recording, decided without I/O: :class:`RecordingSession`.

A hub opens a recording the moment it sees motion and waits for nothing (it gives up after
about 5-8 s without data). So an open is never refused because the prebuffer is still warming:
the session takes whatever the current ffmpeg run has, from its first keyframe, and carries on
with live fragments. The rules, all here and all driven by a ``now`` the caller passes in:

* **Source readiness.** The session subscribes to the current run as soon as that run has its
  init segment and no restart is pending (a restart would void the init segment at once), and
  sends the init segment at once: the hub hears from us within a second or two even when ffmpeg
  has only just started (as HAP-NodeJS cameras do). Media follows from the first
  keyframe-started fragment; fragments before it are dropped, so a clip starts on a keyframe.
* **Prebuffer slice.** The subscription starts with the newest fragments covering the selected
  prebuffer length (fewer right after a restart: every complete one there is).
* **Generation change.** Before the init segment is sent, a new ffmpeg run (or a stop) only
  means "subscribe again when the next run is ready". After it went out, the clip cannot change
  its init segment, so the stream is closed (CANCELLED).
* **Start deadline.** Nothing sent ``start_timeout_s`` (5 s) after the open because ffmpeg has
  no media at all (it failed, or never started): close with UNEXPECTED_FAILURE (5) and say why
  in words. An ffmpeg that is still starting cleanly (a cold start on a loaded machine) is not
  "cannot produce media": it gets until ``start_grace_s`` (8 s, when hubs give up). Once the init
  segment went out, ffmpeg is producing: a slow first keyframe is the hub's to judge (it closes
  with TIMEOUT when it has waited enough), and a run that dies ends the subscription anyway.
* **Event cap.** The first fragment at or beyond ``max_event_s`` carries ``endOfStream``; the
  hub then has ``end_grace_s`` to close before we close NORMAL ourselves (tvOS 16+ hubs never
  ack, docs/field-lessons.md #1).
* **Switched off.** HomeKitCameraActive or recording Active going to 0 closes with NOT_ALLOWED
  (1), as docs/protocol.md §dataSend reasons and HAP-NodeJS do.
* **H.265.** When the run's video is H.265, every fragment goes out as a tvOS 27 hub needs it
  (docs/h265.md): ``tfdt`` rebased to 0 and a ``prft`` in front, carrying the wall clock of the
  fragment's start (from when the first one arrived, plus media time), the ``mdat`` untouched.
  A fragment must begin with a random-access picture to start the clip.
* **How it ended**, in words, for the RecordingEnded event (and so the status page).

Every input method returns the actions to carry out, in order; :meth:`next_deadline` says when
to call :meth:`timer` next. :class:`~sidecar.camera.recording.recorder.Recorder` is the thin
asyncio adapter around it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ...hds import CloseReason
from ...media import Fragment, HevcRecording, InitSegment, RewriteError, SubscriptionEnd
from ..events import RecordingEnded

__all__ = [
    "START_GRACE_S",
    "START_TIMEOUT_S",
    "Action",
    "Close",
    "RecordingSession",
    "SendFragment",
    "SendInit",
    "SourceView",
    "Subscribe",
    "Unsubscribe",
]

START_TIMEOUT_S = 5.0
"""An open with nothing to send after this long, from a pipeline with no media, is refused (5)."""
START_GRACE_S = 8.0
"""The same for an ffmpeg that is still starting cleanly: hubs give up at about 8 s anyway."""
END_GRACE_S = 5.0
"""After endOfStream at the event cap, how long the hub may take to close."""


# -- inputs -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SourceView:
    """What the recording pipeline looks like right now (the adapter builds it)."""

    generation: int  # the prebuffer's generation (one per ffmpeg run that produced an init segment)
    has_init: bool  # the current run has its init segment
    restart_pending: bool = False  # a restart was asked for: the current init segment is doomed
    failure: str | None = None  # why ffmpeg produces nothing, in words (None while it is fine)
    last_error: str | None = None  # ffmpeg's last error while not running (it may be retrying)
    starting: bool = False  # an ffmpeg run is starting and nothing went wrong with it yet


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subscribe:
    """Take a live subscription of the current run: init + the newest ``prebuffer_ms``."""

    prebuffer_ms: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Release the live subscription (nothing more is wanted from it)."""


@dataclass(frozen=True, slots=True)
class SendInit:
    data: bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class SendFragment:
    fragment: Fragment
    end_of_stream: bool = False
    #: An H.265 fragment rewritten for the hub: the new ``prft`` + ``moof``, then a view of the rest.
    pieces: tuple[bytes, memoryview] | None = None

    @property
    def payload(self) -> tuple[bytes, memoryview] | memoryview:
        """What goes to the hub: the rewritten pieces, or the fragment's own bytes."""
        return self.pieces if self.pieces is not None else self.fragment.data

    @property
    def size(self) -> int:
        if self.pieces is not None:
            return len(self.pieces[0]) + self.pieces[1].nbytes
        return self.fragment.size


@dataclass(frozen=True, slots=True)
class Close:
    """Close the dataSend stream with ``reason``; ``detail`` says why in words."""

    reason: CloseReason
    detail: str


Action = Subscribe | Unsubscribe | SendInit | SendFragment | Close


class _Phase(enum.Enum):
    WAITING = "waiting"  # for a run with an init segment and no pending restart
    SUBSCRIBING = "subscribing"  # Subscribe asked for, not confirmed yet
    KEYFRAME = "keyframe"  # subscribed (init sent once it came), waiting for a keyframe fragment
    STREAMING = "streaming"
    ENDING = "ending"  # endOfStream sent at the cap; waiting for the hub to close
    CLOSED = "closed"


_HUB_REASONS = {
    CloseReason.NORMAL: "the hub closed normally",
    CloseReason.CANCELLED: "the hub cancelled it",
    CloseReason.TIMEOUT: "the hub timed out waiting for data",
    CloseReason.BAD_DATA: "the hub could not parse the media",
    CloseReason.PROTOCOL_ERROR: "the hub reported a protocol error",
    CloseReason.NOT_ALLOWED: "the hub said it is not allowed",
    CloseReason.UNEXPECTED_FAILURE: "the hub reported an unexpected failure",
}


def hub_detail(closed_by: str, reason: CloseReason | int | None) -> str:
    """Why a stream the accessory did not close ended, in words."""
    if closed_by == "connection":
        return "the hub's connection went away"
    if closed_by == "ack":
        return "the hub acknowledged the end of the stream"
    if closed_by == "accessory":  # the HDS layer closed it: a send that never drained
        return "the hub stopped reading"
    if isinstance(reason, CloseReason):
        return _HUB_REASONS.get(reason, f"the hub closed it ({reason.name})")
    return f"the hub closed it (reason {reason})"


class RecordingSession:
    """The rules of one recording stream (see the module docstring). Sans-IO: feed it, act."""

    def __init__(
        self,
        stream_id: int,
        opened_at: float,
        *,
        prebuffer_ms: int = 4000,
        max_event_s: float = 180.0,
        end_grace_s: float = END_GRACE_S,
        start_timeout_s: float = START_TIMEOUT_S,
        start_grace_s: float = START_GRACE_S,
        wall_clock_offset_s: float = 0.0,
    ) -> None:
        self.stream_id = stream_id
        self.opened_at = opened_at
        self.prebuffer_ms = prebuffer_ms
        self.max_event_s = max_event_s
        self.end_grace_s = end_grace_s
        self.start_timeout_s = start_timeout_s
        self.start_grace_s = max(start_timeout_s, start_grace_s)
        self._start_deadline = opened_at + start_timeout_s
        self._phase = _Phase.WAITING
        self._view: SourceView | None = None
        self._init_sent = False
        self._generation: int | None = None  # of the live subscription
        self._prebuffered = 0  # leading fragments of the subscription that arrived before the open
        self._seen = 0  # fragments taken from the subscription so far
        self._grace_until: float | None = None
        self.wall_clock_offset_s = wall_clock_offset_s  # Unix time minus ``now``, from the adapter
        self._received_at: tuple[float, ...] = ()  # when the subscription's backlog arrived
        self._init: InitSegment | None = None
        self._hevc: HevcRecording | None = None
        self.video_codec: str | None = None  # the clip's sample entry (avc1, hvc1...)
        # The outcome, for RecordingEnded.
        self.close_reason: CloseReason | int | None = None
        self.closed_by: str | None = None
        self.detail = ""
        self.closed_at: float | None = None
        self.bytes_sent = 0
        self.fragments_sent = 0
        self.dropped_before_keyframe = 0
        self.first_byte_at: float | None = None
        self.prebuffer_s = 0.0
        self.generations_waited = 0

    # -- state ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._phase is _Phase.CLOSED

    @property
    def started(self) -> bool:
        """The init segment has gone out: the clip is bound to one ffmpeg run."""
        return self._init_sent

    @property
    def wants_subscription(self) -> bool:
        return self._phase in (_Phase.SUBSCRIBING, _Phase.KEYFRAME, _Phase.STREAMING)

    def next_deadline(self) -> float | None:
        """When :meth:`timer` must run next (monotonic seconds), or ``None``."""
        if self._phase in (_Phase.WAITING, _Phase.SUBSCRIBING, _Phase.KEYFRAME) and not self._init_sent:
            return self._start_deadline
        if self._phase is _Phase.ENDING:
            return self._grace_until
        return None

    # -- inputs -----------------------------------------------------------------------------
    def source_changed(self, view: SourceView, now: float) -> list[Action]:
        """The pipeline changed (or this is the first look at it)."""
        self._view = view
        if self._phase is _Phase.WAITING and view.has_init and not view.restart_pending:
            self._phase = _Phase.SUBSCRIBING
            return [Subscribe(self.prebuffer_ms)]
        return []

    def subscribed(
        self, generation: int, prebuffered: int, now: float, received_at: tuple[float, ...] = ()
    ) -> list[Action]:
        """The adapter took the subscription; ``prebuffered`` of its first fragments arrived
        before the open (they are the prebuffer proper), the backlog at ``received_at``."""
        if self._phase is not _Phase.SUBSCRIBING:
            return [Unsubscribe()]
        self._phase = _Phase.KEYFRAME
        self._generation = generation
        self._prebuffered = prebuffered
        self._received_at = received_at
        self._seen = 0
        return []

    def subscribe_failed(self, now: float) -> list[Action]:
        """The run lost its init segment between the look and the subscription: wait again."""
        if self._phase is _Phase.SUBSCRIBING:
            self._phase = _Phase.WAITING
        return []

    def item(self, item: InitSegment | Fragment, now: float) -> list[Action]:
        """The next item of the subscription."""
        if self._phase not in (_Phase.KEYFRAME, _Phase.STREAMING):
            return []
        if isinstance(item, InitSegment):
            if self._init_sent:  # one per subscription, and a subscription is one run
                return []
            self._init_sent = True
            self._init = item
            video = item.video
            self.video_codec = video.codec if video is not None else None
            return [SendInit(item.data)]
        index = self._seen
        self._seen += 1
        actions: list[Action] = []
        hevc_init = self._init if self._init is not None and self.video_codec in ("hvc1", "hev1") else None
        if self._phase is _Phase.KEYFRAME:
            if not self._init_sent or not item.keyframe:
                self.dropped_before_keyframe += 1
                return []
            if hevc_init is not None:
                arrived = self._received_at[index] if index < len(self._received_at) else now
                probe = HevcRecording(hevc_init, max(0.0, arrived + self.wall_clock_offset_s - item.duration_s))
                if not probe.starts_at_random_access(item):
                    self.dropped_before_keyframe += 1
                    return []
                self._hevc = probe
            self._phase = _Phase.STREAMING
        last = now - self.opened_at >= self.max_event_s
        pieces: tuple[bytes, memoryview] | None = None
        if self._hevc is not None:
            try:
                pieces = self._hevc.rewrite(item).pieces()
            except RewriteError as exc:
                return self._close(CloseReason.UNEXPECTED_FAILURE, f"H.265 fragment unusable: {exc}", now)
        actions.append(SendFragment(item, end_of_stream=last, pieces=pieces))
        if index < self._prebuffered:
            self.prebuffer_s += item.duration_s
        if last:
            self._phase = _Phase.ENDING
            self._grace_until = now + self.end_grace_s
            actions.append(Unsubscribe())
        return actions

    def subscription_ended(self, why: SubscriptionEnd, now: float) -> list[Action]:
        """The subscription closed and is drained."""
        if self._phase in (_Phase.SUBSCRIBING, _Phase.KEYFRAME) and not self._init_sent:
            # Nothing sent yet: the next run will do (the start deadline still holds).
            # The adapter feeds the next source_changed as the pipeline moves on.
            self._phase = _Phase.WAITING
            self.generations_waited += 1
            return []
        if self._phase not in (_Phase.KEYFRAME, _Phase.STREAMING):
            return []
        if why is SubscriptionEnd.NEW_GENERATION:
            detail = "ffmpeg restarted mid-clip (a new init segment cannot join a clip)"
        elif why is SubscriptionEnd.SLOW_CONSUMER:
            detail = "the hub stopped reading (too many fragments waiting)"
        elif why is SubscriptionEnd.STOPPED:
            detail = "the recording pipeline stopped"
        else:
            detail = "the subscription was closed"
        return self._close(CloseReason.CANCELLED, detail, now)

    def sent(self, action: SendInit | SendFragment, now: float) -> None:
        """The adapter handed ``action``'s bytes to the socket."""
        if isinstance(action, SendInit):
            self.bytes_sent += memoryview(action.data).nbytes
            if self.first_byte_at is None:
                self.first_byte_at = now
        else:
            self.bytes_sent += action.size
            self.fragments_sent += 1

    def timer(self, now: float) -> list[Action]:
        """Run whatever deadline is due."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self._phase is _Phase.ENDING:
            return self._close(CloseReason.NORMAL, f"the event reached its {self.max_event_s:g} s cap", now)
        view = self._view
        grace_until = self.opened_at + self.start_grace_s
        if view is not None and view.starting and not view.failure and not view.last_error and now < grace_until:
            self._start_deadline = grace_until  # slow, not broken: the hub decides before we do
            return []
        return self._close(CloseReason.UNEXPECTED_FAILURE, self._why_no_media(now), now)

    def switched_off(self, what: str, now: float) -> list[Action]:
        """HomeKitCameraActive or recording Active went to 0 (``what`` says which, in words)."""
        return self.closed_by_camera(CloseReason.NOT_ALLOWED, what, now)

    def closed_by_camera(self, reason: CloseReason, detail: str, now: float) -> list[Action]:
        """The camera's rules end the recording (camera/core.py decides the reason)."""
        return self._close(reason, detail, now)

    def internal_error(self, what: str, now: float) -> list[Action]:
        """A bug in the adapter: close with UNEXPECTED_FAILURE rather than leave the hub waiting."""
        return self._close(CloseReason.UNEXPECTED_FAILURE, f"internal error: {what}", now)

    def stopping(self, now: float) -> list[Action]:
        """The sidecar (or this camera) is shutting down."""
        return self._close(CloseReason.CANCELLED, "the sidecar is stopping", now)

    def stream_closed(self, closed_by: str, reason: CloseReason | int | None, now: float) -> list[Action]:
        """The stream ended without us closing it: the hub closed it, acked, or went away."""
        if self._phase is _Phase.CLOSED:
            return []
        self._phase = _Phase.CLOSED
        self.close_reason, self.closed_by, self.closed_at = reason, closed_by, now
        self.detail = hub_detail(closed_by, reason)
        return [Unsubscribe()]

    # -- the outcome ------------------------------------------------------------------------
    def ended_event(self, camera: str, now: float) -> RecordingEnded:
        """The RecordingEnded event for the status page and the other observers."""
        reason = self.close_reason
        end = self.closed_at if self.closed_at is not None else now
        return RecordingEnded(
            camera=camera, stream_id=self.stream_id,
            reason=reason.name if isinstance(reason, CloseReason) else str(reason),
            reason_code=int(reason) if reason is not None else None,
            closed_by=self.closed_by or "accessory", detail=self.detail,
            bytes_sent=self.bytes_sent, fragments_sent=self.fragments_sent,
            first_byte_s=None if self.first_byte_at is None else self.first_byte_at - self.opened_at,
            prebuffer_s=self.prebuffer_s if self.first_byte_at is not None else None,
            duration_s=end - self.opened_at, video_codec=self.video_codec)

    # -- internals --------------------------------------------------------------------------
    def _why_no_media(self, now: float) -> str:
        waited = now - self.opened_at
        view = self._view
        if view is not None and view.failure:
            return f"ffmpeg cannot produce media: {view.failure}"
        if view is not None and view.restart_pending:
            return f"ffmpeg was still restarting {waited:.1f} s after the open"
        why = f"ffmpeg produced no media within {waited:.1f} s of the open"
        return f"{why} (last error: {view.last_error})" if view is not None and view.last_error else why

    def _close(self, reason: CloseReason, detail: str, now: float) -> list[Action]:
        if self._phase is _Phase.CLOSED:
            return []
        self._phase = _Phase.CLOSED
        self.close_reason, self.closed_by, self.detail, self.closed_at = reason, "accessory", detail, now
        return [Unsubscribe(), Close(reason, detail)]
