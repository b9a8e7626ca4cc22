"""The real ``hksv-sidecar`` command's memory with 1 and 8 paired, warm copy-mode cameras.

Setup, not measured: a looping 1080p30 H.264 clip at 2 Mbps (keyframe every 4 s), and 8 cameras
paired once by ``benchmarks.scale_bench --setup`` (its own process); their state files are
copied into one state directory. Then, for each N, the command starts in its own process with a
YAML configuration of the first N cameras (``keep_warm: always``, no status page, no detector,
mDNS on 127.0.0.1 only), and once every camera's prebuffer is ready plus ``--settle`` seconds the
sidecar's and each ffmpeg's RSS, PSS and USS (private clean + dirty) are read from
``/proc/PID/smaps_rollup``, and the sidecar's private dirty memory by mapping from its ``smaps``.
It prints a table; it never passes or fails. Usage::

    flock /tmp/bench.lock .venv/bin/python -m benchmarks.sidecar_memory [--cameras 1,8] [--settle 30]
        [--ffmpeg PATH] [--env NAME=VALUE ...] [--sealing-buffers N]

``--ffmpeg`` runs the cameras' ffmpeg from another binary (first on ``PATH`` as ``ffmpeg``);
``--env`` sets a variable for the sidecar and so its ffmpeg children (e.g. glibc's tunables).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.ffmpeg_memory import by_mapping
from benchmarks.kit import REPO
from benchmarks.kit.clips import test_pattern_clip
from benchmarks.scale_bench import CLIP, PIN, rollup, spec
from tests.support.processes import ffmpeg_children

SIDECAR = Path(sys.executable).with_name("hksv-sidecar")


def setup(directory: Path, cameras: int) -> tuple[Path, Path]:
    """The clip, and one state directory holding ``cameras`` paired cameras' state files."""
    c = CLIP
    clip = test_pattern_clip(directory / "clip-1080p30-2mbps.mp4", width=c["width"], height=c["height"],
                             fps=c["fps"], seconds=c["seconds"], kbps=c["kbps"], gop_s=4)
    paired = directory / "paired"
    paired.mkdir()
    subprocess.run([sys.executable, "-m", "benchmarks.scale_bench", "--setup", str(cameras), "--clip", str(clip),
                    "--state", str(paired), "--pairings", str(directory / "pairings.json")],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    state = directory / "state"
    state.mkdir()
    for camera_dir in sorted(paired.iterdir()):
        for file in camera_dir.iterdir():
            shutil.copy2(file, state / file.name)
    return clip, state


def config(clip: Path, state: Path, n: int, sealing_buffers: int | None) -> str:
    lines = [f"state_dir: {state}", "bind: 127.0.0.1", "mdns_interfaces: [127.0.0.1]"]
    if sealing_buffers is not None:
        lines.append(f"sealing_buffers: {sealing_buffers}")
    lines.append("cameras:")
    for i in range(n):
        s = spec(i, clip)
        lines += [f"  - name: {s.name}", f"    source: {s.source}", "    profile: copy",
                  f"    setup_code: '{PIN}'", "    keep_warm: always"]
    return "\n".join(lines) + "\n"


def measure(clip: Path, state: Path, n: int, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config(clip, state, n, args.sealing_buffers))
    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in args.env)
    if args.ffmpeg:  # first on PATH under the name the sidecar runs
        bin_dir = Path(tempfile.mkdtemp(prefix="ffmpeg-bin-"))
        (bin_dir / "ffmpeg").symlink_to(Path(args.ffmpeg).resolve())
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    log = Path(f.name).with_suffix(".log")
    with log.open("w") as out:
        proc = subprocess.Popen([str(SIDECAR), "--config", f.name], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while log.read_text().count("prebuffer ready") < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the sidecar did not warm {n} cameras:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        time.sleep(args.settle)
        me = rollup(proc.pid)
        where = by_mapping(proc.pid)
        kids = [rollup(k.pid) for k in ffmpeg_children(proc.pid, recursive=True)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        os.unlink(f.name)
        log.unlink()
    mean = {k: sum(x[k] for x in kids) / len(kids) for k in ("rss", "pss", "uss")} if kids else {}
    libs = sum(mb for name, mb in where if ".so" in name)
    print(f"# {n} cameras: the sidecar's Private_Dirty by mapping, MB: shared libraries' data {libs:.1f}, "
          + ", ".join(f"{name} {mb:.1f}" for name, mb in where[:6]), flush=True)
    return {"cameras": n, **me, "ffmpeg": len(kids), **{f"ffmpeg_{k}": v for k, v in mean.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="1,8")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after every prebuffer is ready")
    parser.add_argument("--ffmpeg", help="another ffmpeg binary for the cameras")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sealing-buffers", type=int, help="the configuration's sealing_buffers (default: unset)")
    args = parser.parse_args()
    counts = sorted(int(x) for x in args.cameras.split(","))
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# sidecar_memory: load average {os.getloadavg()[0]:.1f}, {now}"
          f"{', ffmpeg ' + args.ffmpeg if args.ffmpeg else ''}{', env ' + ' '.join(args.env) if args.env else ''}"
          f"{'' if args.sealing_buffers is None else f', sealing_buffers {args.sealing_buffers}'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sidecar-memory-") as tmp:
        clip, state = setup(Path(tmp), max(counts))
        rows = [measure(clip, state, n, args) for n in counts]
    print("| cameras | sidecar RSS / PSS / USS, MB | per ffmpeg RSS / PSS / USS, MB |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['cameras']:.0f} | {r['rss']:.1f} / {r['pss']:.1f} / {r['uss']:.1f} | "
              f"{r.get('ffmpeg_rss', 0):.1f} / {r.get('ffmpeg_pss', 0):.1f} / {r.get('ffmpeg_uss', 0):.1f} |")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        per = (last["uss"] - first["uss"]) / (last["cameras"] - first["cameras"])
        print(f"per added camera (sidecar USS): {per:.2f} MB")
    print(json.dumps(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
