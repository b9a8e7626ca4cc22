"""Starting a child process off the event loop, and watching it from the loop.

Starting a process blocks the thread that starts it: the kernel suspends that thread until the
child has exec'd, and on a loaded machine the child may wait tens of milliseconds for a CPU
before it gets that far. ``asyncio.create_subprocess_exec`` starts it on the loop's thread, so
every connection the process serves would wait too. Here a spawner thread starts the child
(``subprocess.Popen``), and the loop gets a :class:`Child`: the child's pipes as asyncio streams
(``connect_read_pipe`` / ``connect_write_pipe``), and its exit seen through a pidfd the loop
watches (``os.pidfd_open``; a waiter thread where the kernel has none).

The spawner is one thread for the process, and it stays alive while any child it started is
alive: a child's ``PR_SET_PDEATHSIG`` (see :mod:`.process`) fires when the *thread* that
started it ends, so that thread must outlive every child. It ends once the last child has been
reaped, so an idle process keeps no thread; it is a daemon, so it never keeps the interpreter
from exiting (and when the process ends, so does the thread, and the children get their signal).

Signals go through the pidfd (``signal.pidfd_send_signal``) where there is one, so a signal
never reaches another process that reused a reaped child's pid.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["Child", "PipeSource", "start_child"]


class _Spawner:
    """One thread that starts every child and lives while any of them does."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._live = 0  # children started (or about to be) and not yet reaped
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the spawner thread; it counts as a live child until :meth:`gone`."""
        with self._cond:
            self._jobs.append(job)
            self._live += 1
            start = self._thread is None
            if start:
                self._thread = threading.Thread(target=self._serve, name="spawner", daemon=True)
            self._cond.notify()
            thread = self._thread
        if start:
            assert thread is not None
            thread.start()

    def gone(self) -> None:
        """One child was reaped (or never started)."""
        with self._cond:
            self._live -= 1
            self._cond.notify()

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs) or self._live <= 0)
                if not self._jobs:
                    self._thread = None
                    return
                job = self._jobs.popleft()
            job()


_spawner = _Spawner()


class Child:
    """A running child: its pid, its pipes as streams, its exit code once it has exited."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._popen = popen  # kept until reaped, so subprocess never reaps or warns behind our back
        self._loop = loop
        self.pid = popen.pid
        self.returncode: int | None = None
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | PipeSource | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None

    async def wait(self) -> int:
        """The exit code (negative: killed by that signal), once the child has exited and been reaped."""
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        """Signal the child; ``ProcessLookupError`` once it has been reaped."""
        if self.returncode is not None:
            raise ProcessLookupError(self.pid)
        if self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, sig)
        else:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    # -- on the loop ----------------------------------------------------------------------------
    async def _connect(self, limit: int, direct_stdout: bool) -> None:
        popen, loop = self._popen, self._loop
        if popen.stdout is not None:
            self.stdout = PipeSource(loop, popen.stdout) if direct_stdout else await _reader(loop, popen.stdout, limit)
        if popen.stderr is not None:
            self.stderr = await _reader(loop, popen.stderr, limit)
        if popen.stdin is not None:
            self.stdin = await _writer(loop, popen.stdin)

    def _watch_exit(self, pidfd: int | None) -> None:
        self._pidfd = pidfd
        if pidfd is not None:
            self._loop.add_reader(pidfd, self._poll)
            self._poll()  # it may have exited already
        else:
            threading.Thread(target=self._wait_blocking, name=f"wait:{self.pid}", daemon=True).start()

    def _poll(self) -> None:
        if self.returncode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its code is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._reaped(os.waitstatus_to_exitcode(status))

    def _wait_blocking(self) -> None:
        try:
            _pid, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = 255
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self._reaped, code)

    def _reaped(self, code: int) -> None:
        if self.returncode is not None:
            return
        self.returncode = code
        self._popen.returncode = code  # subprocess must not wait for it again
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        _spawner.gone()
        if not self._exited.done():
            self._exited.set_result(code)


class PipeSource:
    """A child's output pipe read straight into its consumer's buffers, from the loop's reader
    callback (``loop.add_reader``).

    Through ``connect_read_pipe`` and a ``StreamReader``, every read allocates a ``bytes`` of
    the transport's read size, copies it into the reader's buffer, wakes the consumer's task
    and copies it out again: for a camera's fMP4 that is three copies of every byte, and a task
    wake-up per pipe read. Here the consumer says where the next bytes go (``get_buffer``,
    e.g. the end of the fragment being received) and ``os.readv`` puts them there; the pipe is
    non-blocking and each readiness callback reads once, what is there, as the transport did.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> None:
        self._loop = loop
        self._pipe = pipe
        self._fd = pipe.fileno()
        os.set_blocking(self._fd, False)
        self.at_eof = False

    async def pump(self, get_buffer: Callable[[], memoryview], buffer_updated: Callable[[int], bool]) -> None:
        """Read into ``get_buffer()``, then call ``buffer_updated(n)`` with the count, until EOF
        (then return, the pipe closed) or until ``buffer_updated`` returns True (stop: later calls
        go on where this one stopped). An exception in either callable ends the pump and is
        raised here."""
        if self.at_eof:
            return
        done: asyncio.Future[None] = self._loop.create_future()

        def ready() -> None:
            if done.done():
                return
            try:
                n = os.readv(self._fd, [get_buffer()])
            except (BlockingIOError, InterruptedError):
                return
            except Exception as exc:  # the pipe failed, or get_buffer did
                done.set_exception(exc)
                return
            if n == 0:
                self.close()
                done.set_result(None)
                return
            try:
                if buffer_updated(n):
                    done.set_result(None)
            except Exception as exc:
                done.set_exception(exc)

        self._loop.add_reader(self._fd, ready)
        try:
            await done
        finally:
            if not self._pipe.closed:
                self._loop.remove_reader(self._fd)

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes, ``b""`` at EOF (as ``StreamReader.read``; for a drain)."""
        buf = memoryview(bytearray(n))
        got = 0

        def updated(k: int) -> bool:
            nonlocal got
            got = k
            return True

        await self.pump(lambda: buf, updated)
        return bytes(buf[:got])

    def close(self) -> None:
        """Close our end (idempotent): after EOF, or when nobody will read it any more."""
        self.at_eof = True
        if not self._pipe.closed:
            self._loop.remove_reader(self._fd)
            self._pipe.close()


async def _reader(loop: asyncio.AbstractEventLoop, pipe: IO[bytes], limit: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    return reader


async def _writer(loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> asyncio.StreamWriter:
    protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop)
    transport, _ = await loop.connect_write_pipe(lambda: protocol, pipe)
    return asyncio.StreamWriter(transport, protocol, None, loop)


async def start_child(argv: Sequence[str], *, stdin: int | None, stdout: int | None, stderr: int | None,
                      pass_fds: Sequence[int] = (), limit: int = 1 << 16, direct_stdout: bool = False) -> Child:
    """Start ``argv`` in the spawner thread; its pipes (``subprocess.PIPE``) come back as streams
    (stdout as a :class:`PipeSource` with ``direct_stdout``).

    Raises what ``subprocess.Popen`` raises (``OSError`` when the program cannot be run).
    """
    loop = asyncio.get_running_loop()
    started: asyncio.Future[tuple[subprocess.Popen[bytes], int | None]] = loop.create_future()

    def deliver(result: Any, error: BaseException | None) -> None:
        if error is not None:
            started.set_exception(error)
        else:
            started.set_result(result)

    def job() -> None:
        try:
            popen = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr,
                                     pass_fds=tuple(pass_fds), close_fds=True)
        except Exception as exc:  # handed to the loop, which raises it
            _spawner.gone()
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, None, exc)
            return
        pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(popen.pid)
        try:
            loop.call_soon_threadsafe(deliver, (popen, pidfd), None)
        except RuntimeError:  # the loop closed meanwhile: nobody takes the child
            _abandon(popen, pidfd)

    _spawner.submit(job)
    try:
        popen, pidfd = await asyncio.shield(started)
    except asyncio.CancelledError:
        # The child is being started all the same: take it, end it and reap it, then give up.
        with contextlib.suppress(Exception):
            popen, pidfd = await started
            child = Child(popen, loop)
            child._watch_exit(pidfd)
            _close_pipes(popen)
            child.kill()
            await child.wait()
        raise
    child = Child(popen, loop)
    child._watch_exit(pidfd)
    try:
        await child._connect(limit, direct_stdout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        raise
    return child


def _close_pipes(popen: subprocess.Popen[bytes]) -> None:
    for pipe in (popen.stdin, popen.stdout, popen.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _abandon(popen: subprocess.Popen[bytes], pidfd: int | None) -> None:
    """In the spawner thread, once the loop has closed: end and reap a child nobody will watch."""
    with contextlib.suppress(OSError):
        popen.kill()
    if pidfd is not None:
        os.close(pidfd)
    _close_pipes(popen)
    with contextlib.suppress(ChildProcessError):
        popen.wait()
    _spawner.gone()
