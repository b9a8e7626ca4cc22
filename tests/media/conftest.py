"""Media test fixtures: sample fMP4 files, and helpers that check fragments with the real
ffmpeg/ffprobe. (The RTSP test camera, ``rtsp_camera``, is shared: tests/support/fixtures.py.)"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.media import MOVFLAGS, Fmp4Reader, Fragment, InitSegment, MediaPipeline


@pytest.fixture(scope="session")
def sample_fmp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """13 s of 320x240@15 H.264 + AAC 32 kHz mono as HKSV-style fMP4 (4 fragments)."""
    out = tmp_path_factory.mktemp("media") / "sample.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "13",
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
         "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ar", "32000", "-ac", "1", "-f", "mp4", "-movflags", MOVFLAGS, str(out)],
        check=True, timeout=60,
    )
    return out.read_bytes()


def encode_hevc(out: Path, *, tag: str, open_gop: bool, seconds: int = 9) -> bytes:
    """320x180@15 (coded 320x184: the SPS carries a conformance window) with a 4 s GOP + AAC."""
    gop = "open-gop=1" if open_gop else "open-gop=0"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=32000", "-t", str(seconds),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-x265-params", f"keyint=60:min-keyint=60:scenecut=0:bframes=0:{gop}:log-level=error",
         "-tag:v", tag, "-c:a", "aac", "-ac", "1", "-f", "mp4", "-movflags", MOVFLAGS, str(out)],
        check=True, timeout=120,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def hevc_events(tmp_path_factory: pytest.TempPathFactory) -> tuple[InitSegment, list[Fragment]]:
    """libx265 with closed GOPs (IDR every 4 s), tagged hvc1, as the recording pipeline writes it."""
    data = encode_hevc(tmp_path_factory.mktemp("hevc") / "closed.mp4", tag="hvc1", open_gop=False)
    events = Fmp4Reader().feed(data)
    init = events[0]
    assert isinstance(init, InitSegment)
    return init, [e for e in events[1:] if isinstance(e, Fragment)]


@pytest.fixture(scope="session")
def hevc_open_gop(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """libx265 with open GOPs: the first picture is an IDR, later random-access points are CRA."""
    return encode_hevc(tmp_path_factory.mktemp("hevc") / "open.mp4", tag="hev1", open_gop=True)


@pytest.fixture(scope="session")
def ffmpeg_available() -> Iterator[None]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg not installed (bash .ci/setup)")
    yield


async def run_tool(*argv: str, stdin: bytes | None = None, timeout_s: float = 60) -> tuple[int, bytes, bytes]:
    """Run a command without blocking the loop; returns (rc, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


async def check_decodes(path: Path, init: InitSegment, fragments: list[Fragment]) -> dict[str, object]:
    """Write init + fragments to ``path``; assert ffmpeg decodes them without a single error and
    that the decoded video frame count matches the samples; return ffprobe's stream info."""
    with path.open("wb") as fh:
        fh.write(init.data)
        for fragment in fragments:
            fh.write(fragment.data)
    rc, _, err = await run_tool("ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-")
    assert rc == 0 and err == b"", err.decode(errors="replace")
    rc, out, err = await run_tool(
        "ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)
    )
    assert rc == 0, err
    info: dict[str, object] = json.loads(out)
    streams = info["streams"]
    assert isinstance(streams, list)
    video = next(s for s in streams if s["codec_type"] == "video")
    video_track = init.video
    assert video_track is not None
    expected = sum(
        t.sample_count for f in fragments for t in f.tracks if t.track_id == video_track.track_id
    )
    assert int(video["nb_read_frames"]) == expected
    return info


async def collect(pipeline: MediaPipeline, count: int, *, timeout_s: float = 40.0,
                  min_generation: int = 1) -> tuple[InitSegment, list[Fragment]]:
    """Subscribe (from the oldest keyframe fragment held) and gather ``count`` fragments of one
    generation, in order."""
    await pipeline.wait_for(
        lambda: pipeline.prebuffer.generation >= min_generation
        and pipeline.fragments_since(60_000) is not None,
        timeout_s,
    )
    init: InitSegment | None = None
    fragments: list[Fragment] = []
    async with asyncio.timeout(timeout_s), pipeline.subscribe(60_000, max_pending=64) as sub:
        async for item in sub:
            if isinstance(item, InitSegment):
                init = item
            else:
                fragments.append(item)
            if len(fragments) >= count:
                break
    assert init is not None and len(fragments) == count, f"subscription ended: {sub.close_reason}"
    return init, fragments


def audio_stream(info: dict[str, object]) -> dict[str, object] | None:
    streams = info["streams"]
    assert isinstance(streams, list)
    return next((s for s in streams if s["codec_type"] == "audio"), None)
