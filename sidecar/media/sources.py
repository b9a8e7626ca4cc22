"""Camera sources: any URL or path ffmpeg can read, plus a built-in ``demo`` test pattern.

A :class:`Source` turns into one or more ffmpeg inputs with the options that make a live
pipeline safe: RTSP over TCP with a socket timeout (without it a stalled camera hangs ffmpeg
forever; with it ffmpeg exits, and the supervisor restarts it: docs/cameras-and-nvrs.md §RTSP drops), an I/O
timeout for HTTP, real-time reading for files (a file read at full speed would fill a
prebuffer with minutes of "live" video in a second).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..redact import mask_url, register_url_secrets

__all__ = ["DEMO_SPEC", "InputSpec", "Source", "SourceKind", "parse_source"]

DEMO_SPEC = "demo"


class SourceKind(enum.Enum):
    RTSP = "rtsp"
    HTTP = "http"
    FILE = "file"
    DEMO = "demo"
    OTHER = "other"  # anything else ffmpeg understands (udp://, srt://, ...), passed through


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One ffmpeg ``-i`` with the options that go before it."""

    url: str
    options: Mapping[str, str | None]

    def argv(self) -> list[str]:
        """``-opt value ... -i url``: the one place an input becomes ffmpeg arguments."""
        out: list[str] = []
        for key, value in self.options.items():
            out += [f"-{key}"] if value is None else [f"-{key}", value]
        return [*out, "-i", self.url]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a camera's video (and maybe audio) comes from.

    Attributes:
        url: as given (``rtsp://...``, ``https://...``, a path, ``file:...``, or ``demo``).
        loop: replay a file forever (``-stream_loop -1``); for tests, demos and benchmarks.
        has_audio: ``None`` = find out from the first init segment; ``False`` = the source has
            no usable audio, add a silent track; ``True`` = it has audio.
        timeout_s: socket/I-O timeout for network sources; ffmpeg exits when it expires.
        extra_input_options: appended to the generated input options (override them).
        demo_size, demo_fps: the demo pattern's size and rate (encodable in real time on two
            cores with lots of room: 640x360 at 15 fps costs a few percent of one core).
    """

    url: str
    loop: bool = False
    has_audio: bool | None = None
    timeout_s: float = 5.0
    extra_input_options: Mapping[str, str | None] = field(default_factory=dict)
    demo_size: tuple[int, int] = (640, 360)
    demo_fps: int = 15

    def __post_init__(self) -> None:
        # Whatever prints this URL later (or ffmpeg's echo of it), its password is masked.
        register_url_secrets(self.url)

    @property
    def kind(self) -> SourceKind:
        lower = self.url.lower()
        if lower == DEMO_SPEC:
            return SourceKind.DEMO
        if lower.startswith(("rtsp://", "rtsps://")):
            return SourceKind.RTSP
        if lower.startswith(("http://", "https://")):
            return SourceKind.HTTP
        if lower.startswith("file:") or "://" not in lower:
            return SourceKind.FILE
        return SourceKind.OTHER

    @property
    def must_encode(self) -> bool:
        """True if there is no H.264 stream to copy (the demo pattern is raw video)."""
        return self.kind is SourceKind.DEMO

    @property
    def known_audio(self) -> bool | None:
        """What we know about audio before running ffmpeg (the demo has a tone)."""
        if self.kind is SourceKind.DEMO:
            return True
        return self.has_audio

    def describe(self) -> str:
        """The URL with any password masked, for logs and the status page."""
        return mask_url(self.url)

    def endpoint(self) -> tuple[str, int] | None:
        """The camera's host and TCP port for a network source (``None`` for files, demo...)."""
        defaults = {SourceKind.RTSP: 554, SourceKind.HTTP: 80}
        kind = self.kind
        if kind not in defaults:
            return None
        try:
            parts = urlsplit(self.url)
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        scheme = parts.scheme.lower()
        default = {"rtsps": 322, "https": 443}.get(scheme, defaults[kind])
        return parts.hostname, port if port is not None else default

    def inputs(self) -> tuple[InputSpec, ...]:
        """The ffmpeg inputs: video (and audio, if any) from input 0, except for ``demo``,
        whose tone is a second input."""
        timeout_us = str(int(self.timeout_s * 1_000_000))
        kind = self.kind
        opts: dict[str, str | None]
        if kind is SourceKind.DEMO:
            w, h = self.demo_size
            video = InputSpec(
                f"testsrc2=size={w}x{h}:rate={self.demo_fps}",
                {"f": "lavfi", "re": None},
            )
            tone = InputSpec(
                "sine=frequency=440:sample_rate=32000:beep_factor=4",
                {"f": "lavfi", "re": None},
            )
            return video, tone
        # thread_queue_size: with a second input (the silent track) ffmpeg reads each input on
        # its own thread; the default queue of 8 packets makes a live camera's thread wait.
        if kind is SourceKind.RTSP:
            opts = {"rtsp_transport": "tcp", "timeout": timeout_us, "thread_queue_size": "512"}
        elif kind is SourceKind.HTTP:
            opts = {"rw_timeout": timeout_us, "reconnect": "1", "reconnect_streamed": "1",
                    "thread_queue_size": "512"}
        elif kind is SourceKind.FILE:
            opts = {"re": None}
            if self.loop:
                opts["stream_loop"] = "-1"
        else:
            opts = {}
        opts.update(self.extra_input_options)
        url = self.url
        if kind is SourceKind.FILE and not url.lower().startswith("file:"):
            url = str(Path(url))
        return (InputSpec(url, opts),)


def parse_source(spec: str, *, loop: bool = False, has_audio: bool | None = None) -> Source:
    """Build a :class:`Source` from a configuration string.

    ``demo`` gives the built-in test pattern; ``loop:<path>`` is a looping file; anything else
    is passed to ffmpeg as is.
    """
    spec = spec.strip()
    if not spec:
        raise ValueError("empty source")
    if spec.lower().startswith("loop:"):
        return Source(spec[5:], loop=True, has_audio=has_audio)
    return Source(spec, loop=loop, has_audio=has_audio)
