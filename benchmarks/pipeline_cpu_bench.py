"""The event loop's CPU per fMP4 fragment of idle, warm copy-mode cameras (issue 23).

N :class:`~sidecar.media.MediaPipeline` s (default 32) in one event loop on the same looping
1080p30 H.264 clip (2 Mbps, keyframe every 4 s, so one ~1 MB fragment every 4 s per camera),
nobody subscribed: what an idle camera costs the sidecar. After a warm-up, each window measures
the CPU time of the thread running the event loop (``time.thread_time()`` read in that thread,
so neither the other core's load nor the spawner thread count) and divides it by the fragments
the pipelines read during the window (bytes read / the mean fragment size, so that where the
fragment boundaries fall does not count) and counts the loop thread's minor page faults per
fragment (``RUSAGE_THREAD``: while the process's heap still grows to its steady size, every new
fragment's megabyte is faulted in, which is why the warm-up is 40 s); beside it, the ffmpeg children's CPU per
fragment (the reference the issue compares with).

To compare two versions of the product under the same load, ``--tree NAME=DIR`` (repeatable)
measures the ``sidecar`` package of another checkout: each tree runs in its own process (this
script with ``--worker``, ``DIR`` first on ``sys.path``), the trees take turns, ``--runs`` times,
and the table shows every run. ``--profile DIR`` writes a cProfile of the first run's windows
per tree. Usage::

    flock /tmp/bench.lock .venv/bin/python -m benchmarks.pipeline_cpu_bench
    git archive main | tar -x -C /tmp/before
    flock /tmp/bench.lock .venv/bin/python -m benchmarks.pipeline_cpu_bench --tree before=/tmp/before --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.processes import ffmpeg_children

HERE = Path(__file__).resolve().parent.parent


def _worker(args: argparse.Namespace) -> None:
    """Runs in a fresh process with the tree under test first on ``sys.path``; prints one JSON line."""
    import asyncio
    import contextlib
    import cProfile
    import logging
    import resource

    import psutil  # type: ignore[import-untyped]

    sys.path.insert(0, args.worker)
    from sidecar.media import MediaPipeline, PipelineConfig, RecordingSettings, Source

    logging.basicConfig(level=logging.ERROR)
    settings = RecordingSettings(width=1920, height=1080, fps=30, bitrate_kbps=2000, audio=False)

    async def measure() -> dict[str, object]:
        pipelines = [
            MediaPipeline(PipelineConfig(source=Source(args.clip, loop=True, has_audio=False), profile="copy",
                                         settings=settings, name=f"cam{i}", startup_timeout_s=60,
                                         silence_timeout_s=30))
            for i in range(args.cameras)
        ]
        for p in pipelines:
            await p.start()
        try:
            deadline = time.monotonic() + 90
            for p in pipelines:
                await p.wait_for(lambda p=p: p.prebuffer.fragment_count > 0, max(1.0, deadline - time.monotonic()))
            await asyncio.sleep(args.warmup)
            children = ffmpeg_children()

            def kids_cpu() -> float:
                total = 0.0
                for c in children:
                    with contextlib.suppress(psutil.Error):
                        t = c.cpu_times()
                        total += t.user + t.system
                return total

            def fragments() -> tuple[int, int]:
                status = [p.status() for p in pipelines]
                return sum(s.fragments for s in status), sum(s.bytes_in for s in status)

            restarts0 = sum(p.restarts for p in pipelines)
            profiler = cProfile.Profile() if args.profile_out else None
            windows = []
            for _ in range(args.windows):
                if profiler is not None:
                    profiler.enable()
                (f0, b0), loop0, kids0, wall0 = fragments(), time.thread_time(), kids_cpu(), time.monotonic()
                faults0 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                await asyncio.sleep(args.window)
                faults1 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                (f1, b1), loop1, kids1, wall1 = fragments(), time.thread_time(), kids_cpu(), time.monotonic()
                if profiler is not None:
                    profiler.disable()
                # A window holds whole fragments and pieces of others: counting fragments
                # completed makes the figure jump by a fifth with where the boundaries fall
                # (5 per camera in 20 s), counting bytes read does not.
                mean = sum(p.prebuffer.bytes for p in pipelines) / max(1, sum(p.prebuffer.fragment_count
                                                                               for p in pipelines))
                n = max(1e-9, (b1 - b0) / mean)
                windows.append({"fragments": f1 - f0, "read_fragments": n, "loop_ms": 1000 * (loop1 - loop0) / n,
                                "ffmpeg_ms": 1000 * (kids1 - kids0) / n, "wall_s": wall1 - wall0,
                                "faults": (faults1 - faults0) / n})
            if profiler is not None:
                profiler.dump_stats(args.profile_out)
            return {"windows": windows, "restarts": sum(p.restarts for p in pipelines) - restarts0,
                    "load": os.getloadavg()[0]}
        finally:
            await asyncio.gather(*(p.stop() for p in pipelines))

    print(json.dumps(asyncio.run(measure())), flush=True)


def _run_tree(tree: Path, clip: Path, args: argparse.Namespace, profile_out: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree), "--clip", str(clip),
           "--cameras", str(args.cameras), "--warmup", str(args.warmup), "--window", str(args.window),
           "--windows", str(args.windows)]
    if profile_out:
        cmd += ["--profile-out", profile_out]
    out = subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=40.0, help="seconds after every camera's first fragment")
    parser.add_argument("--window", type=float, default=20.0, help="seconds per window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1, help="runs per tree, the trees taking turns")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="another checkout to measure beside this one (named 'this')")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each tree's first run here")
    parser.add_argument("--worker", metavar="TREE", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    from benchmarks.kit.clips import test_pattern_clip

    trees = [("this", HERE)] + [(n, Path(d).resolve()) for n, d in (t.split("=", 1) for t in args.tree)]
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split()[2]
    print(f"# pipeline_cpu_bench: {os.cpu_count()} cores, Python {sys.version.split()[0]}, ffmpeg {version}, "
          f"{args.cameras} cameras, {args.windows} windows of {args.window:g} s after {args.warmup:g} s warm-up, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipeline-cpu-") as tmp:
        clip = test_pattern_clip(Path(tmp) / "clip.mp4", width=1920, height=1080, fps=30, seconds=12, kbps=2000,
                                 gop_s=4)
        for run in range(args.runs):
            for name, tree in trees:
                load0 = os.getloadavg()[0]
                prof = str(Path(args.profile) / f"{name}.prof") if args.profile and run == 0 else None
                r = _run_tree(tree, clip, args, prof)
                windows = r["windows"]
                assert isinstance(windows, list)
                loop = [w["loop_ms"] for w in windows]
                kids = [w["ffmpeg_ms"] for w in windows]
                faults = [w["faults"] for w in windows]
                rows.append((name, run + 1, load0, r["load"], loop, kids, sum(w["fragments"] for w in windows),
                             r["restarts"], faults))
                print(f"# {name} run {run + 1}: loop ms/fragment {', '.join(f'{x:.2f}' for x in loop)}", flush=True)
    print()
    print("| tree | run | load avg (start / end) | fragments | loop CPU ms per fragment, each window |"
          " median | loop thread's page faults per fragment (median) | ffmpeg CPU ms per fragment (median) | ratio |"
          " restarts |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, run, l0, l1, loop, kids, frags, restarts, faults in rows:
        med, kmed = statistics.median(loop), statistics.median(kids)
        print(f"| {name} | {run} | {l0:.2f} / {l1:.2f} | {frags} | {' / '.join(f'{x:.2f}' for x in loop)} |"
              f" {med:.2f} | {statistics.median(faults):.0f} | {kmed:.1f} | {med / kmed:.3f} | {restarts} |")


if __name__ == "__main__":
    main()
