"""H.265 recording benchmark: one 1080p H.265 camera recorded as H.265 (copy) and as H.264
(libx264 transcode), one after the other in the same run.

The camera is a looping 1920x1080@15 H.265 file (2 Mbps, IDR every 4 s, no audio), read by the
sidecar's own media pipeline (``MediaPipeline``) exactly as for an RTSP camera. For each mode:

* **CPU per camera**: this process (the sidecar's side: fMP4 reader, prebuffer, and in H.265 mode
  the per-recording rewrite of every fragment, as a hub recording all the time would cost) and
  its ffmpeg child, over the same window, after a warm-up.
* **Rewrite cost per MB**: the CPU time of ``HevcRecording.rewrite`` (tfdt rebased, prft added,
  mdat untouched) over the MB it handled.

Recording mode ``hevc copy`` is ``profile: copy`` with ``record_codec: hevc``; ``h264 transcode``
is ``profile: libx264`` at the camera's size and frame rate (what ``record_codec: h264`` does with
an H.265 camera). It prints a table; it never passes or fails. Usage::

    .venv/bin/python -m benchmarks.hevc_bench                       # 60 s window per mode
    .venv/bin/python -m benchmarks.hevc_bench --warmup 5 --window 10    # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import psutil

from benchmarks.kit.cpu import children_cpu_s
from sidecar.media import (
    Fragment,
    HevcRecording,
    InitSegment,
    MediaPipeline,
    PipelineConfig,
    RecordingSettings,
    Source,
    SubscriptionClosed,
)
from tests.support.processes import ffmpeg_children

SETTINGS = RecordingSettings(width=1920, height=1080, fps=15, bitrate_kbps=2000, profile="main", level="4.0",
                             audio=False)
MODES: tuple[tuple[str, str, Literal["h264", "hevc"]], ...] = (
    ("hevc copy", "copy", "hevc"),
    ("h264 transcode (libx264)", "libx264", "h264"),
)


def make_clip(directory: Path, seconds: int) -> Path:
    out = directory / "h265-1080p.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=15", "-t", str(seconds),
         "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "2000k", "-x265-params",
         "keyint=60:min-keyint=60:scenecut=0:bframes=0:open-gop=0:log-level=error", "-tag:v", "hvc1",
         "-movflags", "+faststart", str(out)],
        check=True, timeout=600,
    )
    return out


async def measure(clip: Path, mode: str, profile: str, codec: Literal["h264", "hevc"], warmup: float,
                  window: float) -> dict[str, float | str]:
    me = psutil.Process()
    pipeline = MediaPipeline(PipelineConfig(
        source=Source(str(clip), loop=True, has_audio=False), profile=profile, record_codec=codec,
        settings=SETTINGS, name=mode, startup_timeout_s=60, silence_timeout_s=30))
    rewrite_s = 0.0
    rewrite_bytes = 0
    stop = asyncio.Event()

    async def record_everything() -> None:
        """A hub recording all the time: every fragment through the H.265 rewrite."""
        nonlocal rewrite_s, rewrite_bytes
        while not stop.is_set():
            await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 120)
            recording: HevcRecording | None = None
            sub = pipeline.subscribe(0, allow_empty=True)
            try:
                while not stop.is_set():
                    item = await sub.get()  # a new ffmpeg run ends it (SubscriptionClosed): subscribe again
                    if isinstance(item, InitSegment):
                        video = item.video
                        hevc = video is not None and video.is_hevc
                        recording = HevcRecording(item, time.time()) if hevc else None
                    elif isinstance(item, Fragment) and recording is not None:
                        t0 = time.process_time()
                        out = recording.rewrite(item)
                        rewrite_s += time.process_time() - t0
                        rewrite_bytes += out.size
            except SubscriptionClosed:
                pass
            finally:
                sub.close()

    await pipeline.start()
    task: asyncio.Task[None] | None = None
    try:
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 120)
        task = asyncio.create_task(record_everything())
        await asyncio.sleep(warmup)
        children = ffmpeg_children()

        self0, kids0, wall0 = sum(me.cpu_times()[:2]), children_cpu_s(children), time.monotonic()
        rs0, rb0 = rewrite_s, rewrite_bytes
        await asyncio.sleep(window)
        self1, kids1, wall1 = sum(me.cpu_times()[:2]), children_cpu_s(children), time.monotonic()
        rs1, rb1 = rewrite_s, rewrite_bytes
        status = pipeline.status()
        profile_used = pipeline.profile.name
    finally:
        stop.set()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await pipeline.stop()
    elapsed = wall1 - wall0
    mb = (rb1 - rb0) / 1e6
    return {
        "mode": mode,
        "profile": profile_used,
        "codec": str(status.codec),
        "sidecar_pct": 100 * (self1 - self0) / elapsed,
        "ffmpeg_pct": 100 * (kids1 - kids0) / elapsed,
        "rewrite_ms_per_mb": f"{1000 * (rs1 - rs0) / mb:.3f}" if mb else "-",
        "mb": mb,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--clip-seconds", type=int, default=60)
    args = parser.parse_args()
    print(f"# hevc_bench: {psutil.cpu_count()} CPUs, Python {sys.version.split()[0]}, warm-up {args.warmup:g} s, "
          f"window {args.window:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp), args.clip_seconds)
        rows = [await measure(clip, mode, profile, codec, args.warmup, args.window) for mode, profile, codec in MODES]
    print("| recorded as | profile | codec | sidecar CPU % | ffmpeg CPU % | total % of a core | rewrite ms/MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        total = float(r["sidecar_pct"]) + float(r["ffmpeg_pct"])
        print(f"| {r['mode']} | {r['profile']} | {r['codec']} | {float(r['sidecar_pct']):.1f} | "
              f"{float(r['ffmpeg_pct']):.1f} | {total:.1f} | {r['rewrite_ms_per_mb']} |")


if __name__ == "__main__":
    asyncio.run(main())
