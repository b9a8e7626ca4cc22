"""Media pipeline benchmark: what the sidecar costs next to the ffmpeg processes it supervises.

For N copy-mode cameras (default N = 1, 16, 64) fed by a looping 2 Mbps 1080p H.264 file
(generated at start, keyframe every 4 s, ``-re`` so each camera runs in real time), all in this
one process and event loop as in the sidecar:

* CPU: this process's CPU seconds vs the sum of its ffmpeg children's, over the same window.
  The ffmpeg children do the cheapest possible work (video copy, no audio), so this is the
  strictest comparison. Target: sidecar <= 0.5 x ffmpeg.
* Memory: this process's RSS growth per camera vs the bytes its prebuffer holds + 2 MB; and the
  ffmpeg children's RSS for reference.
* Reader throughput: the sans-IO fMP4 reader on a large fMP4 file fed in 64 KiB chunks, vs a
  plain copy of the same chunks (the cheapest thing any reader could do), in the same run.

It prints a table; it never passes or fails. Usage::

    .venv/bin/python -m benchmarks.media_bench [--cameras 1,16,64] [--warmup 20] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.kit.clips import test_pattern_clip
from sidecar.media import (
    MOVFLAGS,
    Fmp4Reader,
    MediaPipeline,
    PipelineConfig,
    RecordingSettings,
    Source,
)
from tests.support.processes import ffmpeg_children

SETTINGS = RecordingSettings(width=1920, height=1080, fps=30, bitrate_kbps=2000, audio=False)


def make_clip(directory: Path) -> Path:
    """12 s of 1080p30 H.264 at 2 Mbps, keyframe every 4 s exactly (3 GOPs)."""
    return test_pattern_clip(directory / "clip-1080p-2mbps.mp4", width=1920, height=1080, fps=30, seconds=12,
                             kbps=2000, gop_s=4)


def make_big_fmp4(clip: Path, directory: Path, target_mb: int) -> Path:
    """The clip, copied in a loop into one HKSV-style fMP4 file of about ``target_mb``."""
    loops = max(1, int(target_mb * 1e6 / clip.stat().st_size))
    path = directory / "big.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-stream_loop",
            str(loops),
            "-i",
            str(clip),
            "-c",
            "copy",
            "-f",
            "mp4",
            "-movflags",
            MOVFLAGS,
            str(path),
        ],
        check=True,
    )
    return path


def reader_throughput(path: Path, chunk: int = 64 * 1024) -> tuple[float, float, int]:
    """(reader MB/s, naive-buffer MB/s, fragments) over the file, fed in ``chunk``-sized pieces.

    The reference is what a reader that buffers everything would pay at least: each chunk
    appended to a bytearray and copied out once per megabyte, with no parsing at all.
    """
    data = path.read_bytes()
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    del data
    gc.collect()
    t0 = time.perf_counter()
    reader = Fmp4Reader()
    fragments = 0
    for piece in pieces:
        fragments += len(reader.feed(piece))
    reader_s = time.perf_counter() - t0
    size = sum(len(p) for p in pieces)
    t0 = time.perf_counter()
    sink = bytearray()
    for piece in pieces:  # the reference: append every byte once, then one join per 1 MB
        sink += piece
        if len(sink) > 1 << 20:
            bytes(sink)
            sink.clear()
    copy_s = time.perf_counter() - t0
    return size / reader_s / 1e6, size / copy_s / 1e6, fragments - 1


async def measure(clip: Path, n: int, warmup: float, window: float) -> dict[str, float]:
    me = psutil.Process()
    gc.collect()
    rss_before = me.memory_info().rss
    pipelines = [
        MediaPipeline(
            PipelineConfig(
                source=Source(str(clip), loop=True, has_audio=False),
                profile="copy",
                settings=SETTINGS,
                name=f"cam{i}",
                startup_timeout_s=60,
                silence_timeout_s=30,
            )
        )
        for i in range(n)
    ]
    for p in pipelines:
        await p.start()
    try:
        deadline = time.monotonic() + 60
        for p in pipelines:
            await p.wait_for(lambda p=p: p.prebuffer.fragment_count > 0, max(1.0, deadline - time.monotonic()))
        await asyncio.sleep(warmup)  # let every ring fill to capacity before measuring
        children = {c.pid: c for c in ffmpeg_children()}

        def child_cpu() -> float:
            total = 0.0
            for c in children.values():
                with contextlib.suppress(psutil.Error):
                    t = c.cpu_times()
                    total += t.user + t.system
            return total

        restarts_before = sum(p.restarts for p in pipelines)
        self0, kids0, wall0 = sum(me.cpu_times()[:2]), child_cpu(), time.monotonic()
        await asyncio.sleep(window)
        self1, kids1, wall1 = sum(me.cpu_times()[:2]), child_cpu(), time.monotonic()
        restarts = sum(p.restarts for p in pipelines) - restarts_before
        rss = me.memory_info().rss
        kids_rss = 0
        for c in children.values():
            with contextlib.suppress(psutil.Error):
                kids_rss += c.memory_info().rss
        prebuffer = sum(p.prebuffer.bytes for p in pipelines) / n
        fragments = sum(p.status().fragments for p in pipelines)
        bitrate = sum((p.status().bitrate_kbps or 0) for p in pipelines) / n
    finally:
        await asyncio.gather(*(p.stop() for p in pipelines))
    elapsed = wall1 - wall0
    return {
        "n": n,
        "self_cpu_pct": 100 * (self1 - self0) / elapsed,
        "ffmpeg_cpu_pct": 100 * (kids1 - kids0) / elapsed,
        "self_rss_mb": rss / 1e6,
        "per_cam_mb": (rss - rss_before) / n / 1e6,
        "prebuffer_mb": prebuffer / 1e6,
        "ffmpeg_rss_mb": kids_rss / 1e6,
        "restarts": restarts,
        "fragments": fragments,
        "bitrate_kbps": bitrate,
    }


async def run_all(clip: Path, counts: list[int], warmup: float, window: float) -> list[dict[str, float]]:
    rows = []
    for n in counts:
        r = await measure(clip, n, warmup, window)
        rows.append(r)
        print(
            f"# N={n}: done ({r['fragments']:.0f} fragments, {r['restarts']:.0f} restarts in the window, "
            f"{r['bitrate_kbps']:.0f} kbps/camera)",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="1,16,64")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds after the first fragment")
    parser.add_argument("--window", type=float, default=20.0, help="measurement window, seconds")
    parser.add_argument("--reader-mb", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    counts = [int(x) for x in args.cameras.split(",")]
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split()[2]
    print(f"# media_bench: {os.cpu_count()} cores, Python {sys.version.split()[0]}, ffmpeg {version}")
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        directory = Path(tmp)
        t0 = time.monotonic()
        clip = make_clip(directory)
        print(f"# clip: {clip.stat().st_size / 1e6:.1f} MB, generated in {time.monotonic() - t0:.0f} s")
        rows = asyncio.run(run_all(clip, counts, args.warmup, args.window))
        big = make_big_fmp4(clip, directory, args.reader_mb)
        big_mb = big.stat().st_size / 1e6
        reader_mbs, copy_mbs, fragments = reader_throughput(big)

    print()
    print(
        "| N | sidecar CPU % | ffmpeg children CPU % (reference) | ratio (target <= 0.5) |"
        " sidecar RSS growth per camera MB | prebuffer per camera MB + 2 (target) | ratio |"
        " sidecar RSS MB | ffmpeg children RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu_ratio = r["self_cpu_pct"] / r["ffmpeg_cpu_pct"] if r["ffmpeg_cpu_pct"] else float("nan")
        mem_target = r["prebuffer_mb"] + 2
        print(
            f"| {r['n']:.0f} | {r['self_cpu_pct']:.1f} | {r['ffmpeg_cpu_pct']:.1f} | {cpu_ratio:.2f} |"
            f" {r['per_cam_mb']:.2f} | {mem_target:.2f} | {r['per_cam_mb'] / mem_target:.2f} |"
            f" {r['self_rss_mb']:.0f} | {r['ffmpeg_rss_mb']:.0f} |"
        )
    print()
    print("| reader | MB/s | reference: naive buffering of the same 64 KiB chunks"
          " (bytearray append, copy out per MB), MB/s | ratio |")
    print("|---|---|---|---|")
    print(
        f"| fMP4 reader, {big_mb:.0f} MB file, {fragments} fragments | {reader_mbs:.0f} | {copy_mbs:.0f} |"
        f" {reader_mbs / copy_mbs:.2f} |"
    )
    needed = max(counts) * SETTINGS.bitrate_kbps / 8 / 1000
    print(
        f"\n# {max(counts)} cameras at {SETTINGS.bitrate_kbps} kbps produce {needed:.1f} MB/s: "
        f"{reader_mbs / needed:.0f}x headroom for the reader"
    )


if __name__ == "__main__":
    main()
