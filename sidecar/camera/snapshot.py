"""Snapshots for ``/resource``: a JPEG at the requested size, never stalling the HAP server.

Three sources, in order of preference: a configured snapshot URL (Frigate's ``latest.jpg``,
Blue Iris's ``/image/<cam>``), the most recent keyframe in the prebuffer (decoded by a
short-lived ffmpeg from init segment + fragment: no camera round trip), or a one-frame grab
from the camera source when no prebuffer is running. Callers bound them with
``asyncio.timeout``; a cancelled snapshot kills and reaps its ffmpeg.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..media import run_to_completion
from ..redact import redact

if TYPE_CHECKING:
    import aiohttp

__all__ = ["SnapshotError", "jpeg_from_fmp4", "jpeg_from_input", "jpeg_from_url"]

log = logging.getLogger(__name__)
MAX_JPEG_BYTES = 8 * 1024 * 1024


class SnapshotError(Exception):
    """No image could be produced (the message says why; it is logged, not sent to the hub)."""


def _scale(width: int, height: int) -> str:
    # Fit inside the requested box, keep the aspect ratio, even dimensions for the encoder.
    return (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
            "scale=trunc(iw/2)*2:trunc(ih/2)*2")


async def _run_ffmpeg(args: list[str], stdin: bytes | None, ffmpeg: str) -> bytes:
    """Run ffmpeg to completion (the media runner: masked stderr, reaped even when the caller's
    timeout cancels us)."""
    quiet = ["-hide_banner", "-loglevel", "error"] + (["-nostdin"] if stdin is None else [])
    result, out = await run_to_completion([ffmpeg, *quiet, *args], name="snapshot", stdin_data=stdin,
                                          max_output=MAX_JPEG_BYTES)
    if not result.ok:
        raise SnapshotError(f"ffmpeg could not make a JPEG: {result.reason}")
    if not out.startswith(b"\xff\xd8"):
        raise SnapshotError("ffmpeg made no JPEG")
    return out


async def jpeg_from_fmp4(init: bytes, fragment: bytes, width: int, height: int, *, ffmpeg: str = "ffmpeg") -> bytes:
    """Decode the first frame (a keyframe, by construction) of ``fragment``."""
    args = ["-f", "mp4", "-i", "pipe:0", "-frames:v", "1", "-an", "-vf", _scale(width, height),
            "-q:v", "4", "-f", "image2", "-c:v", "mjpeg", "pipe:1"]
    return await _run_ffmpeg(args, init + fragment, ffmpeg)


async def jpeg_from_input(input_args: list[str], width: int, height: int, *, ffmpeg: str = "ffmpeg") -> bytes:
    """Grab one frame straight from the camera (used when no prebuffer is running)."""
    args = [*input_args, "-frames:v", "1", "-an", "-vf", _scale(width, height), "-q:v", "4",
            "-f", "image2", "-c:v", "mjpeg", "pipe:1"]
    return await _run_ffmpeg(args, None, ffmpeg)


async def jpeg_from_url(url: str, *, session: aiohttp.ClientSession | None = None) -> bytes:
    """Fetch a JPEG from an NVR (bounded size; anything but a JPEG is an error)."""
    import aiohttp  # only a camera with a snapshot URL (or Frigate's) needs the HTTP client

    owned = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(url) as resp:
            if resp.status != 200:
                raise SnapshotError(f"snapshot URL {redact(url)} answered HTTP {resp.status}")
            body = await resp.content.read(MAX_JPEG_BYTES + 1)
    except aiohttp.ClientError as exc:
        raise SnapshotError(f"snapshot URL {redact(url)} failed: {type(exc).__name__}") from None
    finally:
        if owned:
            await client.close()
    if len(body) > MAX_JPEG_BYTES or not body.startswith(b"\xff\xd8"):
        raise SnapshotError("snapshot URL did not return a JPEG")
    return body
