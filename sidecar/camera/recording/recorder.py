"""The asyncio adapter around :class:`~sidecar.camera.recording.session.RecordingSession`.

It owns no rule: it waits for whichever comes first (a subscription item, a pipeline change,
the hub closing the stream, the core's deadline, a poke from the camera), feeds it to the core
with ``now`` from the camera's clock, and carries out the actions: subscribe to the prebuffer,
send on the HDS stream, close it. Sinks (e.g. a local clip archive) get exactly what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ...hds import CloseReason, RecordingStream, StreamClosedError
from ...media import MediaPipeline, PipelineState, PrebufferNotReady, PrebufferSubscription, SubscriptionClosed
from ..events import RecordingEnded
from .session import (
    Action,
    Close,
    RecordingSession,
    SendInit,
    SourceView,
    Subscribe,
    Unsubscribe,
)
from .sink import RecordingSink

__all__ = ["Recorder", "masked", "source_view"]

log = logging.getLogger(__name__)


def masked(text: str, url: str) -> str:
    """``text`` without the source URL's password (ffmpeg's messages quote the URL)."""
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            return text.replace(password, "***")
    return text


def source_view(pipeline: MediaPipeline) -> SourceView:
    """What the core needs to know of the pipeline, right now (passwords masked)."""
    state = pipeline.state
    error: str | None = None
    if state is not PipelineState.RUNNING:
        last = pipeline.status().last_error
        error = masked(last, pipeline.config.source.url) if last else None
    return SourceView(generation=pipeline.prebuffer.generation, has_init=pipeline.prebuffer.init is not None,
                      restart_pending=pipeline.restart_pending,
                      failure=(error or "ffmpeg is waiting to restart") if state is PipelineState.BACKOFF else None,
                      last_error=error, starting=state is PipelineState.STARTING)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class Recorder:
    """Runs one recording stream to its end. ``poke`` wakes it after a camera-side change."""

    def __init__(self, name: str, stream: RecordingStream, core: RecordingSession, pipeline: MediaPipeline, *,
                 clock: Callable[[], float], sinks: Sequence[RecordingSink] = ()) -> None:
        self.name = name
        self.stream = stream
        self.core = core
        self.pipeline = pipeline
        self.clock = clock
        self.sinks = list(sinks)
        self._sub: PrebufferSubscription | None = None
        self._wake = asyncio.Event()
        self._sinks_begun = False

    # -- camera-side pokes (synchronous: closing needs no await) ----------------------------------
    def close(self, reason: CloseReason, detail: str) -> None:
        """The camera closes the stream (NOT_ALLOWED when it or recording was switched off)."""
        self._apply_now(self.core.closed_by_camera(reason, detail, self.clock()))

    def stopping(self) -> None:
        self._apply_now(self.core.stopping(self.clock()))

    def _apply_now(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Close):
                self._close(action)
            elif isinstance(action, Unsubscribe):
                self._unsubscribe()
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self) -> RecordingEnded:
        """Feed the stream until it ends; every exit path releases the subscription."""
        core = self.core
        closed = asyncio.ensure_future(self.stream.wait_closed())
        try:
            await self._act(core.source_changed(source_view(self.pipeline), self.clock()))
            while not core.closed:
                await self._step(closed)
        except StreamClosedError:
            pass
        except Exception as exc:  # a bug here must end the stream cleanly, and be seen
            log.exception("%s: recording stream %d failed", self.name, self.stream.stream_id)
            self._apply_now(core.internal_error(repr(exc), self.clock()))
        finally:
            closed.cancel()
            closed.add_done_callback(_consume)
            if not core.closed:
                if self.stream.closed:
                    core.stream_closed(self.stream.closed_by or "connection", self.stream.close_reason, self.clock())
                else:  # cancelled (camera stopping) or a bug: never leave the hub hanging
                    self._apply_now(core.stopping(self.clock()))
            self._unsubscribe()
        event = core.ended_event(self.name, self.clock())
        if self._sinks_begun:
            self._to_sinks("end", event)
        return event

    async def _step(self, closed: asyncio.Future[None]) -> None:
        core, sub = self.core, self._sub
        if sub is not None and not closed.done() and not self.stream.closed and not self._wake.is_set():
            # What is already queued (the init segment and the prebuffer, right after an open)
            # goes out without a round of futures and a loop iteration per item: when many hubs
            # open at once, that overhead was paid per camera before its prebuffer left.
            # Each item still yields once, so other cameras and the HAP server go on in between.
            try:
                item = sub.get_nowait()
            except SubscriptionClosed:
                item = None  # handled below, where the getter raises it again
            if item is not None:
                await self._act(core.item(item, self.clock()))
                await self._act(core.timer(self.clock()))
                await asyncio.sleep(0)
                return
        view = source_view(self.pipeline)
        waits: set[asyncio.Future[Any]] = {closed, asyncio.ensure_future(self._wake.wait())}
        getter: asyncio.Future[Any] | None = None
        if sub is not None:
            getter = asyncio.ensure_future(sub.get())
            waits.add(getter)
        else:
            waits.add(asyncio.ensure_future(self.pipeline.wait_for(lambda: source_view(self.pipeline) != view)))
        deadline = core.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - self.clock())
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                if waiter is not closed:
                    if not waiter.done():
                        waiter.cancel()
                    waiter.add_done_callback(_consume)
        self._wake.clear()
        now = self.clock()
        if closed.done() or self.stream.closed:
            await self._act(core.stream_closed(self.stream.closed_by or "connection", self.stream.close_reason, now))
            return
        if getter is not None and getter.done() and not getter.cancelled():
            try:
                item = getter.result()
            except SubscriptionClosed as exc:
                self._sub = None
                await self._act(core.subscription_ended(exc.reason, now))
            else:
                await self._act(core.item(item, now))
        await self._act(core.timer(self.clock()))
        if self._sub is None and not core.closed:
            await self._act(core.source_changed(source_view(self.pipeline), self.clock()))

    async def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Subscribe):
                self._subscribe(action)
            elif isinstance(action, Unsubscribe):
                self._unsubscribe()
            elif isinstance(action, Close):
                self._close(action)
            elif isinstance(action, SendInit):
                await self.stream.send_init(action.data)
                self.core.sent(action, self.clock())
                self._sinks_begun = True
                self._to_sinks("begin", self.stream.stream_id, action.data)
            else:
                await self.stream.send_fragment(action.payload, end_of_stream=action.end_of_stream)
                self.core.sent(action, self.clock())
                self._to_sinks("write", action.fragment.data)
                if action.end_of_stream:
                    log.info("%s: stream %d reached the %.0f s cap; endOfStream sent", self.name,
                             self.stream.stream_id, self.core.max_event_s)

    def _subscribe(self, action: Subscribe) -> None:
        now = self.clock()
        try:
            sub = self.pipeline.subscribe(action.prebuffer_ms, allow_empty=True)
        except PrebufferNotReady:
            self.core.subscribe_failed(now)
            return
        prebuffered = sum(1 for at in sub.backlog_received_at if at <= self.core.opened_at)
        self._sub = sub
        for extra in self.core.subscribed(sub.generation, prebuffered, now, sub.backlog_received_at):
            if isinstance(extra, Unsubscribe):
                self._unsubscribe()

    def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()

    def _close(self, action: Close) -> None:
        self.stream.close(action.reason)
        log.log(logging.WARNING if action.reason.name == "UNEXPECTED_FAILURE" else logging.INFO,
                "%s: closing recording stream %d (%s): %s", self.name, self.stream.stream_id, action.reason.name,
                action.detail)

    def _to_sinks(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:  # a sink's bug never costs the hub its clip
                log.exception("%s: recording sink %r failed in %s", self.name, sink, method)
