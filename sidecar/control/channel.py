"""Thin asyncio adapters for the parent protocol: stdin/stdout pipes, or Node's IPC channel.

- Without ``NODE_CHANNEL_FD``: commands are read from stdin and events written to stdout. The
  real stdout is kept for events only; file descriptor 1 is pointed at stderr, so a stray
  ``print`` (ours or a library's) can never corrupt the event stream.
- With ``NODE_CHANNEL_FD`` (a Node parent used ``fork`` or ``spawn`` with an ``"ipc"`` stdio
  entry): the same lines travel both ways over that socket, which is newline-delimited JSON
  when ``NODE_CHANNEL_SERIALIZATION_MODE`` is ``json`` (the default).

The parent being gone ends the session: EOF on stdin, a closed IPC channel, or a closed
stdout. So do ``shutdown`` and SIGTERM/SIGINT. Reading pauses while commands queue up, and
events for a parent that does not read are dropped beyond :data:`MAX_OUTPUT` bytes, so
neither direction can grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..malloc_tuning import giving_back_free_memory
from .logs import JsonFormatter, configure_logging
from .protocol import BadLine, Command, LineDecoder
from .session import ControlSession

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "run_stdio_json"]

log = logging.getLogger(__name__)

EXIT_OK = 0  # shutdown command, SIGTERM/SIGINT, or the parent went away (EOF / closed channel)
EXIT_ERROR = 1  # an unexpected internal error (a bug): the parent should restart us
EXIT_USAGE = 2  # bad command line, or stdin/stdout/the IPC fd cannot be used
HIGH_WATER = 64  # queued commands before we stop reading
MAX_OUTPUT = 4 << 20  # unread event bytes we keep for a parent before dropping events
FLUSH_S = 1.0  # how long the last events (``bye``) may take to reach the parent


class _Inbound(asyncio.Protocol):
    """Feeds the decoder; for the IPC socket it is also the writing side."""

    def __init__(self, wake: asyncio.Event) -> None:
        self.decoder = LineDecoder()
        self.items: deque[Command | BadLine] = deque()
        self.closed = False
        self.wake = wake
        self.transport: asyncio.BaseTransport | None = None
        self.writer: _Outbound | None = None  # the IPC socket: flow control goes to the writer
        self._paused = False

    def pause_writing(self) -> None:
        if self.writer is not None:
            self.writer.pause_writing()

    def resume_writing(self) -> None:
        if self.writer is not None:
            self.writer.resume_writing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.items.extend(self.decoder.feed(data))
        self.wake.set()
        if len(self.items) >= HIGH_WATER and not self._paused and isinstance(self.transport, asyncio.ReadTransport):
            self.transport.pause_reading()
            self._paused = True

    def eof_received(self) -> bool | None:
        self.items.extend(self.decoder.eof())
        self.closed = True
        self.wake.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.wake.set()

    def pop(self) -> Command | BadLine:
        item = self.items.popleft()
        if self._paused and len(self.items) < HIGH_WATER // 4 and isinstance(self.transport, asyncio.ReadTransport):
            self.transport.resume_reading()
            self._paused = False
        return item


class _Outbound(asyncio.Protocol):
    """Writes event lines; notices when the parent stops listening."""

    def __init__(self, wake: asyncio.Event) -> None:
        self.wake = wake
        self.transport: asyncio.WriteTransport | None = None
        self.file_fd: int | None = None  # stdout redirected to a regular file: plain writes
        self.gone = False
        self.dropped = 0
        self._drained = asyncio.Event()
        self._drained.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.wake.set()

    def pause_writing(self) -> None:
        self._drained.clear()

    def resume_writing(self) -> None:
        self._drained.set()

    def send(self, line: bytes) -> None:
        if self.file_fd is not None:
            os.write(self.file_fd, line)
            return
        if self.gone or self.transport is None or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() + len(line) > MAX_OUTPUT:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("the parent process is not reading events; dropping them")
            return
        self.transport.write(line)

    async def flush(self) -> None:
        """Wait (briefly) until the parent has been handed everything, e.g. the ``bye``."""
        if self.transport is None or self.gone or not self.transport.get_write_buffer_size():
            return
        self.transport.set_write_buffer_limits(high=0, low=0)  # resume_writing() once empty
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), FLUSH_S)


class _IpcWriter(_Outbound):
    """The IPC socket's write side belongs to the reading protocol's transport."""

    def attach(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport


class UsageError(Exception):
    pass


async def _open(wake: asyncio.Event) -> tuple[_Inbound, _Outbound]:
    loop = asyncio.get_running_loop()
    inbound = _Inbound(wake)
    ipc = os.environ.pop("NODE_CHANNEL_FD", None)
    mode = os.environ.pop("NODE_CHANNEL_SERIALIZATION_MODE", "json")  # our children are not Node's
    if ipc is not None:
        if mode != "json":
            raise UsageError(f"NODE_CHANNEL_SERIALIZATION_MODE={mode!r}: only json is supported")
        try:
            sock = socket.socket(fileno=int(ipc))
        except (ValueError, OSError) as exc:
            raise UsageError(f"NODE_CHANNEL_FD={ipc!r} is not an open socket: {exc}") from None
        sock.setblocking(False)
        transport, _ = await loop.create_connection(lambda: inbound, sock=sock)
        writer = _IpcWriter(wake)
        writer.attach(transport)
        inbound.writer = writer
        os.close(_stdout_to_stderr())  # events use the channel; stray prints still go to stderr
        return inbound, writer
    events_fd = _stdout_to_stderr()
    outbound = _Outbound(wake)
    if stat.S_ISREG(os.fstat(events_fd).st_mode):
        outbound.file_fd = events_fd
    else:
        await loop.connect_write_pipe(lambda: outbound, os.fdopen(events_fd, "wb", buffering=0))
    try:
        await loop.connect_read_pipe(lambda: inbound, sys.stdin)
    except ValueError:
        raise UsageError("stdin must be a pipe, a socket or a terminal (not a regular file)") from None
    return inbound, outbound


def _stdout_to_stderr() -> int:
    """Keep the real stdout for events (returned as a new fd); fd 1 now writes to stderr."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events_fd


async def serve(overrides: dict[str, Any], formatter: logging.Formatter,
                validate: Callable[[Config], None] | None = None) -> int:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    try:
        inbound, outbound = await _open(wake)
    except UsageError as exc:
        print(f"hksv-sidecar: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def on_config(config: Config) -> None:
        logging.getLogger().setLevel(config.log_level)
        if isinstance(formatter, JsonFormatter):
            formatter.cameras = tuple(c.name for c in config.cameras)

    session = ControlSession(outbound.send, overrides=overrides, on_config=on_config, validate=validate)
    reason = "shutdown"

    def on_signal(name: str) -> None:
        nonlocal reason
        log.info("got %s, shutting down", name)
        reason = name
        session.stopping.set()
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    session.ready()
    try:
        async with giving_back_free_memory():
            while not session.stopping.is_set():
                if inbound.items:
                    await session.handle(inbound.pop())
                    continue
                if inbound.closed or outbound.gone:
                    reason = "parent closed the channel" if inbound.closed else "parent stopped reading"
                    log.info("%s; shutting down", reason)
                    break
                wake.clear()
                await wake.wait()
    finally:
        await session.close()
        session.emit("bye", {"reason": reason}, session.shutdown_seq)
        await outbound.flush()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Already stopping: a late SIGTERM (a parent that sends shutdown and a signal) must
            # not turn this clean exit into death by signal. asyncio would restore SIG_DFL.
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        for transport in (inbound.transport, outbound.transport):
            if transport is not None:
                transport.close()
    return EXIT_OK


def run_stdio_json(overrides: dict[str, Any], *, log_level: str = "INFO", log_format: str = "text",
                   validate: Callable[[Config], None] | None = None) -> int:
    """``hksv-sidecar --stdio-json``: serve one parent until it says stop or goes away.

    ``validate`` is the command line's own extra check of a config (the ffmpeg profiles exist),
    so a parent's config is refused with exactly the words the CLI would print.
    """
    formatter = configure_logging(log_level, log_format)
    try:
        return asyncio.run(serve(overrides, formatter, validate))
    except Exception:
        log.exception("internal error in --stdio-json mode")
        return EXIT_ERROR
    finally:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
