"""What one copy-mode ffmpeg holds in memory, by binary, environment and option.

Runs ``--processes`` ffmpeg at once with the sidecar's copy-mode argv on a looping 1080p30 H.264
clip at 2 Mbps (read in real time, as a camera's stream arrives), and ``--after`` seconds after
they start reads each one's RSS, PSS and USS (private clean + dirty) from
``/proc/PID/smaps_rollup``. Each variant is a binary (``--binary NAME=PATH``, Debian's ``ffmpeg``
by default), an environment (glibc's malloc tunables) and extra options. For the first process of
each binary it also sums ``Private_Dirty`` from ``/proc/PID/smaps`` by mapping (each shared
library's relocated data, the heap, the stacks), which says where the private memory is. It prints
tables; it never passes or fails. Usage::

    flock /tmp/bench.lock .venv/bin/python -m benchmarks.ffmpeg_memory [--binary static=/path/to/ffmpeg]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.kit.clips import test_pattern_clip
from benchmarks.scale_bench import CLIP, rollup
from sidecar.media.command import MOVFLAGS

ENVS: list[tuple[str, dict[str, str]]] = [
    ("none", {}),
    ("MALLOC_ARENA_MAX=1", {"MALLOC_ARENA_MAX": "1"}),
    ("MALLOC_TRIM_THRESHOLD_=0, MALLOC_TOP_PAD_=0", {"MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_TOP_PAD_": "0"}),
    ("MALLOC_MMAP_THRESHOLD_=65536", {"MALLOC_MMAP_THRESHOLD_": "65536"}),
    ("all three", {"MALLOC_ARENA_MAX": "1", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_TOP_PAD_": "0",
                   "MALLOC_MMAP_THRESHOLD_": "65536"}),
]
OPTIONS: list[tuple[str, list[str], list[str]]] = [  # name, input options, output options
    ("-threads 1 (input and output)", ["-threads", "1"], ["-threads", "1"]),
    ("-probesize 32768 -analyzeduration 0", ["-probesize", "32768", "-analyzeduration", "0"], []),
    ("-max_muxing_queue_size 64", [], ["-max_muxing_queue_size", "64"]),
]


def argv(binary: str, clip: Path, extra_in: list[str], extra_out: list[str]) -> list[str]:
    """The sidecar's copy-mode command for a looping file (sidecar/media/command.py)."""
    queue = [] if "-max_muxing_queue_size" in extra_out else ["-max_muxing_queue_size", "1024"]
    return [binary, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-fflags", "+genpts", "-re",
            "-stream_loop", "-1", *extra_in, "-i", str(clip), "-map", "0:v:0", "-f", "mp4", "-an", "-c:v", "copy",
            *queue, *extra_out, "-movflags", MOVFLAGS, "pipe:1"]


def by_mapping(pid: int) -> Mappings:
    """Private_Dirty per mapping name (a library, [heap], [stack], anonymous), in MB, largest first."""
    sums: collections.defaultdict[str, float] = collections.defaultdict(float)
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and fields[0][0] in "0123456789abcdef":
                name = os.path.basename(fields[5]) if len(fields) > 5 else "[anonymous]"
            elif fields[0] == "Private_Dirty:":
                sums[name] += int(fields[1]) / 1024
    return sorted(sums.items(), key=lambda item: -item[1])


Mappings = list[tuple[str, float]]


def run(cmd: list[str], env: dict[str, str], n: int, after: float) -> tuple[dict[str, float], int, Mappings]:
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
             for _ in range(n)]
    try:
        time.sleep(after)
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"ffmpeg exited early: {' '.join(cmd)}")
        rows = [rollup(p.pid) for p in procs]
        threads = len(os.listdir(f"/proc/{procs[0].pid}/task"))
        mappings = by_mapping(procs[0].pid)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return {k: sum(r[k] for r in rows) / n for k in ("rss", "pss", "uss")}, threads, mappings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--after", type=float, default=6.0)
    args = parser.parse_args()
    binaries = [("debian", shutil.which("ffmpeg") or "ffmpeg"), *(b.split("=", 1) for b in args.binary)]
    print(f"# ffmpeg_memory: load average {os.getloadavg()[0]:.1f}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.processes} at once, {args.after:.0f} s in")
    with tempfile.TemporaryDirectory(prefix="ffmpeg-memory-") as tmp:
        c = CLIP
        clip = test_pattern_clip(Path(tmp) / "clip.mp4", width=c["width"], height=c["height"], fps=c["fps"],
                                 seconds=c["seconds"], kbps=c["kbps"], gop_s=4)
        print("| binary | variant | USS, MB | PSS, MB | RSS, MB | threads |")
        print("|---|---|---|---|---|---|")
        where: dict[str, Mappings] = {}
        for name, path in binaries:
            variants: list[tuple[str, dict[str, str], list[str], list[str]]] = [
                (f"env: {label}", env, [], []) for label, env in ENVS]
            variants += [(f"option: {label}", {}, i, o) for label, i, o in OPTIONS]
            for label, env, extra_in, extra_out in variants:
                mem, threads, mappings = run(argv(path, clip, extra_in, extra_out), env, args.processes, args.after)
                where.setdefault(name, mappings)
                print(f"| {name} | {label} | {mem['uss']:.1f} | {mem['pss']:.1f} | {mem['rss']:.1f} | {threads} |",
                      flush=True)
        for name, mappings in where.items():
            total = sum(mb for _, mb in mappings)
            print(f"\n{name}: Private_Dirty {total:.1f} MB in {len(mappings)} mappings; the largest:")
            libs = sum(mb for m, mb in mappings if ".so" in m)
            print(f"  shared libraries' relocated data: {libs:.1f} MB "
                  f"({sum(1 for m, mb in mappings if '.so' in m and mb > 0)} libraries)")
            for mapping, mb in mappings[:12]:
                print(f"  {mapping}: {mb:.2f}")


if __name__ == "__main__":
    main()
