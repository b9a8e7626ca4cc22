"""A camera clip with known motion, made by ffmpeg: a still textured scene with sensor noise and
a dark box that crosses it once, H.264 with a 4 s GOP (so ``copy`` recording works on it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

TEXTURE = "128+50*sin(X/19)*cos(Y/12)+30*sin((X+2*Y)/36)+25*sin(X/3.7)*sin(Y/2.6)"


def make_motion_clip(path: Path, *, seconds: float = 12.0, cross: tuple[float, float] = (4.0, 8.0),
                     width: int = 640, height: int = 360, fps: int = 15) -> Path:
    """Write the clip; the box (1/8 of the width, 1/2 of the height) is in view during ``cross``."""
    still = path.with_suffix(".png")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"nullsrc=s={width}x{height},geq=lum='{TEXTURE}':cb=128:cr=128", "-frames:v", "1", str(still)],
                   check=True, timeout=60)
    bw, bh = width // 8, height // 2
    t0, t1 = cross
    speed = (width + bw) / (t1 - t0)
    x = f"if(between(t,{t0},{t1}),-{bw}+(t-{t0})*{speed:.3f},-10000)"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-framerate", str(fps),
                    "-t", str(seconds), "-i", str(still), "-f", "lavfi", "-i", f"color=c=0x202020:s={bw}x{bh}:r={fps}",
                    "-filter_complex", f"[0:v][1:v]overlay=x='{x}':y={height // 4}:eval=frame:shortest=0,"
                    "noise=alls=6:allf=t,format=yuv420p",
                    "-t", str(seconds), "-r", str(fps), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
                    "-g", str(fps * 4), "-keyint_min", str(fps * 4), "-sc_threshold", "0", "-b:v", "1000k",
                    str(path)], check=True, timeout=120)
    still.unlink()
    return path
