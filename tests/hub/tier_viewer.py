"""A tvOS 27 hub watching one live tier of a secure-video camera (docs/secure-video.md §Behaviour).

The hub's steps as reports of real hub traffic describe them: write SetupEndpoints on the
Multi-Tier RTP Stream Management service (its address, ports and SRTP keys) and read our answer
back; write RTPStreamingControl start with a tier id; receive SRTP; write RTPStreamingControl end.

Its ports are a relay: every packet is authenticated and decrypted with the keys of our answer
(so its SSRC, payload type and RTP timestamps can be checked), then forwarded untouched to a real
ffmpeg that decodes the stream through an SDP, as the Home app's player would. The decoded frames
are counted as they come, so a test can bound the frame rate over a window.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiohomekit.controller.ip import IpPairing

from sidecar.camera.live.talkback import free_port_pair
from sidecar.camera.secure_video import tlv as sv
from tests.hub.hap_setup import setup_write
from tests.hub.secure_video import SecureVideoView
from tests.support.live_view import KEY, SALT, decode_setup_response, setup_tlv, wait_until
from tests.support.srtp import RtpPacket, SrtpSession

__all__ = ["TierWatch", "control", "wait_for_span", "watch_tier"]

SETUP = ("8031", "118")
CONTROL = ("8031", "8045")
HUB_VIDEO_SSRC, HUB_AUDIO_SSRC = 0x1234, 0x5678  # what the hub writes in its start (we must not use them)


@dataclass
class _Relay(asyncio.DatagramProtocol):
    """One hub port: keeps each authenticated RTP packet, forwards the datagram to the decoder."""

    session: SrtpSession
    forward_to: tuple[str, int]
    packets: list[RtpPacket] = field(default_factory=list)
    rejected: int = 0
    transport: Any = None  # the loop's datagram transport (not a DatagramTransport subclass in 3.11)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) >= 2 and 200 <= data[1] <= 204:
            return  # RTCP: not the decoder's business
        try:
            self.packets.append(self.session.unprotect(data, time.monotonic()))
        except ValueError:
            self.rejected += 1
            return
        if self.transport is not None:
            self.transport.sendto(data, self.forward_to)


@dataclass
class TierWatch:
    """What the hub saw of one tier: our SetupEndpoints answer, the packets, the decoded frames."""

    session_id: bytes
    answer: dict[str, Any]
    video: _Relay
    audio: _Relay
    tier: sv.VideoTier
    frame_times: list[float] = field(default_factory=list)
    stderr: str = ""

    def decoded_size(self) -> tuple[int, int]:
        """The picture size the decoder reported (``Video: h264 ..., WxH`` or ``Video: hevc ...``)."""
        m = re.search(r"Video: (?:h264|hevc)[^\n]*?, (\d+)x(\d+)", self.stderr)
        assert m, self.stderr
        return int(m.group(1)), int(m.group(2))

    def frames_within(self, seconds: float, after: float) -> int:
        """Frames decoded in the ``seconds`` that start ``after`` s after the first one (the
        decoder holds the frames of its stream analysis and hands them over at once: skip that)."""
        if not self.frame_times:
            return 0
        start = self.frame_times[0] + after
        return sum(1 for t in self.frame_times if start < t <= start + seconds)

    def audio_steps(self) -> set[int]:
        """RTP timestamp steps between consecutive audio packets (960: 20 ms on a 48 kHz clock)."""
        return {(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(self.audio.packets)
                if b.sequence == (a.sequence + 1) % 2**16}


def _sdp(video_port: int, audio_port: int, answer: dict[str, Any], payload: str, audio: bool) -> str:
    v_key = base64.b64encode(answer["video_key"]).decode()
    a_key = base64.b64encode(answer["audio_key"]).decode()
    lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=tier", "c=IN IP4 127.0.0.1", "t=0 0",
             f"m=video {video_port} RTP/SAVP 99", f"a=rtpmap:99 {payload}/90000",
             "a=fmtp:99 packetization-mode=1", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{v_key}"]
    if audio:
        lines += [f"m=audio {audio_port} RTP/SAVP 110", "a=rtpmap:110 opus/48000/2",
                  f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{a_key}"]
    return "\n".join(lines) + "\n"


async def control(pairing: IpPairing, view: SecureVideoView, session_id: bytes, command: sv.ControlCommand,
                  tier: int | None = None, audio_tier: int | None = None) -> sv.ControlStatus:
    """Write RTPStreamingControl (with a write response) and decode the answer."""
    start = command is sv.ControlCommand.START
    raw = sv.StreamingControl(session_id, command, tier, HUB_VIDEO_SSRC if start else None,
                              audio_tier if start else None,
                              HUB_AUDIO_SSRC if start and audio_tier is not None else None).encode()
    entry = await setup_write(pairing, view.ids[CONTROL], raw)
    assert entry.get("status", 0) == 0, entry
    answer = sv.parse_control_response(base64.b64decode(entry["value"]))
    assert answer.session_id == session_id
    return answer.status


@contextlib.asynccontextmanager
async def watch_tier(pairing: IpPairing, view: SecureVideoView, tier: sv.VideoTier, tmp: Path, *,
                     session_id: bytes, audio: bool = True, payload: str = "H264") -> AsyncIterator[TierWatch]:
    """Set a session up, start ``tier`` (and the audio tier when ``audio``) with a decoder
    listening; yields while it streams, then writes end and stops the decoder."""
    loop = asyncio.get_running_loop()
    hub_video, hub_audio = free_port_pair(), free_port_pair()
    dec_video, dec_audio = free_port_pair(), free_port_pair()
    raw = setup_tlv(session_id, video_port=hub_video, audio_port=hub_audio, key=KEY, salt=SALT)
    result = await pairing.put_characteristics([(1, view.ids[SETUP], base64.b64encode(raw).decode())])
    assert not result, result
    read = await pairing.get_characteristics([(1, view.ids[SETUP])])
    answer = decode_setup_response(base64.b64decode(read[(1, view.ids[SETUP])]["value"]))
    assert answer["status"] == 0 and answer["session_id"] == session_id, answer
    relays: list[_Relay] = []
    transports: list[asyncio.BaseTransport] = []
    decoder: asyncio.subprocess.Process | None = None
    readers: list[asyncio.Task[None]] = []
    try:
        for port, key, target in ((hub_video, answer["video_key"], dec_video),
                                  (hub_audio, answer["audio_key"], dec_audio)):
            transport, relay = await loop.create_datagram_endpoint(
                lambda key=key, target=target: _Relay(SrtpSession(key), ("127.0.0.1", target)),
                local_addr=("127.0.0.1", port))
            transports.append(transport)
            relays.append(relay)
        watch = TierWatch(session_id, answer, relays[0], relays[1], tier)
        sdp = tmp / f"{session_id.hex()}.sdp"
        sdp.write_text(_sdp(dec_video, dec_audio, answer, payload, audio))
        decoder = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-nostdin", "-protocol_whitelist", "file,udp,rtp,srtp,crypto",
            "-i", str(sdp), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray",
            "pipe:1", *(["-map", "0:a:0", "-f", "null", "-"] if audio else []),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        frame_bytes = tier.width * tier.height
        stderr_lines: list[str] = []

        async def read_frames(stream: asyncio.StreamReader) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError):
                while True:
                    await stream.readexactly(frame_bytes)
                    watch.frame_times.append(time.monotonic())

        async def read_stderr(stream: asyncio.StreamReader) -> None:
            while line := await stream.readline():
                stderr_lines.append(line.decode(errors="replace"))
                watch.stderr = "".join(stderr_lines)

        assert decoder.stdout is not None and decoder.stderr is not None
        readers = [loop.create_task(read_frames(decoder.stdout)), loop.create_task(read_stderr(decoder.stderr))]
        pid = decoder.pid

        def bound() -> bool:
            try:
                ports = {c.laddr.port for c in psutil.Process(pid).net_connections(kind="udp")}
            except psutil.Error:
                return False
            return dec_video in ports and (dec_audio in ports or not audio)

        await wait_until(bound, 10, "the decoder's UDP ports")
        assert await control(pairing, view, session_id, sv.ControlCommand.START, tier.tier_id,
                             1 if audio else None) == sv.ControlStatus.OK
        yield watch
        assert await control(pairing, view, session_id, sv.ControlCommand.END) == sv.ControlStatus.OK
    finally:
        if decoder is not None and decoder.returncode is None:
            decoder.kill()
        if decoder is not None:
            await decoder.wait()
        for task in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in transports:
            transport.close()


async def wait_for_span(watch: TierWatch, seconds: float, timeout: float) -> None:
    """Wait (at most ``timeout`` s) until a frame is decoded more than ``seconds`` after the first."""
    await wait_until(lambda: len(watch.frame_times) > 1 and watch.frame_times[-1] - watch.frame_times[0] > seconds,
                     timeout, f"{seconds} s of decoded frames")
