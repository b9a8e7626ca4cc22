"""Live view keeps real time with audio on, as an iPhone-like controller measures it.

The controller (aiohomekit) sets up and starts a session with Opus at 16 kHz, receives our SRTP
on its own UDP ports, checks and decrypts every packet with the keys of our read-back, and sets
the RTP time of each stream (video on its 90 kHz clock, Opus on the selected sample rate, as
HomeKit clocks it) against the time the packets took to arrive (the slope of a fit over every
packet, ``tests/support/srtp.py`` says why). Over more than 20 s both rates
must be within 5 % of 1: a stream that runs slow leaves the viewer further behind every second.
Two sources: the demo camera (encoded with libx264, its tone a second ffmpeg input) and the
GStreamer RTSP camera in copy mode (one input, AAC audio re-encoded to Opus).
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest
from aiohomekit.model.characteristics.const import SampleRateValues
from aiohomekit.model.characteristics.const import SessionControlCommandValues as Cmd

from tests.support.live_view import LiveViewRig, make_rig, srtp_ports, wait_until
from tests.support.srtp import RtpPacket, rtp_rate

MEASURE_S = 21.0  # how long the viewer watches, after the warm-up
WARM_UP_S = 3.0  # left out: what ffmpeg read while probing the source arrives at once
VIDEO_CLOCK_HZ = 90_000
AUDIO_RATE_HZ = 16_000


def _after_warm_up(packets: list[RtpPacket]) -> list[RtpPacket]:
    start = packets[0].arrival + WARM_UP_S
    return [p for p in packets if p.arrival >= start]


async def _watch(rig: LiveViewRig, session: str, *, expect_copy: bool) -> None:
    status, viewer = await rig.setup(session)
    assert status == 0 and viewer.answer["status"] == 0
    async with srtp_ports(viewer) as (video, audio):
        assert await rig.select(viewer.session, Cmd.START_SESSION, sample_rate=SampleRateValues.SIXTEEN_KHZ) == 0
        (runner,) = rig.camera.live._runners.values()
        await video.wait_for_span(WARM_UP_S + MEASURE_S, timeout=WARM_UP_S + MEASURE_S + 30)
        await audio.wait_for_span(WARM_UP_S + MEASURE_S, timeout=15)
        assert runner.process is not None
        assert ("copy" in runner.process.argv) is expect_copy
        video_packets, audio_packets = list(video.packets), list(audio.packets)
        assert video.rejected == 0 and audio.rejected == 0  # every packet authenticated
    assert await rig.select(viewer.session, Cmd.END_SESSION) == 0
    await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")

    assert {p.ssrc for p in video_packets} == {viewer.answer["video_ssrc"]}
    assert {p.ssrc for p in audio_packets} == {viewer.answer["audio_ssrc"]}
    steps = {(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(audio_packets)
             if b.sequence == (a.sequence + 1) % 2**16}
    assert steps == {320}  # 20 ms at 16 kHz
    video_ratio, video_span = rtp_rate(_after_warm_up(video_packets), VIDEO_CLOCK_HZ)
    audio_ratio, audio_span = rtp_rate(_after_warm_up(audio_packets), AUDIO_RATE_HZ)
    frames = len({p.timestamp for p in video_packets})
    print(f"\n{session}: video {frames} frames, RTP s per s of arrival {video_ratio:.3f} over {video_span:.1f} s; "
          f"audio {len(audio_packets)} packets, RTP s per s of arrival {audio_ratio:.3f} over {audio_span:.1f} s")
    assert video_span >= 20 and audio_span >= 20
    assert 0.95 <= video_ratio <= 1.05
    assert 0.95 <= audio_ratio <= 1.05


@pytest.mark.slow
async def test_demo_camera_with_audio_runs_in_real_time(tmp_path: Path) -> None:
    async with contextlib.aclosing(make_rig(tmp_path)) as rigs:  # the demo pattern, encoded with libx264
        async for rig in rigs:
            await _watch(rig, "real-time-demo-1", expect_copy=False)


@pytest.mark.slow
async def test_rtsp_camera_copied_with_audio_runs_in_real_time(tmp_path: Path, rtsp_camera: Any) -> None:
    cam = await rtsp_camera(width=320, height=240, fps=15, gop=30, audio=True)
    async with contextlib.aclosing(make_rig(tmp_path, source=cam.url, profile="copy")) as rigs:
        async for rig in rigs:
            await wait_until(lambda r=rig: r.camera.core.offer.cached_probe() is not None, 20, "the source probe")  # type: ignore[misc]
            await _watch(rig, "real-time-rtsp-1", expect_copy=True)
