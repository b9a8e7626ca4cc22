"""The RTSP side of talking through a camera, without I/O: :class:`BackchannelClient`.

An ONVIF Profile T camera (and go2rtc, and GStreamer's ONVIF server) offers a speaker as an
extra audio track of its RTSP stream, shown only to a client that asks for it with
``Require: www.onvif.org/ver20/backchannel`` (docs/two-way-audio.md). ffmpeg cannot be that
client as a sender, so this module is: it writes DESCRIBE (with the Require header), SETUP of the
track the camera marks ``a=sendonly`` (RTP over the RTSP connection, TCP interleaved), PLAY, and
keep-alives; it reads the answers, answers a 401 once with Basic or Digest credentials, and then
frames our RTP packets as ``$``-prefixed interleaved data.

Fed bytes (:meth:`BackchannelClient.receive`) and the time (``now``); returns bytes to send and
the time of the next keep-alive. It never touches a socket or a clock; the adapter
(:mod:`sidecar.camera.live.talkback`) does. Malformed input only ever raises
:class:`RtspError`, which is fuzzed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "BACKCHANNEL_REQUIRE",
    "BackchannelClient",
    "BackchannelTrack",
    "ClientState",
    "ResponseParser",
    "RtspError",
    "RtspResponse",
    "find_backchannel",
]

BACKCHANNEL_REQUIRE = "www.onvif.org/ver20/backchannel"
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "hksv-sidecar"


class RtspError(Exception):
    """The camera's RTSP answer is malformed or refuses the backchannel; the message says which, in words."""


@dataclass(frozen=True, slots=True)
class RtspResponse:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class Interleaved:
    """A ``$``-framed packet the camera sent on the RTSP connection (its RTCP, say)."""

    channel: int
    data: bytes


class ResponseParser:
    """Splits a byte stream from the camera into RTSP responses and interleaved packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[RtspResponse | Interleaved]:
        self._buffer += data
        out: list[RtspResponse | Interleaved] = []
        while self._buffer:
            if self._buffer[0] == 0x24:  # '$': interleaved binary data
                if len(self._buffer) < 4:
                    break
                length = int.from_bytes(self._buffer[2:4], "big")
                if len(self._buffer) < 4 + length:
                    break
                out.append(Interleaved(self._buffer[1], bytes(self._buffer[4:4 + length])))
                del self._buffer[:4 + length]
                continue
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise RtspError("an RTSP answer with headers longer than 16 KiB")
                break
            head = bytes(self._buffer[:end])
            status, reason, headers = _parse_head(head)
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise RtspError("an RTSP answer with a bad Content-Length") from None
            if not 0 <= length <= MAX_BODY_BYTES:
                raise RtspError(f"an RTSP answer with a body of {length} bytes")
            if len(self._buffer) < end + 4 + length:
                break
            body = bytes(self._buffer[end + 4:end + 4 + length])
            del self._buffer[:end + 4 + length]
            out.append(RtspResponse(status, reason, headers, body))
        return out


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.split("\r\n")
    match = re.fullmatch(r"RTSP/1\.0 (\d{3})(?: (.*))?", lines[0].strip())
    if match is None:
        raise RtspError(f"not an RTSP answer: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise RtspError(f"a malformed RTSP header line: {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), (match.group(2) or "").strip(), headers


@dataclass(frozen=True, slots=True)
class BackchannelTrack:
    """The camera's speaker track, from its SDP: where to SETUP it and what audio it takes."""

    control: str
    payload_type: int
    encoding: str  # PCMU, PCMA, MPEG4-GENERIC, ... (upper case)
    clock_rate: int
    channels: int = 1

    @property
    def ffmpeg_codec(self) -> str | None:
        """The ffmpeg encoder for this track, or ``None`` if we do not make it."""
        return {"PCMU": "pcm_mulaw", "PCMA": "pcm_alaw", "L16": "pcm_s16be", "OPUS": "libopus"}.get(self.encoding)


_STATIC_PAYLOADS = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 10: ("L16", 44100, 2), 11: ("L16", 44100, 1)}


def find_backchannel(sdp: str, base_url: str) -> BackchannelTrack:
    """The first ``a=sendonly`` audio track of a DESCRIBE answer (ONVIF marks the speaker track so).

    Raises :class:`RtspError` when there is none: the camera (or this URL) has no backchannel.
    """
    media: list[list[str]] = []
    session_base = base_url
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        elif line.startswith("a=control:"):
            session_base = _resolve(base_url, line.removeprefix("a=control:"))
    for lines in media:
        fields = lines[0][2:].split()
        if len(fields) < 4 or fields[0] != "audio" or "a=sendonly" not in lines:
            continue
        formats = [int(f) for f in fields[3:] if f.isdigit() and int(f) < 128]
        if not formats:
            continue
        payload_type = formats[0]
        rtpmap = _rtpmaps(lines).get(payload_type)
        if rtpmap is None and payload_type not in _STATIC_PAYLOADS:
            continue
        encoding, rate, channels = rtpmap or _STATIC_PAYLOADS[payload_type]
        control = next((ln.removeprefix("a=control:") for ln in lines if ln.startswith("a=control:")), "")
        return BackchannelTrack(_resolve(session_base, control), payload_type, encoding, rate, channels)
    raise RtspError("the camera offers no backchannel (no a=sendonly audio track in its answer to DESCRIBE)")


def _rtpmaps(lines: list[str]) -> dict[int, tuple[str, int, int]]:
    out: dict[int, tuple[str, int, int]] = {}
    for line in lines:
        match = re.fullmatch(r"a=rtpmap:(\d+) ([\w.-]+)/(\d+)(?:/(\d+))?", line)
        if match is None:
            continue
        try:
            pt, rate = int(match.group(1)), int(match.group(3))
            channels = int(match.group(4) or 1)
        except ValueError:
            continue
        if pt < 128 and 0 < rate <= 192000 and 0 < channels <= 8:
            out[pt] = (match.group(2).upper(), rate, channels)
    return out


def _resolve(base: str, control: str) -> str:
    if not control or control == "*":
        return base
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", control):
        return control
    return base.rstrip("/") + "/" + control.lstrip("/")


class ClientState(enum.Enum):
    DESCRIBING = "describing"
    SETTING_UP = "setting up"
    STARTING = "starting"
    PLAYING = "playing"
    FAILED = "failed"


@dataclass
class _Credentials:
    user: str
    password: str


@dataclass
class BackchannelClient:
    """One talk session's RTSP conversation with the camera (see the module doc).

    ``url`` may carry ``user:password@``; it is never put into a request line with them.
    Call :meth:`start` for the first bytes to send, :meth:`receive` with every chunk read (it
    returns the bytes to send next), :meth:`frame` for each RTP packet once :attr:`state` is
    ``PLAYING``, :meth:`poll` with the time for keep-alives, :meth:`teardown` at the end.
    """

    url: str
    keepalive_s: float = 30.0
    state: ClientState = ClientState.DESCRIBING
    track: BackchannelTrack | None = None
    session: str | None = None
    error: str | None = None
    channel: int = 0
    _cseq: int = 0
    _parser: ResponseParser = field(default_factory=ResponseParser)
    _auth: _Credentials | None = None
    _challenge: dict[str, str] | None = None
    _basic: bool = False
    _retried: bool = False
    _pending: tuple[str, str, dict[str, str]] | None = None
    _next_keepalive: float | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "rtsp" or not parts.hostname:
            raise RtspError(f"a backchannel needs an rtsp:// URL, not {parts.scheme or 'no scheme'}")
        if parts.username is not None:
            self._auth = _Credentials(unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        if ":" in (parts.hostname or "") and parts.port is not None:
            netloc = f"[{parts.hostname}]:{parts.port}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    # -- the conversation ---------------------------------------------------------------------
    def start(self) -> bytes:
        return self._request("DESCRIBE", self.url, {"Accept": "application/sdp", "Require": BACKCHANNEL_REQUIRE})

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the camera; returns what to send in answer (maybe nothing)."""
        out = b""
        try:
            items = self._parser.feed(data)
        except RtspError as exc:
            self._fail(str(exc))
        for item in items:
            if isinstance(item, Interleaved):
                continue  # the camera's RTCP for our track: nothing to do with it
            out += self._answer(item, now)
        return out

    def frame(self, rtp: bytes) -> bytes:
        """One RTP packet framed for the RTSP connection (``$``, channel, length)."""
        if self.state is not ClientState.PLAYING:
            raise RtspError("the backchannel is not playing")
        if len(rtp) > 0xFFFF:
            raise RtspError("an RTP packet longer than 65535 bytes")
        return b"$" + bytes([self.channel]) + len(rtp).to_bytes(2, "big") + rtp

    def poll(self, now: float) -> tuple[bytes, float | None]:
        """A keep-alive when one is due; and when to call again."""
        if self.state is not ClientState.PLAYING or self._next_keepalive is None:
            return b"", None
        if now < self._next_keepalive:
            return b"", self._next_keepalive
        self._next_keepalive = now + self.keepalive_s
        return self._request("GET_PARAMETER", self.url, {}), self._next_keepalive

    def teardown(self) -> bytes:
        if self.session is None or self.state is ClientState.FAILED:
            return b""
        data = self._request("TEARDOWN", self.url, {})
        self.state = ClientState.FAILED
        self.error = "torn down"
        return data

    # -- internals -------------------------------------------------------------------------------
    def _fail(self, message: str) -> NoReturn:
        self.state, self.error = ClientState.FAILED, message
        raise RtspError(message)

    def _answer(self, response: RtspResponse, now: float) -> bytes:
        if self.state is ClientState.PLAYING:
            return b""  # a keep-alive's answer (whatever it says, the stream goes on)
        if self.state is ClientState.FAILED:
            return b""
        if response.status == 401 and not self._retried and self._auth is not None and self._pending is not None:
            self._retried = True
            self._read_challenge(response.header("www-authenticate"))
            method, uri, headers = self._pending
            return self._request(method, uri, headers)
        if response.status == 401:
            return self._fail("the camera wants a user and password for its backchannel (401): put them in the URL")
        if not 200 <= response.status < 300:
            what = "DESCRIBE with the backchannel" if self.state is ClientState.DESCRIBING else self.state.value
            return self._fail(f"the camera refused {what}: {response.status} {response.reason}".rstrip())
        if self.state is ClientState.DESCRIBING:
            base = response.header("content-base") or response.header("content-location") or self.url
            try:
                sdp = response.body.decode("utf-8")
            except UnicodeDecodeError:
                sdp = response.body.decode("latin-1")
            try:
                self.track = find_backchannel(sdp, base)
            except RtspError as exc:
                return self._fail(str(exc))
            self.state = ClientState.SETTING_UP
            return self._request("SETUP", self.track.control, {
                "Transport": f"RTP/AVP/TCP;unicast;interleaved={self.channel}-{self.channel + 1}",
                "Require": BACKCHANNEL_REQUIRE})
        if self.state is ClientState.SETTING_UP:
            session = response.header("session")
            if not session:
                return self._fail("the camera's SETUP answer has no Session")
            self.session, _, params = session.partition(";")
            self.session = self.session.strip()
            match = re.search(r"timeout=(\d+)", params)
            if match is not None and int(match.group(1)) > 0:
                self.keepalive_s = min(self.keepalive_s, max(1.0, int(match.group(1)) / 2))
            transport = response.header("transport")
            match = re.search(r"interleaved=(\d+)", transport)
            if match is not None and int(match.group(1)) < 256:
                self.channel = int(match.group(1))
            self.state = ClientState.STARTING
            return self._request("PLAY", self.url, {"Range": "npt=0.000-", "Require": BACKCHANNEL_REQUIRE})
        self.state = ClientState.PLAYING  # PLAY answered 2xx
        self._next_keepalive = now + self.keepalive_s
        return b""

    def _read_challenge(self, header: str) -> None:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "digest":
            self._challenge = {k.lower(): v for k, v in re.findall(r'(\w+)="?([^",]*)"?', rest)}
        else:
            self._basic = True

    def _authorization(self, method: str, uri: str) -> str | None:
        if self._auth is None:
            return None
        if self._challenge is not None:
            realm, nonce = self._challenge.get("realm", ""), self._challenge.get("nonce", "")
            ha1 = hashlib.md5(f"{self._auth.user}:{realm}:{self._auth.password}".encode(), usedforsecurity=False)
            ha2 = hashlib.md5(f"{method}:{uri}".encode(), usedforsecurity=False)
            digest = hashlib.md5(f"{ha1.hexdigest()}:{nonce}:{ha2.hexdigest()}".encode(), usedforsecurity=False)
            return (f'Digest username="{self._auth.user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                    f'response="{digest.hexdigest()}"')
        if self._basic:
            token = base64.b64encode(f"{self._auth.user}:{self._auth.password}".encode()).decode()
            return f"Basic {token}"
        return None

    def _request(self, method: str, uri: str, headers: dict[str, str]) -> bytes:
        self._cseq += 1
        self._pending = (method, uri, headers)
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if self.session is not None:
            lines.append(f"Session: {self.session}")
        authorization = self._authorization(method, uri)
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
