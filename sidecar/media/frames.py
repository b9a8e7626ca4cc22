"""Small gray frames from ffmpeg for the motion detector, read so that ffmpeg never waits.

ffmpeg writes them as a YUV4MPEG2 stream (``-vf fps=5,scale=-2:100,format=gray -f
yuv4mpegpipe``): a header line that names the size, then ``FRAME`` + one plane per picture. The
format describes itself, so the reader needs no out-of-band width (the scaler picks it from the
camera's aspect) and a resolution change mid-stream cannot misalign frames.

Two parts, as everywhere in media/:

* :class:`Y4mReader`, sans-IO: bytes in, :class:`GrayFrame` out; bounded (a header or frame
  size beyond the limits is an error, never an allocation).
* :class:`FramePipe`, the asyncio adapter for the camera's long-lived ffmpeg. It makes a pipe,
  hands its write end to ffmpeg (``pass_fds``, so it keeps its own number in the child; never
  dup2'ed onto fd 3, which clobbered asyncio's epoll fd when tried, docs/cameras-and-nvrs.md §ffmpeg pipes) and reads
  the other end in the event loop (``add_reader``) as fast as bytes come. When several frames arrived since the
  last read (the loop was busy) only the newest is handed on and the rest are counted as
  dropped: a detector that falls behind drops frames; ffmpeg is never blocked, so the
  recording output of the same process is never slowed. The pipe buffer is raised to 1 MiB
  (about 60 frames) where the kernel allows, so even a loop stalled for seconds costs ffmpeg
  nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["DetectOutput", "DetectionZones", "FrameCallback", "FramePipe", "GrayFrame", "Y4mError", "Y4mReader",
           "read_frames"]

log = logging.getLogger(__name__)

MAX_HEADER = 512
MAX_SIDE = 4096
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# 8-bit y4m colour spaces we read. Only the luma plane is kept; chroma planes (if ffmpeg was
# not asked for gray) are skipped.
_COLOURS = frozenset({"mono", "420jpeg", "420paldv", "420mpeg2", "420", "422", "444"})


def _chroma_bytes(colour: str, width: int, height: int) -> int:
    half_w, half_h = (width + 1) // 2, (height + 1) // 2
    if colour == "mono":
        return 0
    if colour == "444":
        return 2 * width * height
    if colour == "422":
        return 2 * half_w * height
    return 2 * half_w * half_h


@dataclass(frozen=True, slots=True)
class DetectionZones:
    """Where motion counts in a camera's pictures, as the camera was told (by a hub's zones).

    Polygons of relative (0-1) x, y corners, so they fit any frame size. ``include`` empty: the
    whole picture counts; motion inside an ``exclude`` polygon never counts.
    """

    include: tuple[tuple[tuple[float, float], ...], ...] = ()
    exclude: tuple[tuple[tuple[float, float], ...], ...] = ()


@dataclass(frozen=True, slots=True)
class DetectOutput:
    """What the detector wants from ffmpeg: ``fps`` pictures a second, ``height`` rows, gray.

    ``area`` scaling averages the pixels it merges, so the small picture has less noise than a
    nearest-neighbour pick would; the width follows the camera's aspect (even, via ``-2``).
    """

    fps: float = 5.0
    height: int = 100

    def __post_init__(self) -> None:
        if not 0.5 <= self.fps <= 30:
            raise ValueError("detector fps must be 0.5-30")
        if not 16 <= self.height <= 1080:
            raise ValueError("detector frame height must be 16-1080")

    @property
    def filter(self) -> str:
        return f"fps={self.fps:g},scale=-2:{self.height}:flags=area,format=gray"

    def output_options(self) -> dict[str, str | None]:
        """ffmpeg output options for a y4m stream of these frames (no audio)."""
        return {"filter:v": self.filter, "an": None, "f": "yuv4mpegpipe"}

    def argv(self) -> list[str]:
        """The same options as command-line words (to put before the output name)."""
        return ["-filter:v", self.filter, "-an", "-f", "yuv4mpegpipe"]


class Y4mError(ValueError):
    """The stream is not a YUV4MPEG2 stream we can read."""


@dataclass(frozen=True, slots=True)
class GrayFrame:
    """One picture: ``height`` rows of ``width`` grey levels (``data`` is the luma plane).
    ``skipped``: the frames before this one that were dropped because the consumer was behind."""

    width: int
    height: int
    data: bytes
    skipped: int = 0


class Y4mReader:
    """YUV4MPEG2 bytes in, luma planes out. Sans-IO: no reads, no clock."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._width = 0
        self._height = 0
        self._extra = 0  # chroma bytes to skip after each luma plane
        self._header_done = False

    @property
    def size(self) -> tuple[int, int] | None:
        return (self._width, self._height) if self._header_done else None

    def feed(self, data: bytes | bytearray | memoryview) -> list[GrayFrame]:
        """Add bytes; return every frame now complete (possibly none)."""
        self._buf += data
        frames: list[GrayFrame] = []
        if not self._header_done and not self._parse_header():
            return frames
        luma = self._width * self._height
        while True:
            newline = self._buf.find(b"\n", 0, MAX_HEADER)
            if newline < 0:
                if len(self._buf) >= MAX_HEADER:
                    raise Y4mError("frame header too long")
                return frames
            if not self._buf.startswith(b"FRAME"):
                raise Y4mError("expected FRAME")
            end = newline + 1 + luma + self._extra
            if len(self._buf) < end:
                return frames
            frames.append(GrayFrame(self._width, self._height, bytes(self._buf[newline + 1:newline + 1 + luma])))
            del self._buf[:end]

    def _parse_header(self) -> bool:
        magic = b"YUV4MPEG2 "
        if bytes(self._buf[:len(magic)]) != magic[:len(self._buf)]:
            raise Y4mError("not a YUV4MPEG2 stream")
        newline = self._buf.find(b"\n", 0, MAX_HEADER)
        if newline < 0:
            if len(self._buf) >= MAX_HEADER:
                raise Y4mError("stream header too long")
            return False
        line = bytes(self._buf[:newline]).decode("ascii", "replace")
        fields = line.split(" ")
        if fields[0] != "YUV4MPEG2":
            raise Y4mError("not a YUV4MPEG2 stream")
        width = height = 0
        colour = "420jpeg"
        for item in fields[1:]:
            key, value = item[:1], item[1:]
            try:
                if key == "W":
                    width = int(value)
                elif key == "H":
                    height = int(value)
            except ValueError:
                raise Y4mError(f"bad size field {item!r}") from None
            if key == "C":
                colour = value
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise Y4mError(f"frame size {width}x{height} out of range")
        if colour not in _COLOURS:
            raise Y4mError(f"colour space {colour!r} not supported (ask ffmpeg for format=gray)")
        self._width, self._height = width, height
        self._extra = _chroma_bytes(colour, width, height)
        self._header_done = True
        del self._buf[:newline + 1]
        return True


FrameCallback = Callable[[GrayFrame, float], None]


class _Stats:
    __slots__ = ("bytes", "dropped", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.dropped = 0
        self.bytes = 0


def _deliver(frames: list[GrayFrame], stats: _Stats, on_frame: FrameCallback, now: float) -> None:
    """Hand on the newest frame only; what the consumer could not keep up with is dropped."""
    if not frames:
        return
    stats.frames += len(frames)
    stats.dropped += len(frames) - 1
    try:
        on_frame(replace(frames[-1], skipped=len(frames) - 1), now)
    except Exception:  # the detector's bug must not stop the reading (ffmpeg would block)
        log.exception("frame consumer failed")


class FramePipe:
    """A pipe for ffmpeg's detector output, read in the event loop. One per ffmpeg run.

    Usage (the runner's side)::

        pipe = FramePipe(on_frame)
        argv = [..., "-f", "yuv4mpegpipe", pipe.target]       # "pipe:<fd>"
        FfmpegRun(argv, pass_fds=pipe.pass_fds, on_spawn=lambda pid: pipe.start())
        ...
        await pipe.close()                                      # after ffmpeg exited (EOF) or now

    ``start()`` is synchronous (it only closes our copy of the write end and registers a reader
    with the loop), so it can run in the runner's ``on_spawn`` before any output is read.
    """

    def __init__(self, on_frame: FrameCallback, *, name: str = "camera",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.on_frame = on_frame
        self.name = name
        self._clock = clock
        self._reader = Y4mReader()
        self._stats = _Stats()
        self._failed: str | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_inheritable(self._write_fd, False)  # only pass_fds gives it to the child
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._write_fd, _F_SETPIPE_SZ, PIPE_SIZE)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._eof = asyncio.Event()

    @property
    def target(self) -> str:
        """The ffmpeg output name of the write end."""
        return f"pipe:{self._write_fd}"

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._write_fd,) if self._write_fd >= 0 else ()

    @property
    def frames(self) -> int:
        return self._stats.frames

    @property
    def dropped(self) -> int:
        return self._stats.dropped

    @property
    def error(self) -> str | None:
        return self._failed

    def start(self) -> None:
        """Close our copy of the write end (ffmpeg holds its own) and start reading."""
        self._close_write()
        if self._read_fd < 0 or self._loop is not None:
            return
        os.set_blocking(self._read_fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._read_fd, self._readable)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Wait briefly for EOF (ffmpeg exiting closes its end), then close our end."""
        self._close_write()
        if self._loop is not None and not self._eof.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._eof.wait(), timeout_s)
        self._close_read()

    def _close_write(self) -> None:
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1

    def _close_read(self) -> None:
        if self._read_fd < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        self._read_fd = -1
        self._eof.set()

    def _readable(self) -> None:
        """Read what is there (up to a few MiB: the newest frame wins anyway), then parse."""
        chunks: list[bytes] = []
        for _ in range(8):
            try:
                data = os.read(self._read_fd, 1 << 18)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                if self._loop is not None:
                    self._loop.remove_reader(self._read_fd)
                self._eof.set()
                break
            chunks.append(data)
        if chunks:
            self._received(b"".join(chunks))

    def _received(self, data: bytes) -> None:
        self._stats.bytes += len(data)
        if self._failed is not None:
            return  # keep draining so ffmpeg never blocks on this output
        try:
            frames = self._reader.feed(data)
        except Y4mError as exc:
            self._failed = str(exc)
            log.warning("%s: detector frames unreadable (%s); motion detection paused for this run", self.name, exc)
            return
        _deliver(frames, self._stats, self.on_frame, self._clock())


async def read_frames(stream: asyncio.StreamReader, on_frame: FrameCallback, *,
                      clock: Callable[[], float] = time.monotonic, chunk: int = 1 << 18) -> dict[str, Any]:
    """Read a y4m stream (a separate detector ffmpeg's stdout) to EOF, newest frame first.

    Returns counters (frames, dropped, bytes). Raises :class:`Y4mError` on a malformed stream.
    """
    reader = Y4mReader()
    stats = _Stats()
    while True:
        data = await stream.read(chunk)
        if not data:
            return {"frames": stats.frames, "dropped": stats.dropped, "bytes": stats.bytes}
        stats.bytes += len(data)
        _deliver(reader.feed(data), stats, on_frame, clock())
