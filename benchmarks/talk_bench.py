"""Two-way audio benchmark: the sidecar's added latency (controller packet in -> target packet
out), and whether it drifts over a long talk.

The real talk path (``sidecar.camera.live.talkback.Talkback`` and its ffmpeg) between a
controller and a target, both on 127.0.0.1 in this process:

* the controller: 20 ms SRTP Opus packets at 16 kHz, paced in real time, of a 1 kHz tone that
  sounds for the first 200 ms of every second (an onset a second to time);
* the target, either
  - ``backchannel``: a minimal ONVIF RTSP server (canned answers to DESCRIBE, SETUP and PLAY,
    a PCMU/8000 ``a=sendonly`` track) that timestamps each interleaved RTP packet it reads, or
  - ``rtp``: ``format: rtp`` to a UDP socket (what any ffmpeg target costs, without RTSP).

For each onset, latency = arrival of the first target packet that carries the tone, minus the
moment the controller sent the packet where the tone starts. p50 and p99 over all onsets; drift
is the median latency of the last minute minus that of the first (a path that slowly falls
behind shows it there), and the target's RTP time against the wall clock over the whole talk.

It prints a table; it never passes or fails. Usage::

    .venv/bin/python -m benchmarks.talk_bench [--seconds 300] [--target backchannel|rtp|both]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import platform
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.kit.stats import percentile
from sidecar.camera import TwoWayAudio
from sidecar.camera.live.talkback import Talkback
from tests.support.live_view import KEY, SALT
from tests.support.talk_sender import RtpSender, opus_tone_packets, send_paced

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=bench\r\nt=0 0\r\na=control:*\r\n"
       "m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:back\r\na=sendonly\r\n")


@dataclass
class Arrivals:
    """Target packets: (arrival time, RTP timestamp, payload)."""

    packets: list[tuple[float, int, bytes]] = field(default_factory=list)

    def add(self, rtp: bytes) -> None:
        if len(rtp) > 12:
            (timestamp,) = struct.unpack_from("!I", rtp, 4)
            self.packets.append((time.monotonic(), timestamp, rtp[12:]))


def mulaw_level(payload: bytes) -> float:
    """RMS of a mu-law payload (G.711 expansion)."""
    u = ~np.frombuffer(payload, dtype=np.uint8)
    magnitude = (((u & 0x0F).astype(np.int32) << 3) + 0x84) << ((u >> 4) & 0x07)
    linear = np.where((u & 0x80) != 0, -(magnitude - 0x84), magnitude - 0x84).astype(np.float64)
    return float(np.sqrt(np.mean(linear ** 2)))


async def backchannel_server(arrivals: Arrivals) -> tuple[asyncio.Server, int]:
    """A minimal ONVIF backchannel: canned RTSP answers, then interleaved RTP timestamped."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                if buffer.startswith(b"$"):
                    while len(buffer) < 4:
                        buffer += await reader.read(65536)
                    length = int.from_bytes(buffer[2:4], "big")
                    while len(buffer) < 4 + length:
                        buffer += await reader.read(65536)
                    arrivals.add(buffer[4:4 + length])
                    buffer = buffer[4 + length:]
                    continue
                if b"\r\n\r\n" not in buffer:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                cseq = next(line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("cseq"))
                method = lines[0].split()[0]
                extra, body = "", ""
                if method == "DESCRIBE":
                    body = SDP
                    extra = f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n"
                elif method == "SETUP":
                    extra = "Session: bench;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                writer.write(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}\r\n{body}".encode())

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class _Collect(asyncio.DatagramProtocol):
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.arrivals.add(data)


async def run(target: str, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    closers: list[Any] = []
    if target == "backchannel":
        server, port = await backchannel_server(arrivals)
        closers.append(server)
        config = TwoWayAudio(target=f"rtsp://127.0.0.1:{port}/cam")
    else:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Collect(arrivals), local_addr=("127.0.0.1", 0))
        closers.append(transport)
        port = transport.get_extra_info("sockname")[1]
        config = TwoWayAudio(target=f"rtp://127.0.0.1:{port}", format="rtp", codec="pcm_mulaw", sample_rate=8000)
    payloads = await opus_tone_packets(1000.0, seconds, 16000, bursts=True)
    talk = Talkback(name="bench", config=config, source_url="rtsp://127.0.0.1/unused",
                    srtp_key_b64=base64.b64encode(KEY + SALT).decode(), payload_type=110,
                    sample_rate_hz=16000)
    task = loop.create_task(talk.run())
    while talk.run_ is None:  # noqa: ASYNC110 - Talkback has no event for "ffmpeg made"; this is a benchmark
        await asyncio.sleep(0.05)
    await talk.run_.spawned.wait()
    await asyncio.sleep(0.5)  # ffmpeg binds its input port

    sent: dict[int, float] = {}
    sender_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # The controller's packets go through Talkback.datagram, as LiveStreaming hands them over.
    relay = _ToTalk(talk)
    transport_in, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    address = transport_in.get_extra_info("sockname")
    started = time.monotonic()
    await send_paced(sender_sock, address, RtpSender(KEY + SALT), payloads,
                     on_send=lambda i, t: sent.__setitem__(i, t) if i % 50 == 0 else None)
    await asyncio.sleep(1.0)
    talk.stop()
    await task
    transport_in.close()
    sender_sock.close()
    for closer in closers:
        closer.close()

    # Onsets: packet 50k starts each burst; the first target packet with the tone after it.
    levels = [mulaw_level(p) for _, _, p in arrivals.packets]
    quiet, loud = (percentile(levels, 10), percentile(levels, 95)) if levels else (0.0, 0.0)
    threshold = quiet + (loud - quiet) / 4
    latencies: list[tuple[float, float]] = []  # (sent, latency)
    index = 0
    for k in sorted(sent):
        t0 = sent[k]
        while index < len(arrivals.packets) and arrivals.packets[index][0] < t0:
            index += 1
        j = index
        while j < len(arrivals.packets) and mulaw_level(arrivals.packets[j][2]) < threshold:
            j += 1
        if j < len(arrivals.packets) and arrivals.packets[j][0] - t0 < 0.9:
            latencies.append((t0, arrivals.packets[j][0] - t0))
    values = [v * 1000 for _, v in latencies]
    first = [v * 1000 for t, v in latencies if t - started < 60]
    last = [v * 1000 for t, v in latencies if t - started > seconds - 60]
    span = arrivals.packets[-1][0] - arrivals.packets[0][0] if len(arrivals.packets) > 1 else 0.0
    rtp_span = ((arrivals.packets[-1][1] - arrivals.packets[0][1]) % 2**32) / 8000 if arrivals.packets else 0.0
    return {"onsets": len(values), "expected": len(sent), "p50": percentile(values, 50),
            "p99": percentile(values, 99), "max": max(values, default=float("nan")),
            "first_min_p50": percentile(first, 50), "last_min_p50": percentile(last, 50),
            "rtp_over_wall": rtp_span / span if span else float("nan"), "packets_out": len(arrivals.packets),
            "packets_in": talk.packets_in, "quiet": quiet, "loud": loud}


class _ToTalk(asyncio.DatagramProtocol):
    def __init__(self, talk: Talkback) -> None:
        self.talk = talk

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.talk.datagram(data)


async def measure(targets: tuple[str, ...], seconds: float) -> None:
    print(f"talk of {seconds:.0f} s, 1 kHz bursts once a second, Opus 16 kHz in, PCMU 8 kHz out")
    print("| target | onsets | latency p50 (ms) | p99 (ms) | max (ms) | p50 first min | p50 last min | "
          "target RTP time / wall time | packets in / out |")
    print("|---|---|---|---|---|---|---|---|---|")
    for target in targets:
        r = await run(target, seconds)
        print(f"| {target} | {r['onsets']:.0f}/{r['expected']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['max']:.1f} | {r['first_min_p50']:.1f} | {r['last_min_p50']:.1f} | {r['rtp_over_wall']:.4f} | "
              f"{r['packets_in']:.0f} / {r['packets_out']:.0f} |", flush=True)
        print(f"  (levels: quiet {r['quiet']:.0f}, tone {r['loud']:.0f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--target", choices=("backchannel", "rtp", "both"), default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    targets = ("backchannel", "rtp") if args.target == "both" else (args.target,)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False).stdout
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
          f"{version.splitlines()[0] if version else 'ffmpeg ?'}")
    asyncio.run(measure(targets, args.seconds))


if __name__ == "__main__":
    main()
