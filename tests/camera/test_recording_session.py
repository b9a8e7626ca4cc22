"""RecordingSession's rules, one test each, in memory with a fake clock (no ffmpeg, no sockets)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.camera.recording.session import (
    Action,
    Close,
    RecordingSession,
    SendFragment,
    SendInit,
    SourceView,
    Subscribe,
    Unsubscribe,
)
from sidecar.hds import CloseReason
from sidecar.media import Fragment, InitSegment, SubscriptionEnd

INIT = InitSegment(data=b"ftyp+moov", tracks=())
READY = SourceView(generation=1, has_init=True)


def frag(n: int, *, key: bool = True, seconds: float = 4.0, size: int = 1000) -> Fragment:
    return Fragment(data=memoryview(bytes([n % 256]) * size), sequence_number=n, keyframe=key, duration_s=seconds,
                    tracks=(), timescale=90000)


class Hub:
    """Carries out the actions as the adapter would, and records them."""

    def __init__(self, session: RecordingSession) -> None:
        self.session = session
        self.sent: list[SendInit | SendFragment] = []
        self.closed: Close | None = None
        self.subscribes = 0
        self.unsubscribes = 0

    def run(self, actions: list[Action], now: float) -> list[Action]:
        for action in actions:
            if isinstance(action, SendInit | SendFragment):
                self.sent.append(action)
                self.session.sent(action, now)
            elif isinstance(action, Close):
                assert self.closed is None, "closed twice"
                self.closed = action
            elif isinstance(action, Subscribe):
                self.subscribes += 1
            elif isinstance(action, Unsubscribe):
                self.unsubscribes += 1
        return actions

    @property
    def fragments(self) -> list[Fragment]:
        return [a.fragment for a in self.sent if isinstance(a, SendFragment)]


def opened(at: float = 100.0, **options: float) -> tuple[RecordingSession, Hub]:
    session = RecordingSession(7, at, prebuffer_ms=4000, **options)  # type: ignore[arg-type]
    return session, Hub(session)


def subscribe(session: RecordingSession, hub: Hub, now: float, *, prebuffered: int = 0, generation: int = 1) -> None:
    actions = hub.run(session.source_changed(SourceView(generation, True), now), now)
    assert actions == [Subscribe(4000)]
    assert session.subscribed(generation, prebuffered, now) == []


def test_a_warm_prebuffer_starts_at_once_with_init_then_the_prebuffer_slice() -> None:
    session, hub = opened()
    subscribe(session, hub, 100.0, prebuffered=2)
    assert hub.run(session.item(INIT, 100.0), 100.0) == [SendInit(INIT.data)]
    assert hub.run(session.item(frag(1), 100.0), 100.0) == [SendFragment(frag(1))]
    hub.run(session.item(frag(2), 100.0), 100.0)
    hub.run(session.item(frag(3, seconds=2.0), 101.0), 101.0)  # a live fragment
    event = session.ended_event("Cam", 101.0)
    assert event.first_byte_s == 0.0 and event.prebuffer_s == 8.0  # only the two from before the open
    assert (event.fragments_sent, event.bytes_sent) == (3, len(INIT.data) + 3000)


def test_no_init_segment_yet_means_wait_not_refuse() -> None:
    session, hub = opened()
    assert session.source_changed(SourceView(0, has_init=False), 100.0) == []
    assert session.timer(103.0) == [] and not session.closed
    assert hub.run(session.source_changed(SourceView(1, True), 103.5), 103.5) == [Subscribe(4000)]


def test_a_pending_restart_is_not_subscribed_to() -> None:
    session, _ = opened()
    doomed = SourceView(1, has_init=True, restart_pending=True)
    assert session.source_changed(doomed, 100.0) == []  # its init segment is about to be replaced
    assert session.source_changed(SourceView(1, has_init=False), 100.3) == []
    assert session.source_changed(SourceView(2, has_init=True), 101.0) == [Subscribe(4000)]


def test_fragments_before_the_first_keyframe_are_dropped() -> None:
    session, hub = opened()
    subscribe(session, hub, 100.0)
    hub.run(session.item(INIT, 100.0), 100.0)
    assert hub.run(session.item(frag(1, key=False), 100.5), 100.5) == []
    assert hub.run(session.item(frag(2, key=False), 101.0), 101.0) == []
    hub.run(session.item(frag(3), 101.5), 101.5)
    hub.run(session.item(frag(4, key=False), 102.0), 102.0)  # once started, every fragment goes
    assert [f.sequence_number for f in hub.fragments] == [3, 4]
    assert isinstance(hub.sent[0], SendInit) and session.dropped_before_keyframe == 2
    assert session.ended_event("Cam", 102.0).first_byte_s == 0.0


def test_a_new_generation_before_anything_was_sent_means_subscribe_again() -> None:
    session, hub = opened()
    subscribe(session, hub, 100.0, generation=1)
    assert session.subscription_ended(SubscriptionEnd.NEW_GENERATION, 100.4) == []
    assert session.source_changed(SourceView(1, has_init=False), 100.5) == []
    subscribe(session, hub, 101.0, generation=2)
    hub.run(session.item(INIT, 101.0), 101.0)
    hub.run(session.item(frag(1), 102.0), 102.0)
    assert hub.closed is None and len(hub.fragments) == 1 and session.generations_waited == 1


def test_a_new_generation_mid_clip_closes_cancelled() -> None:
    for fragments in (0, 1):  # once the init segment went out, the clip is bound to its run
        session, hub = opened()
        subscribe(session, hub, 100.0)
        hub.run(session.item(INIT, 100.0), 100.0)
        for n in range(fragments):
            hub.run(session.item(frag(n), 100.0), 100.0)
        hub.run(session.subscription_ended(SubscriptionEnd.NEW_GENERATION, 102.0), 102.0)
        assert hub.closed is not None and hub.closed.reason is CloseReason.CANCELLED
        assert "ffmpeg restarted" in hub.closed.detail
        assert session.ended_event("Cam", 102.0).closed_by == "accessory"


def test_subscription_ends_map_to_hds_reasons_with_words() -> None:
    expected = {
        SubscriptionEnd.NEW_GENERATION: (CloseReason.CANCELLED, "ffmpeg restarted"),
        SubscriptionEnd.SLOW_CONSUMER: (CloseReason.CANCELLED, "the hub stopped reading"),
        SubscriptionEnd.STOPPED: (CloseReason.CANCELLED, "the recording pipeline stopped"),
    }
    for why, (reason, words) in expected.items():
        session, hub = opened()
        subscribe(session, hub, 100.0)
        hub.run(session.item(INIT, 100.0), 100.0)
        hub.run(session.item(frag(1), 100.0), 100.0)
        hub.run(session.subscription_ended(why, 101.0), 101.0)
        assert hub.closed is not None and hub.closed.reason is reason and words in hub.closed.detail, why
        event = session.ended_event("Cam", 101.0)
        assert (event.reason, event.reason_code, event.detail) == (reason.name, int(reason), hub.closed.detail)


def test_no_media_at_all_refuses_with_reason_5_after_5_s_and_says_why() -> None:
    session, hub = opened()
    failing = SourceView(0, has_init=False, failure="cannot connect to rtsp://cam/ (Connection refused)")
    session.source_changed(failing, 100.0)
    assert session.next_deadline() == 105.0
    assert session.timer(104.99) == []
    hub.run(session.timer(105.0), 105.0)
    assert hub.closed is not None and hub.closed.reason is CloseReason.UNEXPECTED_FAILURE
    assert hub.closed.detail == "ffmpeg cannot produce media: cannot connect to rtsp://cam/ (Connection refused)"
    event = session.ended_event("Cam", 105.0)
    assert event.first_byte_s is None and event.bytes_sent == 0 and event.duration_s == 5.0


def test_a_pipeline_that_never_starts_gets_5_s_too() -> None:
    session, hub = opened()
    session.source_changed(SourceView(0, has_init=False), 100.0)
    hub.run(session.timer(105.0), 105.0)
    assert hub.closed is not None and hub.closed.detail == "ffmpeg produced no media within 5.0 s of the open"
    session, hub = opened()  # retrying between failures: the last one is named
    session.source_changed(SourceView(0, has_init=False, last_error="exited with code 1 (Connection refused)"), 100.0)
    hub.run(session.timer(105.0), 105.0)
    assert hub.closed is not None and hub.closed.detail == (
        "ffmpeg produced no media within 5.0 s of the open (last error: exited with code 1 (Connection refused))")


def test_an_ffmpeg_still_starting_cleanly_gets_until_8_s_a_failing_one_does_not() -> None:
    session, hub = opened()
    session.source_changed(SourceView(0, has_init=False, starting=True), 100.0)
    assert hub.run(session.timer(105.0), 105.0) == [] and session.next_deadline() == 108.0
    assert hub.run(session.source_changed(SourceView(1, True), 107.0), 107.0) == [Subscribe(4000)]
    session.subscribed(1, 0, 107.0)
    assert hub.run(session.item(INIT, 107.1), 107.1) == [SendInit(INIT.data)] and hub.closed is None
    session, hub = opened()  # never got its init segment: refused at 8 s
    session.source_changed(SourceView(0, has_init=False, starting=True), 100.0)
    hub.run(session.timer(105.0), 105.0)
    hub.run(session.timer(108.0), 108.0)
    assert hub.closed is not None and hub.closed.detail == "ffmpeg produced no media within 8.0 s of the open"
    session, hub = opened()  # starting again after an error: that is a failing source, 5 s
    session.source_changed(SourceView(0, has_init=False, starting=True, last_error="Connection refused"), 100.0)
    hub.run(session.timer(105.0), 105.0)
    assert hub.closed is not None and hub.closed.reason is CloseReason.UNEXPECTED_FAILURE


def test_once_the_init_segment_is_out_a_slow_keyframe_is_the_hubs_to_judge() -> None:
    session, hub = opened()
    subscribe(session, hub, 100.0)
    assert session.next_deadline() == 105.0
    assert hub.run(session.item(INIT, 100.5), 100.5) == [SendInit(INIT.data)]  # the hub hears from us
    assert session.next_deadline() is None and session.timer(130.0) == []
    hub.run(session.item(frag(1), 109.0), 109.0)
    assert hub.closed is None and len(hub.fragments) == 1


def test_the_event_cap_sends_end_of_stream_then_closes_normal_after_the_grace() -> None:
    session, hub = opened(max_event_s=20.0, end_grace_s=5.0)
    subscribe(session, hub, 100.0)
    hub.run(session.item(INIT, 100.0), 100.0)
    for n, at in enumerate((100.0, 104.0, 108.0, 112.0, 116.0), 1):
        hub.run(session.item(frag(n), at), at)
    assert not any(a.end_of_stream for a in hub.sent if isinstance(a, SendFragment))
    actions = hub.run(session.item(frag(6), 120.0), 120.0)
    assert actions == [SendFragment(frag(6), end_of_stream=True), Unsubscribe()]
    assert hub.run(session.item(frag(7), 121.0), 121.0) == []  # nothing after endOfStream
    assert session.next_deadline() == 125.0 and session.timer(124.9) == []
    hub.run(session.timer(125.0), 125.0)
    assert hub.closed == Close(CloseReason.NORMAL, "the event reached its 20 s cap")


def test_a_hub_that_closes_during_the_grace_ends_it_normally() -> None:
    session, hub = opened(max_event_s=4.0)
    subscribe(session, hub, 100.0)
    hub.run(session.item(INIT, 100.0), 100.0)
    hub.run(session.item(frag(1), 104.0), 104.0)
    hub.run(session.stream_closed("hub", CloseReason.NORMAL, 105.0), 105.0)
    assert hub.closed is None and session.closed and session.next_deadline() is None
    event = session.ended_event("Cam", 106.0)
    assert (event.closed_by, event.reason, event.detail, event.duration_s) == (
        "hub", "NORMAL", "the hub closed normally", 5.0)


def test_switching_the_camera_or_recording_off_closes_not_allowed() -> None:
    for what in ("the camera was switched off", "recording was switched off"):
        session, hub = opened()
        subscribe(session, hub, 100.0)
        hub.run(session.item(INIT, 100.0), 100.0)
        hub.run(session.item(frag(1), 100.0), 100.0)
        actions = hub.run(session.switched_off(what, 101.0), 101.0)
        assert actions == [Unsubscribe(), Close(CloseReason.NOT_ALLOWED, what)]
        # The pipeline stopping right after must not turn it into CANCELLED.
        assert session.subscription_ended(SubscriptionEnd.STOPPED, 101.1) == []
        assert session.ended_event("Cam", 101.2).reason_code == 1


def test_switched_off_while_still_waiting_is_not_allowed_too() -> None:
    session, hub = opened()
    session.source_changed(SourceView(0, has_init=False), 100.0)
    hub.run(session.switched_off("the camera was switched off", 100.5), 100.5)
    assert hub.closed is not None and hub.closed.reason is CloseReason.NOT_ALLOWED
    assert session.timer(200.0) == []  # no second close at the start deadline


def test_stopping_closes_cancelled() -> None:
    session, hub = opened()
    subscribe(session, hub, 100.0)
    hub.run(session.stopping(101.0), 101.0)
    assert hub.closed == Close(CloseReason.CANCELLED, "the sidecar is stopping")


def test_how_the_hub_ended_it_in_words() -> None:
    cases = [
        ("hub", CloseReason.NORMAL, "the hub closed normally"),
        ("hub", CloseReason.TIMEOUT, "the hub timed out waiting for data"),
        ("hub", 42, "the hub closed it (reason 42)"),
        ("ack", None, "the hub acknowledged the end of the stream"),
        ("connection", None, "the hub's connection went away"),
        ("accessory", CloseReason.CANCELLED, "the hub stopped reading"),  # the HDS layer's stall close
    ]
    for by, reason, words in cases:
        session, _ = opened()
        session.stream_closed(by, reason, 101.0)
        assert session.ended_event("Cam", 101.0).detail == words


def test_a_subscription_confirmed_after_close_is_released() -> None:
    session, _ = opened()
    session.source_changed(READY, 100.0)
    session.stopping(100.1)
    assert session.subscribed(1, 0, 100.2) == [Unsubscribe()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["frag", "key", "init", "end", "view", "timer", "hub"]),
                          st.floats(0, 3)), max_size=40))
def test_any_sequence_keeps_the_invariants(steps: list[tuple[str, float]]) -> None:
    """Whatever happens: the init goes first and once, the first fragment is a keyframe,
    nothing is sent after a close or after endOfStream, and there is at most one close."""
    session, hub = opened(max_event_s=10.0)
    now, n = 100.0, 0
    for kind, dt in steps:
        now += dt
        if kind in ("frag", "key"):
            n += 1
            hub.run(session.item(frag(n, key=kind == "key"), now), now)
        elif kind == "init":
            hub.run(session.item(INIT, now), now)
        elif kind == "end":
            hub.run(session.subscription_ended(SubscriptionEnd.NEW_GENERATION, now), now)
        elif kind == "view":
            actions = hub.run(session.source_changed(SourceView(n, True), now), now)
            if any(isinstance(a, Subscribe) for a in actions):
                hub.run(session.subscribed(n, 0, now), now)
        elif kind == "timer":
            hub.run(session.timer(now), now)
        else:
            hub.run(session.stream_closed("hub", CloseReason.NORMAL, now), now)
    kinds = [type(a) for a in hub.sent]
    assert kinds.count(SendInit) <= 1 and (not kinds or kinds[0] is SendInit)
    if hub.fragments:
        assert hub.fragments[0].keyframe
    eos = [i for i, a in enumerate(hub.sent) if isinstance(a, SendFragment) and a.end_of_stream]
    assert eos in ([], [len(hub.sent) - 1])
    assert session.fragments_sent == len(hub.fragments)
