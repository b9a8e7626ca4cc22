"""Scale benchmark: 32, 64 and 128 copy-mode cameras in one process, 16 of them recording.

Each camera is a real :class:`sidecar.camera.Camera` (own HAP server and HDS listener, copy-mode
ffmpeg on a looping 1080p30 H.264 file at 2 Mbps, read in real time with ``-re``, keyframe every
4 s; ``keep_warm: always``), all in this process and event loop as in the sidecar. A looping file
costs the machine less than an RTSP server per camera, and ffmpeg does the same copy remux.

Setup, not measured, in its own process: the largest N cameras are started and paired once, then
stopped; their state directories keep the pairings. Then, for each N, in a fresh process (so that
no earlier phase's heap counts in its memory):

* **start -> every prebuffer warm**: the first N cameras start again from their state, one after
  another as ``App.start`` does (paired, so each one's ffmpeg is wanted at once; the sidecar's start
  gate, ``sidecar/media/start_gate.py``, lets 8 start at a time); the figure runs from the first
  ``start()`` until every prebuffer holds ``PREBUFFER_MS`` of video.
* **settling** (``--settle full``, the default): before any window, until every camera's
  prebuffer ring serves its request in full (``Prebuffer.serve_ms``: what the ring keeps, the
  selected 4 s) and then one more fragment interval, so that the
  windows see what a camera costs for months, not the first minute's heap growth (every new
  fragment in fresh pages, faulted in one by one). ``--settle 0`` measures right after warm-up
  as before; ``--settle S`` waits S seconds.
* **the heap**: the measuring process fixes glibc's heap thresholds as the ``hksv-sidecar``
  command does (``sidecar/malloc_tuning.py``) and gives the heap's free pages back once a minute
  as it does; ``--malloc default`` leaves glibc's defaults and gives nothing back.
* **idle CPU**: the same ratio over ``--idle`` seconds before any hub connects (every camera warm,
  nobody recording): what the cameras cost the sidecar on their own.
* **CPU**: this process's CPU against the sum of its ffmpeg children's, over ``--window`` seconds
  during which 16 cameras record to hubs (the hubs' HDS readers run in another process,
  ``benchmarks.recording_bench --hub-worker``; their HAP sessions are verified here).
* **memory** from ``/proc/PID/smaps_rollup``: this process's RSS, PSS and USS (private) and
  their growth per camera over the process before any camera started; each ffmpeg's RSS, PSS and
  USS (mean); each camera's prebuffer bytes.
* **first byte of the 16 recordings**: from the hub's dataSend ``open`` to the hub having read
  the init segment (the first data message of the stream), all 16 opened at the same instant.

It prints a table; it never passes or fails. Loopback only, no mDNS. Usage::

    .venv/bin/python -m benchmarks.scale_bench [--cameras 32,64,128] [--recording 16] [--window 20] [--idle 10]
                                               [--settle full|SECONDS] [--malloc tuned|default]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from aiohomekit import Controller
from aiohomekit.controller.ip import IpPairing
from aiohomekit.controller.ip import connection as aio_connection

from benchmarks.kit import REPO
from benchmarks.kit.clips import test_pattern_clip
from benchmarks.kit.cpu import machine_busy_s, process_cpu_s
from benchmarks.kit.stats import percentile as pct
from benchmarks.recording_bench import CameraRig, HubProcess, StreamResult, hds_job, select_and_enable, wait_probed
from sidecar.camera import Camera, CameraSpec
from sidecar.hds.sealing_pool import SealingPool
from sidecar.malloc_tuning import giving_back_free_memory, keep_freed_memory
from sidecar.media.start_gate import START_LIMIT
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture
from tests.support.hap_client import aio_pair
from tests.support.processes import ffmpeg_children

PIN = "031-45-154"
PREBUFFER_MS = 4000
CLIP = {"width": 1920, "height": 1080, "fps": 30, "kbps": 2000, "seconds": 12}
MB = 1_000_000

log = logging.getLogger("scale_bench")


def rollup(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of one process, in MB, from smaps_rollup."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1]) * 1024 / MB
    return {"rss": values["Rss"], "pss": values["Pss"], "uss": values["Private_Clean"] + values["Private_Dirty"]}


def spec(i: int, clip: Path) -> CameraSpec:
    return CameraSpec(name=f"Scale Cam {i + 1:03d}", source=f"loop:{clip}", profile="copy", setup_code=PIN,
                      keep_warm="always")


async def pair_all(clip: Path, state: Path, n: int, concurrency: int) -> list[dict[str, Any]]:
    """Start ``n`` cameras, pair each (pair-setup), stop them: the state the measured starts use."""
    for i in range(n):
        (state / f"cam{i:03d}").mkdir(exist_ok=True)
    cameras = [Camera(spec(i, clip), state / f"cam{i:03d}", host="127.0.0.1", port=0, advertiser=None)
               for i in range(n)]
    data: list[dict[str, Any]] = []
    try:
        gate = asyncio.Semaphore(concurrency)

        async def probed(camera: Camera) -> None:
            async with gate:
                await camera.start()
                await wait_probed(camera)

        await asyncio.gather(*(probed(c) for c in cameras))
        for camera in cameras:
            pairing = await aio_pair(camera.server.port, PIN)
            data.append(dict(pairing.pairing_data))
            await pairing.shutdown()
    finally:
        await asyncio.gather(*(c.stop() for c in cameras), return_exceptions=True)
    return data


@dataclass
class Row:
    n: int
    warm_s: float
    settle_s: float
    self_cpu_pct: float
    ffmpeg_cpu_pct: float
    other_cpu_pct: float
    hub_cpu_pct: float
    idle_self_cpu_pct: float
    idle_ffmpeg_cpu_pct: float
    idle_other_cpu_pct: float
    self_mem: dict[str, float]
    base_mem: dict[str, float]
    ffmpeg_mem: dict[str, float]
    ffmpeg_count: int
    prebuffer_mb: float
    first_byte_ms: list[float]
    errors: list[str]
    restarts: int


FRAGMENT_S = 4.0  # the clip's keyframe interval, so its fragment length


async def settle(cameras: list[Camera], how: str) -> float:
    """Wait as ``--settle`` says; the seconds waited.

    ``full``: until every ring serves its request in full (it then drops its oldest fragment
    for each new one, and the process's memory stops growing), then one fragment more.
    """
    t0 = time.monotonic()
    if how == "full":
        while not all(c.pipeline.prebuffer.ready(c.pipeline.prebuffer.serve_ms, time.monotonic()) for c in cameras):
            if time.monotonic() - t0 > 120:
                raise RuntimeError("the prebuffers did not fill within 120 s")
            await asyncio.sleep(0.5)
        await asyncio.sleep(FRAGMENT_S)
    elif float(how) > 0:
        await asyncio.sleep(float(how))
    return time.monotonic() - t0


async def measure(clip: Path, state: Path, n: int, pairings: list[dict[str, Any]], args: argparse.Namespace,
                  base_mem: dict[str, float]) -> Row:
    capture = DeriveCapture()
    original = vars(aio_connection)["get_session_keys"]
    aio_connection.get_session_keys = capture  # type: ignore[attr-defined, assignment]
    pool = SealingPool()  # shared by every camera, as App does
    cameras = [Camera(spec(i, clip), state / f"cam{i:03d}", host="127.0.0.1", port=0, advertiser=None,
                      sealing_pool=pool)
               for i in range(n)]
    rigs: list[CameraRig] = []
    hubs = HubProcess()
    controller = Controller()
    try:
        t0 = time.monotonic()
        for camera in cameras:  # as App.start does; the start gate staggers their ffmpeg
            await camera.start()
        await asyncio.gather(*(c.pipeline.wait_ready(PREBUFFER_MS, timeout_s=120) for c in cameras))
        warm_s = time.monotonic() - t0
        print(f"# N={n}: every prebuffer warm {warm_s:.1f} s after the first start", flush=True)

        settle_s = await settle(cameras, args.settle)
        if settle_s:
            print(f"# N={n}: settled {settle_s:.1f} s after warm-up ({args.settle})", file=sys.stderr, flush=True)

        me = psutil.Process()
        kids = ffmpeg_children()

        def kids_cpu() -> float:
            total = 0.0
            for k in kids:
                with contextlib.suppress(psutil.Error):
                    total += process_cpu_s(k)
            return total

        # Idle: every camera warm, nobody recording, no hub connected (the sidecar's own cost).
        idle = [0.0, 0.0, 0.0]
        if args.idle > 0:
            print(f"# N={n}: idle window ({args.idle:.0f} s) starts", file=sys.stderr, flush=True)
            a0 = (process_cpu_s(me), kids_cpu(), machine_busy_s(), time.monotonic())
            await asyncio.sleep(args.idle)
            b0 = (process_cpu_s(me), kids_cpu(), machine_busy_s(), time.monotonic())
            d0 = [y - x for x, y in zip(a0, b0, strict=True)]
            idle = [100 * d0[0] / d0[3], 100 * d0[1] / d0[3], 100 * max(0.0, d0[2] - d0[0] - d0[1]) / d0[3]]

        # The recording cameras: a verified HAP session each (one at a time, so each HKDF is its own).
        await hubs.start()
        for i, camera in enumerate(cameras[: args.recording]):
            rig = CameraRig(i, camera)
            rig.instrument()
            data = {**pairings[i], "AccessoryPort": camera.server.port, "AccessoryIP": "127.0.0.1",
                    "AccessoryIPs": ["127.0.0.1"]}
            rig.pairing = IpPairing(controller, data)
            before = len(capture.derives)
            await rig.pairing._ensure_connected()  # type: ignore[no-untyped-call]
            if len(capture.derives) != before + 1:
                raise RuntimeError(f"{camera.name}: expected one pair-verify")
            rig.derive = capture.latest
            rig.ids = iids_by_type(await rig.pairing.list_accessories_and_characteristics())
            await select_and_enable(rig)
            rigs.append(rig)
        await asyncio.gather(*(r.camera.pipeline.wait_ready(PREBUFFER_MS, timeout_s=60) for r in rigs))
        jobs = [await hds_job(r, 1, 0.0, args.window) for r in rigs]
        await hubs.ask({"connect": jobs}, within=60)

        restarts0 = sum(c.pipeline.restarts for c in cameras)
        print(f"# N={n}: recording window ({args.window:.0f} s) starts", file=sys.stderr, flush=True)
        a = (process_cpu_s(me), kids_cpu(), machine_busy_s(), hubs.cpu_s(), time.monotonic())
        start_at = time.monotonic() + 0.2
        answer = await hubs.ask({"start_at": start_at}, within=args.window + 60)
        b = (process_cpu_s(me), kids_cpu(), machine_busy_s(), hubs.cpu_s(), time.monotonic())
        wall = b[4] - a[4]
        d = [y - x for x, y in zip(a, b, strict=True)]
        results = [StreamResult(**{**r, "completed": [tuple(c) for c in r["completed"]]}) for r in answer["results"]]
        first = [1000 * (r.completed[0][2] - r.opened_at) for r in results if r.completed]
        errors = [f"camera {r.camera}: {r.error}" for r in results if r.error]
        gc.collect()
        self_mem = rollup(os.getpid())
        mems = []
        for k in kids:
            with contextlib.suppress(OSError):
                mems.append(rollup(k.pid))
        ffmpeg_mem = {key: sum(m[key] for m in mems) / max(1, len(mems)) for key in ("rss", "pss", "uss")}
        prebuffer = sum(c.pipeline.prebuffer.bytes for c in cameras) / n / MB
        restarts = sum(c.pipeline.restarts for c in cameras) - restarts0
        return Row(n, warm_s, settle_s, 100 * d[0] / wall, 100 * d[1] / wall,
                   100 * max(0.0, d[2] - d[0] - d[1] - d[3]) / wall,
                   100 * d[3] / wall, *idle, self_mem, base_mem, ffmpeg_mem, len(mems), prebuffer, first, errors,
                   restarts)
    finally:
        await hubs.stop()
        for rig in rigs:
            if rig.pairing is not None:
                with contextlib.suppress(Exception):
                    await rig.pairing.shutdown()
        await asyncio.gather(*(c.stop() for c in cameras), return_exceptions=True)
        aio_connection.get_session_keys = original  # type: ignore[attr-defined]


async def measure_in_this_process(clip: Path, state: Path, n: int, pairings: list[dict[str, Any]],
                                  args: argparse.Namespace) -> Row:
    gc.collect()
    before = rollup(os.getpid())
    tuned = args.malloc == "tuned"  # then the heap's free pages go back once a minute, as the command does
    async with giving_back_free_memory() if tuned else contextlib.nullcontext():
        return await measure(clip, state, n, pairings, args, before)


def child(*argv: str) -> str:
    """This benchmark again in a fresh process (so that one phase's heap does not count in the
    next one's memory); its last stdout line."""
    r = subprocess.run([sys.executable, "-m", "benchmarks.scale_bench", *argv], cwd=REPO, stdout=subprocess.PIPE,
                       text=True, check=True)
    lines = r.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    return lines[-1]


def report(rows: list[Row], args: argparse.Namespace) -> None:
    print()
    print("| cameras | start -> every prebuffer warm, s | then settled, s | idle: sidecar / ffmpeg CPU %, ratio | "
          "sidecar CPU % | ffmpeg children CPU % | ratio (target <= 0.2) | sidecar RSS / PSS / USS, MB | "
          "sidecar USS per camera, MB (prebuffer + 2 target) | "
          "per ffmpeg RSS / PSS / USS, MB | first byte of the recordings, p50 / p99 / max ms | hub process CPU % | "
          "others' CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r.self_cpu_pct / r.ffmpeg_cpu_pct if r.ffmpeg_cpu_pct else float("nan")
        per_cam = (r.self_mem["uss"] - r.base_mem["uss"]) / r.n
        fb = sorted(r.first_byte_ms)
        first = f"{pct(fb, 50):.1f} / {pct(fb, 99):.1f} / {fb[-1]:.1f} ({len(fb)})" if fb else "-"
        idle_ratio = r.idle_self_cpu_pct / r.idle_ffmpeg_cpu_pct if r.idle_ffmpeg_cpu_pct else float("nan")
        print(f"| {r.n} | {r.warm_s:.1f} | {r.settle_s:.1f} | "
              f"{r.idle_self_cpu_pct:.1f} / {r.idle_ffmpeg_cpu_pct:.1f}, {idle_ratio:.2f} | "
              f"{r.self_cpu_pct:.1f} | {r.ffmpeg_cpu_pct:.1f} | {ratio:.2f} | "
              f"{r.self_mem['rss']:.0f} / {r.self_mem['pss']:.0f} / {r.self_mem['uss']:.0f} | "
              f"{per_cam:.2f} ({r.prebuffer_mb + 2:.2f}) | "
              f"{r.ffmpeg_mem['rss']:.1f} / {r.ffmpeg_mem['pss']:.1f} / {r.ffmpeg_mem['uss']:.1f} ({r.ffmpeg_count}) | "
              f"{first} | {r.hub_cpu_pct:.1f} | {r.other_cpu_pct:.1f} |")
    for r in rows:
        for e in r.errors:
            print(f"# N={r.n}: {e}")
        if r.restarts:
            print(f"# N={r.n}: {r.restarts} ffmpeg restarts during the window")
    base = rows[0].base_mem
    print(f"# the process before any camera: RSS {base['rss']:.0f} MB, USS {base['uss']:.0f} MB; "
          f"{args.recording} cameras recording, window {args.window:.0f} s; at most {START_LIMIT} ffmpeg starting "
          f"at once (sidecar/media/start_gate.py); heap thresholds: {args.malloc}; settling: {args.settle}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="32,64,128")
    parser.add_argument("--recording", type=int, default=16, help="cameras recording to hubs during the window")
    parser.add_argument("--window", type=float, default=20.0, help="recording (and CPU) window, seconds")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="idle window before the recordings (every camera warm, nobody recording), seconds")
    parser.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                        help="the heap thresholds the command sets (sidecar/malloc_tuning.py), or glibc's defaults")
    parser.add_argument("--settle", default="full",
                        help="before the windows: 'full' (every prebuffer ring filled; default) or seconds")
    parser.add_argument("--start-concurrency", type=int, default=8, help="cameras probing at once during the setup")
    parser.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pairings", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.setup:
        data = asyncio.run(pair_all(args.clip, args.state, args.setup, args.start_concurrency))
        args.pairings.write_text(json.dumps(data))
        print("paired")
        return
    if args.measure:
        if args.malloc == "tuned":
            keep_freed_memory()  # as the hksv-sidecar command does before anything else
        pairings = json.loads(args.pairings.read_text())
        row = asyncio.run(measure_in_this_process(args.clip, args.state, args.measure, pairings, args))
        print(json.dumps(row.__dict__))
        return
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split()[2]
    load = os.getloadavg()
    print(f"# scale_bench: {os.cpu_count()} cores, Python {sys.version.split()[0]}, ffmpeg {version}, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        directory = Path(tmp)
        c = CLIP
        clip = test_pattern_clip(directory / "clip-1080p30-2mbps.mp4", width=c["width"], height=c["height"],
                                 fps=c["fps"], seconds=c["seconds"], kbps=c["kbps"], gop_s=4)
        state = directory / "state"
        state.mkdir()
        counts = sorted(int(x) for x in args.cameras.split(","))
        pairings = directory / "pairings.json"
        t0 = time.monotonic()
        child("--setup", str(max(counts)), "--clip", str(clip), "--state", str(state), "--pairings", str(pairings),
              "--start-concurrency", str(args.start_concurrency))
        print(f"# {max(counts)} cameras paired in {time.monotonic() - t0:.0f} s (setup, its own process)", flush=True)
        rows = []
        for n in counts:
            line = child("--measure", str(n), "--clip", str(clip), "--state", str(state), "--pairings", str(pairings),
                         "--recording", str(args.recording), "--window", str(args.window), "--idle", str(args.idle),
                         "--settle", args.settle, "--malloc", args.malloc)
            rows.append(Row(**json.loads(line)))
    report(rows, args)
    print(json.dumps([r.__dict__ for r in rows]), file=sys.stderr)


if __name__ == "__main__":
    main()
