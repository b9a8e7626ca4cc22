"""Two-way audio, the asyncio adapter: :class:`Talkback` delivers one live session's return audio.

What the person says in the Home app arrives as the controller's SRTP Opus on the session's
audio port (docs/two-way-audio.md). :class:`~sidecar.camera.live.streaming.LiveStreaming` hands
each such packet to :meth:`Talkback.datagram`, which relays it at once to a loopback port of the
talk ffmpeg. That ffmpeg (run by the shared runner, like every ffmpeg here) reads an SDP from
its stdin, so the controller's key never lands in a file, decrypts and decodes, resamples, and
writes the target's codec: RTP to a loopback port of ours for an ONVIF backchannel (each packet
then goes onto the camera's RTSP connection, framed by
:class:`~sidecar.camera.live.rtsp_backchannel.BackchannelClient`), or any ffmpeg output.

A target that refuses gives one warning in words and nothing else: the live view goes on, the
talk path is not retried before the next live view, and the recording ffmpeg is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ...media.runner import EndKind, FfmpegRun, RunResult
from ...redact import register_url_secrets
from ..spec import TwoWayAudio
from .rtsp_backchannel import BackchannelClient, BackchannelTrack, ClientState, RtspError

__all__ = ["Talkback", "build_talk_argv", "free_port_pair", "talk_sdp"]

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 16000
RTSP_PORT = 554


def talk_sdp(port: int, payload_type: int, sample_rate_hz: int, key_salt_b64: str) -> str:
    """The SDP the talk ffmpeg reads on stdin: the controller's SRTP Opus on a loopback port.

    The clock is the selected sample rate, not RFC 7587's 48 kHz: HomeKit counts Opus RTP time
    in samples at the selected rate (docs/streaming.md §Opus RTP time)."""
    return "\r\n".join([
        "v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=talk", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=audio {port} RTP/SAVP {payload_type}", f"a=rtpmap:{payload_type} opus/{sample_rate_hz}/1",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key_salt_b64}", ""])


def build_talk_argv(ffmpeg: str, output: list[str]) -> list[str]:
    """The talk ffmpeg: the SDP on stdin, nothing buffered on the way in, ``output`` after."""
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
            "-protocol_whitelist", "pipe,udp,rtp,srtp,crypto",
            "-fflags", "nobuffer", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0",
            "-reorder_queue_size", "0", "-f", "sdp", "-i", "pipe:0", "-vn", "-sn", "-dn", *output]


def free_port_pair() -> int:
    """A loopback UDP port P with P+1 free too (an ffmpeg RTP input or output binds both: RTP and RTCP)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            if port % 2 or port > 65000:
                continue
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise OSError("no free loopback UDP port pair")


class _Forward(asyncio.DatagramProtocol):
    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._send(data)


class Talkback:
    """One live session's return audio, from its start to its end (see the module doc).

    ``await run()`` until :meth:`stop`; :meth:`datagram` with each RTP packet the controller
    sends to the session's audio port. ``warning`` holds the one warning given, if any.
    """

    def __init__(self, *, name: str, config: TwoWayAudio, source_url: str, srtp_key_b64: str, payload_type: int,
                 sample_rate_hz: int, ffmpeg: str = "ffmpeg", muted: Callable[[], bool] = lambda: False,
                 volume: Callable[[], int] = lambda: 100, connect_timeout_s: float = 10.0) -> None:
        self.name = name
        self.config = config
        self.target = config.target or source_url
        self.ffmpeg = ffmpeg
        self._key = srtp_key_b64
        self._payload_type = payload_type
        self._sample_rate = sample_rate_hz
        self._muted = muted
        self._volume = volume
        self.connect_timeout_s = connect_timeout_s
        self.warning: str | None = None
        self.packets_in = 0
        self.packets_out = 0
        self.run_: FfmpegRun | None = None
        self._relay: socket.socket | None = None
        self._relay_to: tuple[str, int] | None = None
        self._stopped = asyncio.Event()
        register_url_secrets(self.target)

    # -- from LiveStreaming ----------------------------------------------------------------------
    def datagram(self, data: bytes) -> None:
        """A packet of the controller's return audio: to the talk ffmpeg at once (unless muted).

        Only the selected payload type goes on: comfort noise (payload type 13, which we do not
        advertise, so a controller should not send it) would only be a pause to the target."""
        self.packets_in += 1
        if self._relay is None or self._relay_to is None or self._muted():
            return
        if len(data) < 12 or data[1] & 0x7F != self._payload_type:
            return
        with contextlib.suppress(OSError):  # a full buffer drops a packet, as the network would
            self._relay.sendto(data, self._relay_to)

    def stop(self) -> None:
        self._stopped.set()
        if self.run_ is not None:
            self.run_.request_stop("the live session ended")

    async def run(self) -> None:
        """Open the target, run the talk ffmpeg until the session ends; warn once on a refusal."""
        writer: asyncio.StreamWriter | None = None
        client: BackchannelClient | None = None
        transports: list[asyncio.BaseTransport] = []
        helpers: list[asyncio.Task[None]] = []
        ffmpeg_task: asyncio.Task[RunResult] | None = None
        try:
            if self.config.backchannel:
                client = BackchannelClient(self.target)
                reader, writer = await self._open_backchannel(client)
                assert client.track is not None
                output, transport = await self._backchannel_output(client, client.track, writer)
                transports.append(transport)
                helpers.append(asyncio.get_running_loop().create_task(
                    self._serve_backchannel(client, reader, writer), name=f"{self.name}:talk-rtsp"))
            else:
                output = self._ffmpeg_output()
            if self._stopped.is_set():
                return
            port = free_port_pair()
            relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            relay.setblocking(False)
            self._relay, self._relay_to = relay, ("127.0.0.1", port)
            argv = build_talk_argv(self.ffmpeg, self._gain() + output)
            sdp = talk_sdp(port, self._payload_type, self._sample_rate, self._key)
            run = FfmpegRun(argv, name=f"{self.name}:talk", stdin_data=sdp.encode("ascii"),
                            on_stderr=lambda line: log.debug("%s: talk ffmpeg: %s", self.name, line))
            self.run_ = run
            if self._stopped.is_set():
                run.request_stop("the live session ended")
            log.info("%s: talk: to %s", self.name, "the camera's backchannel" if client else self.config.format)
            loop = asyncio.get_running_loop()
            ffmpeg_task = loop.create_task(run.run(), name=f"{self.name}:talk-ffmpeg")
            stopped = loop.create_task(self._stopped.wait(), name=f"{self.name}:talk-stop")
            try:
                done, _ = await asyncio.wait([ffmpeg_task, stopped, *helpers], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            if ffmpeg_task in done:
                result = ffmpeg_task.result()
                if result.end is not EndKind.STOPPED:
                    self._warn(f"the talk ffmpeg ended: {result.reason}")
            elif not self._stopped.is_set():  # the camera closed the backchannel
                self._warn("the camera closed the backchannel")
        except RtspError as exc:
            self._warn(str(exc))
        except TimeoutError:
            self._warn(f"the camera's backchannel did not answer within {self.connect_timeout_s:g} s")
        except OSError as exc:
            what = "the camera's backchannel" if self.config.backchannel else "the talk target"
            self._warn(f"cannot reach {what}: {exc.strerror or exc}")
        finally:
            if self.run_ is not None:
                self.run_.request_stop("the live session ended")
            if ffmpeg_task is not None:
                await self._nudge_until_done(ffmpeg_task)
            if self._relay is not None:
                self._relay.close()
                self._relay = None
            for task in helpers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for transport in transports:
                transport.close()
            if writer is not None:
                if client is not None:
                    with contextlib.suppress(Exception):
                        writer.write(client.teardown())
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    # -- internals ---------------------------------------------------------------------------------
    async def _nudge_until_done(self, ffmpeg_task: asyncio.Task[RunResult]) -> None:
        """Wait for the talk ffmpeg to be reaped. Once it is transcoding, ffmpeg acts on one
        SIGTERM only between two input packets, and a person who stopped talking sends none;
        a second signal interrupts its wait for input (ffmpeg's own rule: the second signal
        aborts blocking I/O), so it still finishes its output and exits by itself."""
        first = True
        while not ffmpeg_task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait([ffmpeg_task], timeout=0.3)
            pid = self.run_.pid if self.run_ is not None else None
            if not ffmpeg_task.done() and pid is not None and self.run_ is not None and self.run_.running:
                if not first:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                first = False
        with contextlib.suppress(asyncio.CancelledError, Exception):
            ffmpeg_task.result()

    def _gain(self) -> list[str]:
        """The Speaker's Volume, as a gain the talk ffmpeg applies from its start (a change
        during a talk applies from the next live view)."""
        volume = max(0, min(100, self._volume()))
        return [] if volume == 100 else ["-af", f"volume={volume / 100:.2f}"]

    def _warn(self, text: str) -> None:
        if self.warning is None and not self._stopped.is_set():
            self.warning = text
            log.warning("%s: talk: %s; the live view goes on without it", self.name, text)

    def _ffmpeg_output(self) -> list[str]:
        # No aresample=async here: a pause in the talk must stay a gap in time, not become a
        # burst of silence that the target would then play before the next words.
        out: list[str] = []
        if self.config.codec:
            out += ["-c:a", self.config.codec]
        out += ["-ar", str(self.config.sample_rate or DEFAULT_SAMPLE_RATE), "-ac", "1", "-flush_packets", "1",
                "-f", self.config.format, "-y", self.target]
        return out

    async def _open_backchannel(self, client: BackchannelClient) -> tuple[asyncio.StreamReader,
                                                                          asyncio.StreamWriter]:
        parts = urlsplit(self.target)
        host, port = parts.hostname or "", parts.port or RTSP_PORT
        async with asyncio.timeout(self.connect_timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(client.start())
                while client.state is not ClientState.PLAYING:
                    data = await reader.read(65536)
                    if not data:
                        raise RtspError("the camera closed the connection before PLAY")
                    answer = client.receive(data, time.monotonic())
                    if answer:
                        writer.write(answer)
            except BaseException:
                writer.close()
                raise
        return reader, writer

    async def _backchannel_output(self, client: BackchannelClient, track: BackchannelTrack,
                                  writer: asyncio.StreamWriter) -> tuple[list[str], asyncio.BaseTransport]:
        codec = self.config.codec or track.ffmpeg_codec
        if codec is None:
            raise RtspError(f"the camera's backchannel takes {track.encoding}/{track.clock_rate}, "
                            "which the talk path does not make")

        def send(packet: bytes) -> None:
            if writer.is_closing():
                return
            with contextlib.suppress(RtspError):
                writer.write(client.frame(packet))
                self.packets_out += 1

        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Forward(send), local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        rate = self.config.sample_rate or track.clock_rate
        output = ["-c:a", codec, "-ar", str(rate), "-ac", str(track.channels),
                  "-f", "rtp", "-payload_type", str(track.payload_type), f"rtp://127.0.0.1:{port}?pkt_size=1200"]
        return output, transport

    async def _serve_backchannel(self, client: BackchannelClient, reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
        """Read the camera's side (keep-alive answers, its RTCP) and send keep-alives, until it closes."""
        while True:
            data, due = client.poll(time.monotonic())
            if data:
                writer.write(data)
            wait = 1.0 if due is None else max(0.05, min(5.0, due - time.monotonic()))
            try:
                async with asyncio.timeout(wait):
                    chunk = await reader.read(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            with contextlib.suppress(RtspError):
                answer = client.receive(chunk, time.monotonic())
                if answer:
                    writer.write(answer)
