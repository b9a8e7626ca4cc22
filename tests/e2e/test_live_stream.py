"""Live view end to end over loopback: aiohomekit as the controller, ffmpeg as the viewer.

The controller writes SetupEndpoints with its UDP ports and SRTP key, reads back ours, and
starts the stream with SelectedRTPStreamConfiguration (encoded by aiohomekit's own structs).
A receiving ffmpeg, given an SDP with the key from the read-back, must decode H.264 frames
at the selected size and Opus audio; reconfigure changes the size; end, a closed HAP
session and a controller gone silent each end the sending ffmpeg, and it is reaped.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from aiohomekit.model.characteristics.const import (
    SessionControlCommandValues,
)

from tests.hub.characteristics import RECORDING_ACTIVE
from tests.support.live_view import KEY, SALT, LiveViewRig, Viewer, alive, make_rig, wait_until


class Decoder:
    """ffmpeg reading our SRTP through an SDP: ``frames`` video frames as raw gray, and some
    Opus audio (it only exits once both arrived)."""

    def __init__(self, viewer: Viewer, tmp_path: Path, frames: int = 3, *, audio: bool = True) -> None:
        self.viewer = viewer
        self.sdp = tmp_path / f"{viewer.session}-{time.monotonic_ns()}.sdp"
        self.sdp.write_text(viewer.sdp())
        self.frames = frames
        self.audio = audio
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-nostdin", "-protocol_whitelist", "file,udp,rtp,srtp,crypto",
            "-i", str(self.sdp), "-map", "0:v:0", "-frames:v", str(self.frames), "-f", "rawvideo",
            "-pix_fmt", "gray", "pipe:1",
            *(["-map", "0:a:0", "-frames:a", "5", "-f", "null", "-"] if self.audio else []),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        pid = self.proc.pid

        def bound() -> bool:
            try:
                ports = {c.laddr.port for c in psutil.Process(pid).net_connections(kind="udp")}
            except psutil.Error:
                return False
            return {self.viewer.video_port, self.viewer.audio_port} <= ports

        await wait_until(bound, 10, "the viewer's UDP ports")

    async def result(self, timeout: float = 20) -> tuple[bytes, str]:
        assert self.proc is not None
        try:
            async with asyncio.timeout(timeout):
                out, err = await self.proc.communicate()
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        return out, err.decode(errors="replace")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LiveViewRig]:
    async for r in make_rig(tmp_path):
        yield r


def video_size(stderr: str) -> tuple[int, int]:
    m = re.search(r"Video: h264[^\n]*?, (\d+)x(\d+)", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2))


@pytest.mark.slow
async def test_live_view_start_reconfigure_stop_and_hap_close(rig: LiveViewRig) -> None:
    # Recording runs too: the live view must not disturb it.
    assert await rig.put(RECORDING_ACTIVE, 1) == 0
    await wait_until(lambda: rig.camera.pipeline.pid is not None, 20, "the recording ffmpeg")
    recording_pid = rig.camera.pipeline.pid

    status, viewer = await rig.setup("live-session-001")
    assert status == 0
    answer = viewer.answer
    assert answer["status"] == 0 and answer["session_id"] == b"live-session-001"
    assert (answer["ip_version"], answer["address"]) == (0, "127.0.0.1")
    assert answer["video_key"] != KEY + SALT and len(answer["video_key"]) == 30
    assert 0 < answer["video_ssrc"] < 1 << 24

    decoder = Decoder(viewer, rig.tmp_path)
    await decoder.start()
    assert await rig.select(viewer.session, SessionControlCommandValues.START_SESSION) == 0
    frames, err = await decoder.result()
    assert video_size(err) == (320, 240)
    assert len(frames) == 3 * 320 * 240  # three decoded frames at the selected size
    assert "Audio: opus" in err
    (pid,) = rig.live_pids()

    # Reconfigure: ffmpeg restarts with the new size and bitrate, same keys and SSRCs.
    assert await rig.select(viewer.session, SessionControlCommandValues.RECONFIGURE_SESSION, width=640,
                            height=360, bitrate=600, audio=False) == 0
    runner = next(iter(rig.camera.live._runners.values()))
    await wait_until(lambda: runner.starts == 2 and runner.process is not None
                     and runner.process.first_frame.is_set(), 15, "the reconfigured ffmpeg")
    assert not alive(pid)
    decoder = Decoder(viewer, rig.tmp_path)
    await decoder.start()
    frames, err = await decoder.result()
    assert video_size(err) == (640, 360) and len(frames) == 3 * 640 * 360
    assert runner.process is not None and "600k" in runner.process.argv

    # End: the sending ffmpeg is reaped, the session forgotten.
    (pid,) = rig.live_pids()
    assert await rig.select(viewer.session, SessionControlCommandValues.END_SESSION) == 0
    await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")
    assert not alive(pid)
    assert await rig.streaming_status() == 0

    # A session whose HAP connection closes ends too.
    status, viewer = await rig.setup("live-session-002")
    assert status == 0
    assert await rig.select(viewer.session, SessionControlCommandValues.START_SESSION) == 0
    await wait_until(lambda: len(rig.live_pids()) == 1, 10, "the second session's ffmpeg")
    (pid,) = rig.live_pids()
    await rig.pairing.close()
    await wait_until(lambda: not rig.camera.live._runners, 10, "the HAP close to end the session")
    assert not alive(pid)

    # The recording ffmpeg ran through all of it.
    assert rig.camera.pipeline.pid == recording_pid and alive(recording_pid)  # type: ignore[arg-type]


async def test_controller_gone_silent_ends_the_session(rig: LiveViewRig) -> None:
    rig.camera.live.rtcp_timeout_s = 1.0
    status, viewer = await rig.setup("silent-session-1")
    assert status == 0
    assert await rig.select(viewer.session, SessionControlCommandValues.START_SESSION, audio=False) == 0
    await wait_until(lambda: len(rig.live_pids()) == 1, 10, "ffmpeg")
    (pid,) = rig.live_pids()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp:  # one receiver report, then nothing
        rtcp.sendto(b"\x81\xc9\x00\x01" + bytes(4), ("127.0.0.1", viewer.answer["video_port"]))
    await wait_until(lambda: not rig.camera.live._runners, 10, "the silent controller's session to end")
    assert not alive(pid)


async def test_camera_stop_reaps_live_sessions(rig: LiveViewRig) -> None:
    status, viewer = await rig.setup("stopping-session")
    assert status == 0
    assert await rig.select(viewer.session, SessionControlCommandValues.START_SESSION, audio=False) == 0
    await wait_until(lambda: len(rig.live_pids()) == 1, 10, "ffmpeg")
    (pid,) = rig.live_pids()
    await rig.camera.stop()  # what Camera.stop() does first: end live sessions, reap ffmpeg
    assert not alive(pid) and not rig.camera.live._runners


@pytest.mark.slow
async def test_a_source_that_fits_is_copied_and_still_decodes(tmp_path: Path) -> None:
    """Copy mode: the camera's H.264 goes out untouched (SPS/PPS repeated in band) and decodes."""
    clip = tmp_path / "clip.ts"  # MPEG-TS: Annex B with SPS/PPS in band, as an RTSP camera sends
    make = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "2",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-bf", "0", "-pix_fmt", "yuv420p", str(clip))
    assert await make.wait() == 0
    async for rig in make_rig(tmp_path, source=f"loop:{clip}", profile="copy"):
        await wait_until(lambda r=rig: r.camera.core.offer.cached_probe() is not None, 20, "the source probe")  # type: ignore[misc]
        status, viewer = await rig.setup("copy-session-001")
        assert status == 0
        decoder = Decoder(viewer, tmp_path, audio=False)
        await decoder.start()
        assert await rig.select(viewer.session, SessionControlCommandValues.START_SESSION, audio=False) == 0
        frames, err = await decoder.result()
        assert video_size(err) == (320, 240) and len(frames) == 3 * 320 * 240
        (runner,) = rig.camera.live._runners.values()
        assert runner.process is not None and "copy" in runner.process.argv
