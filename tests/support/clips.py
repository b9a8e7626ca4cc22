"""What a hub does with a recording, and what it checks: advertised configurations, the HDS
recording itself (open, collect, close) and the clip (ffprobe, a clean decode, keyframes).

Shared by the recording tests in tests/e2e and tests/camera.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sidecar import tlv8


def advertised_resolutions(video_tlv: bytes) -> set[tuple[int, int, int]]:
    codec = dict(tlv8.decode(video_tlv))[1]
    res = set()
    for t, v in tlv8.decode(codec):
        if t == 3:
            a = tlv8.decode_dict(v)
            res.add((int.from_bytes(a[1], "little"), int.from_bytes(a[2], "little"), a[3][0]))
    return res


def advertised_codec(video_tlv: bytes) -> tuple[list[int], list[int]]:
    """The H.264 profiles and levels of a SupportedVideoRecordingConfiguration."""
    codec = dict(tlv8.decode(video_tlv))[1]
    params = tlv8.decode(dict(tlv8.decode(codec))[2])
    return [v[0] for t, v in params if t == 1], [v[0] for t, v in params if t == 2]


async def run(*cmd: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def probe(path: Path) -> dict[str, Any]:
    rc, out, err = await run("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path))
    assert rc == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


async def first_frame_is_key(path: Path) -> bool:
    rc, out, _ = await run("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_frames", "-read_intervals",
                           "%+#1", "-show_entries", "frame=key_frame", "-of", "csv=p=0", str(path))
    return rc == 0 and out.strip().splitlines()[0].startswith("1")


async def decodes_cleanly(path: Path) -> bool:
    rc, _, err = await run("ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-")
    return rc == 0 and err == ""

