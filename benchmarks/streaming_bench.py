"""Live streaming benchmark: how fast a live view starts, and what one live session costs.

Everything runs on 127.0.0.1 through the real path: an in-process camera (our HAP server),
aiohomekit as the controller (pair, SetupEndpoints write + read-back, Selected start/end), and
a plain UDP socket as the viewer's video port.

* Start latency: from just before the Selected "start" write leaves the controller to the
  first SRTP packet arriving on the viewer's port (HAP round trip + ffmpeg spawn + input open
  + first encoded/copied frame). 10 runs per mode; p50, min and max.
* CPU per live session at 1280x720@30: the live ffmpeg's CPU (psutil, user + system) over a
  window after a warm-up, with the received video bit rate, for

  - copy: the camera profile is ``copy`` and the source already is 720p H.264, so ffmpeg
    only repacketizes it as SRTP;
  - transcode: the camera profile is ``libx264``: decode + scale + encode (veryfast,
    zerolatency) at the selected 2000 kbps.

  Both read the same generated clip (720p30 H.264 in MPEG-TS, 2 Mbps, keyframe every 2 s,
  looped in real time), video only, so the two rows differ by the encode alone.

It prints a table; it never passes or fails. Usage::

    .venv/bin/python -m benchmarks.streaming_bench [--runs 10] [--warmup 5] [--window 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
from aiohomekit.model.characteristics.const import SessionControlCommandValues as Cmd

from benchmarks.kit.clips import test_pattern_clip
from sidecar.camera import Camera, CameraSpec
from tests.hub.characteristics import SELECTED_RTP_STREAM_CONFIGURATION, SETUP_ENDPOINTS
from tests.support.hap_client import aio_pair
from tests.support.live_view import decode_setup_response, selected, setup_tlv, wait_until

PIN = "031-45-154"


def make_clip(directory: Path) -> Path:
    """10 s of 720p30 H.264 at 2 Mbps, keyframe every 2 s, no audio; MPEG-TS: Annex B, SPS/PPS in
    band, like an RTSP camera."""
    return test_pattern_clip(directory / "clip-720p-2mbps.ts", width=1280, height=720, fps=30, seconds=10, kbps=2000,
                             gop_s=2, preset="veryfast", h264_profile="main")


class Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.first = asyncio.Event()
        self.first_at = 0.0
        self.packets = 0
        self.bytes = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.packets:
            self.first_at = time.perf_counter()
            self.first.set()
        self.packets += 1
        self.bytes += len(data)


class Bench:
    def __init__(self, camera: Camera, pairing: Any, ids: dict[tuple[str, str], int]) -> None:
        self.camera, self.pairing, self.ids = camera, pairing, ids
        self.n = 0

    async def put(self, key: tuple[str, str], raw: bytes) -> None:
        result = await self.pairing.put_characteristics([(1, self.ids[key], base64.b64encode(raw).decode())])
        status = result.get((1, self.ids[key]), {}).get("status", 0)
        if status:
            raise RuntimeError(f"write to {key} refused: {status}")

    @contextlib.asynccontextmanager
    async def session(self, **video: Any) -> AsyncIterator[tuple[Counter, float]]:
        """Set up and start one session; yields the viewer's counter and the start time."""
        self.n += 1
        session = f"bench-{self.n:010d}"
        loop = asyncio.get_running_loop()
        transport, counter = await loop.create_datagram_endpoint(Counter, local_addr=("127.0.0.1", 0))
        audio_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        audio_sock.bind(("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            await self.put(SETUP_ENDPOINTS, setup_tlv(session.encode(), video_port=port,
                                                     audio_port=audio_sock.getsockname()[1]))
            answer = decode_setup_response(base64.b64decode(
                (await self.pairing.get_characteristics([(1, self.ids[SETUP_ENDPOINTS])]))
                [(1, self.ids[SETUP_ENDPOINTS])]["value"]))
            assert answer["status"] == 0, answer
            started = time.perf_counter()
            await self.put(SELECTED_RTP_STREAM_CONFIGURATION,
                           selected(session, Cmd.START_SESSION, audio=False, **video))
            try:
                yield counter, started
            finally:
                await self.put(SELECTED_RTP_STREAM_CONFIGURATION, selected(session, Cmd.END_SESSION))
                await wait_until(lambda: not self.camera.live._runners, 10, "the session to end")
        finally:
            transport.close()
            audio_sock.close()


@contextlib.asynccontextmanager
async def camera_for(tmp: Path, clip: Path, profile: str) -> AsyncIterator[Bench]:
    state = tmp / profile
    state.mkdir()
    config = CameraSpec(name=f"Bench {profile}", source=f"loop:{clip}", profile=profile, setup_code=PIN)
    camera = Camera(config, state, host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    try:
        deadline = time.monotonic() + 30
        while camera.core.offer.cached_probe() is None:  # copy mode needs to know the source is 720p H.264
            if time.monotonic() > deadline:
                raise RuntimeError("the camera never probed its source")
            await asyncio.sleep(0.1)
        pairing = await aio_pair(camera.server.port, PIN)
        try:
            accessories = await pairing.list_accessories_and_characteristics()
            ids = {(s["type"].split("-")[0].lstrip("0"), c["type"].split("-")[0].lstrip("0")): c["iid"]
                   for s in accessories[0]["services"] for c in s["characteristics"]}
            yield Bench(camera, pairing, ids)
        finally:
            await pairing.shutdown()
    finally:
        await camera.stop()


async def measure(bench: Bench, runs: int, warmup: float, window: float) -> dict[str, Any]:
    video = {"width": 1280, "height": 720, "fps": 30, "bitrate": 2000}
    latencies = []
    for _ in range(runs):
        async with bench.session(**video) as (counter, started):
            await asyncio.wait_for(counter.first.wait(), 20)
            latencies.append((counter.first_at - started) * 1000)
    async with bench.session(**video) as (counter, _):
        await asyncio.wait_for(counter.first.wait(), 20)
        await asyncio.sleep(warmup)
        (pid,) = bench.camera.live.pids()
        proc = psutil.Process(pid)
        argv = proc.cmdline()
        cpu0, bytes0, t0 = sum(proc.cpu_times()[:2]), counter.bytes, time.monotonic()
        await asyncio.sleep(window)
        cpu1, bytes1, t1 = sum(proc.cpu_times()[:2]), counter.bytes, time.monotonic()
        rss = proc.memory_info().rss / 2**20
    return {
        "mode": "copy" if "copy" in argv else "transcode",
        "p50": statistics.median(latencies), "min": min(latencies), "max": max(latencies),
        "cpu": (cpu1 - cpu0) / (t1 - t0) * 100, "kbps": (bytes1 - bytes0) * 8 / 1000 / (t1 - t0), "rss": rss,
        "runs": latencies,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=15.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if os.environ.get("BENCH_VERBOSE") else logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        clip = make_clip(tmp)
        for profile in ("copy", "libx264"):
            async with camera_for(tmp, clip, profile) as bench:
                rows.append(await measure(bench, args.runs, args.warmup, args.window))
    print(f"ffmpeg live sessions at 1280x720@30, 2000 kbps selected, video only; {args.runs} starts per mode; "
          f"CPU over {args.window:g} s after {args.warmup:g} s; {os.cpu_count()} cores")
    print("| mode | start -> first SRTP packet p50 ms | min ms | max ms | live ffmpeg CPU % of one core "
          "| received kbps | ffmpeg RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['p50']:.0f} | {r['min']:.0f} | {r['max']:.0f} | {r['cpu']:.1f} | {r['kbps']:.0f} "
              f"| {r['rss']:.0f} |")
    for r in rows:
        print(f"{r['mode']} start latencies ms: " + ", ".join(f"{v:.0f}" for v in r["runs"]))


if __name__ == "__main__":
    asyncio.run(main())
