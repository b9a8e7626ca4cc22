"""The controller's return audio for the talk tests: a known tone as SRTP Opus packets.

The sending counterpart of :mod:`tests.support.srtp` (RFC 3711, AES_CM_128_HMAC_SHA1_80): the
tone is encoded by ffmpeg (libopus, 20 ms frames, at the selected rate) into an Ogg stream,
whose packets become RTP payloads; timestamps count samples at the selected rate, as HomeKit
clocks Opus. :func:`send_paced` sends them in real time, each at its due moment.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

from tests.support.srtp import SrtpSession

__all__ = ["RtpSender", "ogg_packets", "opus_tone_packets", "send_paced"]


def ogg_packets(data: bytes) -> list[bytes]:
    """The packets of an Ogg stream (one logical stream), in order."""
    packets: list[bytes] = []
    partial = b""
    pos = 0
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError("not an Ogg page")
        segments = data[pos + 26]
        table = data[pos + 27:pos + 27 + segments]
        body = pos + 27 + segments
        for lace in table:
            partial += data[body:body + lace]
            body += lace
            if lace < 255:
                packets.append(partial)
                partial = b""
        pos = body
    return packets


async def opus_tone_packets(freq_hz: float, seconds: float, sample_rate: int = 16000, *,
                            bursts: bool = False) -> list[bytes]:
    """``seconds`` of a sine at ``freq_hz`` as 20 ms Opus packets (mono, ``sample_rate``).

    ``bursts``: the tone only in the first 200 ms of every second, silence between (onsets to
    time the latency by)."""
    source = f"sine=f={freq_hz}:r=48000:d={seconds}"
    if bursts:
        source += ",volume=eval=frame:volume='if(lt(mod(t\\,1)\\,0.2)\\,1\\,0)'"
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", source,
            "-c:a", "libopus", "-application", "lowdelay", "-frame_duration", "20", "-ar", str(sample_rate),
            "-ac", "1", "-b:a", "32k", "-vbr", "off", "-f", "ogg", "pipe:1"]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not encode the tone: {err.decode(errors='replace')[-500:]}")
    return [p for p in ogg_packets(out) if not p.startswith((b"OpusHead", b"OpusTags"))]


class RtpSender:
    """Makes SRTP packets of one SSRC under the controller's key||salt."""

    def __init__(self, key_salt: bytes, *, ssrc: int = 0x5678, payload_type: int = 110, step: int = 320) -> None:
        self.session = SrtpSession(key_salt)
        self.ssrc, self.payload_type, self.step = ssrc, payload_type, step
        self.sequence = 1000
        self.timestamp = 90000
        self.roc = 0

    def packet(self, payload: bytes) -> bytes:
        header = struct.pack("!BBHII", 0x80, self.payload_type, self.sequence, self.timestamp, self.ssrc)
        data = self.session.protect(header, payload, self.roc)
        self.sequence = (self.sequence + 1) & 0xFFFF
        if self.sequence == 0:
            self.roc += 1
        self.timestamp = (self.timestamp + self.step) & 0xFFFFFFFF
        return data


async def send_paced(sock: socket.socket, address: tuple[str, int], sender: RtpSender, payloads: list[bytes],
                     *, interval_s: float = 0.02, on_send: Callable[[int, float], None] | None = None) -> None:
    """Send one packet every ``interval_s`` (each at its due time from the start: no drift)."""
    start = time.monotonic()
    for index, payload in enumerate(payloads):
        due = start + index * interval_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sock.sendto(sender.packet(payload), address)
        if on_send is not None:
            on_send(index, time.monotonic())
