"""Two-way audio end to end (docs/two-way-audio.md): a controller (aiohomekit) starts a live view
with audio, then talks: 10 s of a 1 kHz tone as SRTP Opus under its own key, paced in real time,
to the session's audio port. The voice must come out of the target with the tone's frequency:

* an ONVIF camera's backchannel (GStreamer's ``RTSPOnvifServer``, PCMU/8000), reached with
  DESCRIBE + ``Require: www.onvif.org/ver20/backchannel``, SETUP, PLAY, RTP over the RTSP
  connection;
* a file (``format: wav``).

And when the target refuses (a camera without a backchannel): one warning in words, the live
view goes on, and the recording pipeline's fragments keep their cadence.

AAC-ELD is not exercised: Debian's ffmpeg has no AAC-ELD encoder, so the camera cannot offer it
for live view and a controller never talks AAC-ELD to it (docs/two-way-audio.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohomekit.model.characteristics.const import SampleRateValues
from aiohomekit.model.characteristics.const import SessionControlCommandValues as Cmd

from sidecar.camera import TwoWayAudio
from tests.support.live_view import KEY, SALT, LiveViewRig, make_rig, srtp_ports, wait_until
from tests.support.talk_sender import RtpSender, opus_tone_packets, send_paced

TONE_HZ = 1000.0
TALK_S = 10.0
pytestmark = pytest.mark.slow


def mulaw_to_float(data: bytes) -> np.ndarray[Any, Any]:
    """G.711 mu-law bytes to linear samples (ITU-T G.711's expansion)."""
    u = ~np.frombuffer(data, dtype=np.uint8)
    sign = (u & 0x80) != 0
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign, -(magnitude - 0x84), magnitude - 0x84).astype(np.float64)


def peak_hz(samples: np.ndarray[Any, Any], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(samples)


async def _talk(rig: LiveViewRig, session: str) -> None:
    """Start a live view with 16 kHz audio, talk 10 s of the tone, and end it."""
    packets = await opus_tone_packets(TONE_HZ, TALK_S, 16000)
    status, viewer = await rig.setup(session)
    assert status == 0 and viewer.answer["status"] == 0
    async with srtp_ports(viewer) as (video, _audio):
        assert await rig.select(viewer.session, Cmd.START_SESSION, sample_rate=SampleRateValues.SIXTEEN_KHZ) == 0
        await video.wait_for_count(10, timeout=30)
        (runner,) = rig.camera.live._runners.values()
        assert runner.talk is not None
        await wait_until(lambda: runner.talk is not None and runner.talk.run_ is not None
                         and runner.talk.run_.spawned.is_set(), 20, "the talk ffmpeg")
        await asyncio.sleep(0.5)  # ffmpeg binds its port right after it starts
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            await send_paced(sock, ("127.0.0.1", viewer.answer["audio_port"]), RtpSender(KEY + SALT), packets)
        assert runner.talk.packets_in >= len(packets) - 5
        await asyncio.sleep(1.0)
        assert len(video.packets) > 100  # the live view went on the whole time
    assert await rig.select(viewer.session, Cmd.END_SESSION) == 0
    await wait_until(lambda: not rig.camera.live._runners, 15, "the session to end")


@contextlib.asynccontextmanager
async def fragment_arrivals(pipeline: Any) -> Any:
    """When each of the recording pipeline's fragments arrives (monotonic) while the block runs:
    the ring keeps only what a recording reaches, so the times are taken as fragments come."""
    arrivals: list[float] = []

    async def follow() -> None:
        while True:
            last = pipeline.prebuffer.last_fragment_at
            await pipeline.wait_for(lambda last=last: pipeline.prebuffer.last_fragment_at != last)
            arrivals.append(pipeline.prebuffer.last_fragment_at)

    task = asyncio.create_task(follow())
    try:
        yield arrivals
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def assert_cadence(arrivals: list[float], started: float, ended: float) -> None:
    """The recording pipeline's fragments kept coming at their pace between the two moments."""
    during = [t for t in arrivals if started - 2 <= t <= ended]
    gaps = np.diff(during)
    print(f"\nrecording fragments during the session: {len(during)}, gaps {np.round(gaps, 2).tolist()}")
    assert len(during) >= 3 and float(np.max(gaps)) <= 2 * float(np.median(gaps)) + 0.5


async def test_talk_reaches_an_onvif_backchannel(tmp_path: Path, rtsp_camera: Any) -> None:
    received = tmp_path / "speaker.ulaw"
    cam = await rtsp_camera(audio=False, backchannel=received)
    # The camera is the source too, copied (little CPU), and the talk goes to its source URL.
    async with contextlib.aclosing(make_rig(tmp_path, source=cam.url, profile="copy", keep_warm="always",
                                            two_way_audio=TwoWayAudio())) as rigs:
        async for rig in rigs:
            pipeline = rig.camera.pipeline
            await wait_until(lambda p=pipeline: p.status().fragments >= 2, 60,  # type: ignore[misc]
                             "the recording pipeline")
            await wait_until(lambda r=rig: r.camera.core.offer.cached_probe() is not None, 20,  # type: ignore[misc]
                             "the source probe")
            async with fragment_arrivals(pipeline) as arrivals:
                pid, started = pipeline.pid, time.monotonic()
                await _talk(rig, "talk-backchannel")
                ended = time.monotonic()
            assert pipeline.pid == pid  # the recording ffmpeg was never restarted
    assert_cadence(arrivals, started, ended)
    data = received.read_bytes()
    peak = peak_hz(mulaw_to_float(data[len(data) // 2 - 16000:len(data) // 2 + 16000]), 8000)  # 4 s mid-talk
    print(f"\nbackchannel: {len(data) / 8000:.2f} s of PCMU, peak {peak:.1f} Hz")
    assert len(data) / 8000 >= TALK_S - 1.0
    assert abs(peak - TONE_HZ) < 10


async def test_talk_reaches_a_file(tmp_path: Path) -> None:
    out = tmp_path / "talk.wav"
    talk = TwoWayAudio(target=str(out), format="wav", sample_rate=16000)
    async with contextlib.aclosing(make_rig(tmp_path, two_way_audio=talk)) as rigs:
        async for rig in rigs:
            await _talk(rig, "talk-to-a-file-1")
    with wave.open(str(out)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    middle = len(samples) // 2
    peak = peak_hz(samples[middle - 2 * rate:middle + 2 * rate], rate)  # 4 s mid-talk
    print(f"\nfile: {len(samples) / rate:.2f} s at {rate} Hz, peak {peak:.1f} Hz")
    assert rate == 16000 and len(samples) / rate >= TALK_S - 1.0
    assert abs(peak - TONE_HZ) < 10


async def _refused_session(rig: LiveViewRig) -> tuple[float, float]:
    """A live view whose talk path is refused; returns when it started and ended (monotonic)."""
    pipeline = rig.camera.pipeline
    await wait_until(lambda: pipeline.status().fragments >= 2, 60, "the recording pipeline")
    pid = pipeline.pid
    _status, viewer = await rig.setup("talk-refused-001")
    async with srtp_ports(viewer) as (video, _audio):
        assert await rig.select(viewer.session, Cmd.START_SESSION) == 0
        (runner,) = rig.camera.live._runners.values()
        talk = runner.talk
        assert talk is not None
        started = time.monotonic()
        await wait_until(lambda: talk.warning is not None, 20, "the warning")
        await video.wait_for_span(8.0, timeout=30)  # the live view goes on
        ended = time.monotonic()
    assert await rig.select(viewer.session, Cmd.END_SESSION) == 0
    await wait_until(lambda: not rig.camera.live._runners, 15, "the session to end")
    assert pipeline.pid == pid  # the recording ffmpeg was never restarted
    return started, ended


async def test_a_muted_speaker_passes_nothing_on(tmp_path: Path) -> None:
    out = tmp_path / "talk.wav"
    talk = TwoWayAudio(target=str(out), format="wav", sample_rate=16000)
    async with contextlib.aclosing(make_rig(tmp_path, two_way_audio=talk)) as rigs:
        async for rig in rigs:
            assert await rig.put(("113", "11A"), True) == 0  # the Speaker's Mute
            await _talk(rig, "talk-muted-00001")
    frames = 0
    if out.exists() and out.stat().st_size:
        with wave.open(str(out)) as w:
            frames = w.getnframes()
    assert frames == 0


async def test_a_refusing_camera_gives_one_warning_and_the_live_view_goes_on(
        tmp_path: Path, rtsp_camera: Any, caplog: pytest.LogCaptureFixture) -> None:
    cam = await rtsp_camera(audio=False)  # no backchannel: DESCRIBE with the Require header is refused
    caplog.set_level(logging.INFO)
    async with contextlib.aclosing(make_rig(tmp_path, source=cam.url, profile="copy", keep_warm="always",
                                            two_way_audio=TwoWayAudio())) as rigs:
        async for rig in rigs:
            async with fragment_arrivals(rig.camera.pipeline) as arrivals:
                started, ended = await _refused_session(rig)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "talk" in r.getMessage()]
    print("\n" + "\n".join(warnings))
    assert len(warnings) == 1
    assert "refused" in warnings[0] and "the live view goes on" in warnings[0]
    assert_cadence(arrivals, started, ended)
