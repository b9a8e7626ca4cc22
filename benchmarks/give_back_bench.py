"""What the command's once-a-minute heap give-back costs the event loop, against no give-back.

``hksv-sidecar`` keeps freed fragment buffers in the C heap (``sidecar/malloc_tuning.py``) and
gives the heap's free pages back with ``malloc_trim`` in a worker thread every 60 s. The trim
takes the allocator's lock while it walks the heap, so an allocation the event loop makes
meanwhile waits for it: this prices that wait at a given number of cameras.

Each run is a fresh process with the command's heap thresholds and, per camera, what its
prebuffer holds: four fragments and the one being filled (0.9-1.2 MB each, 2 Mbps, 4 s). An
asyncio loop then replaces one camera's oldest fragment at the cameras' real rate (N / 4 per
second) and ticks every millisecond, timing each tick's lateness (the loop's lag) and each
fragment allocation. With the give-back (every ``--every`` seconds instead of 60, to see many
trims in a short run) and, as the reference in the same run, without it; the variants alternate.
It prints a table; it never passes or fails::

    flock /tmp/bench.lock .venv/bin/python -m benchmarks.give_back_bench [--cameras 8,128] [--seconds 12]
        [--every 1] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import asyncio, contextlib, json, random, sys, time
from sidecar.malloc_tuning import giving_back_free_memory, give_back_free_memory, keep_freed_memory
import sidecar.malloc_tuning as tuning

cameras, seconds, every, trim = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
keep_freed_memory()
rng = random.Random(cameras)
size = lambda: rng.randint(900_000, 1_200_000)
rings = [[bytearray(size()) for _ in range(5)] for _ in range(cameras)]
trims = []
real = give_back_free_memory
def timed():
    t = time.perf_counter()
    real()
    trims.append(time.perf_counter() - t)
tuning.give_back_free_memory = timed

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

async def main():
    lags, allocs = [], []
    loop = asyncio.get_running_loop()
    interval = 4.0 / cameras
    async def run():
        next_fragment = loop.time()
        cam = 0
        end = loop.time() + seconds
        while loop.time() < end:
            t = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - t - 0.001)
            while loop.time() >= next_fragment:
                t0 = time.perf_counter()
                buf = bytearray(size())
                allocs.append(time.perf_counter() - t0)
                rings[cam].pop(0)
                rings[cam].append(buf)
                cam = (cam + 1) % cameras
                next_fragment += interval
    async with giving_back_free_memory(every) if trim else contextlib.nullcontext():
        await run()
    return lags, allocs

lags, allocs = asyncio.run(main())
print(json.dumps({"lags": lags, "allocs": allocs, "trims": trims, "rss": rss_mib()}))
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def one(cameras: int, seconds: float, every: float, trim: bool) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", WORKER, str(cameras), str(seconds), str(every), "1" if trim else "0"],
                         capture_output=True, text=True, check=True, timeout=seconds + 120)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="8,128")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between give-backs (the command: 60)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# give_back_bench: {now}, load average {os.getloadavg()[0]:.2f}, {args.seconds:.0f} s per run, "
          f"a give-back every {args.every:g} s")
    print()
    print("| cameras | run | give-back ms, p50 / max (count) | loop lag ms p99 / max: with | without (reference) "
          "| fragment allocation ms, max: with | without | RSS MiB at the end: with | without |")
    print("|---:|---:|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.cameras.split(",")):
        for run in range(1, args.runs + 1):
            ref = one(n, args.seconds, args.every, trim=False)
            new = one(n, args.seconds, args.every, trim=True)
            trims = [1000 * t for t in new["trims"]]  # type: ignore[attr-defined]
            lw = [1000 * x for x in new["lags"]]  # type: ignore[attr-defined]
            lr = [1000 * x for x in ref["lags"]]  # type: ignore[attr-defined]
            aw = max(new["allocs"], default=0.0) * 1000  # type: ignore[call-overload]
            ar = max(ref["allocs"], default=0.0) * 1000  # type: ignore[call-overload]
            print(f"| {n} | {run} | {pct(trims, 50):.2f} / {max(trims, default=float('nan')):.2f} ({len(trims)}) "
                  f"| {pct(lw, 99):.2f} / {max(lw):.2f} | {pct(lr, 99):.2f} / {max(lr):.2f} | {aw:.2f} | {ar:.2f} "
                  f"| {new['rss']:.0f} | {ref['rss']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
