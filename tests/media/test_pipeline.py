"""The supervised pipeline with real ffmpeg and a real RTSP camera (GStreamer) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from sidecar.media import (
    AudioMode,
    GopVerdict,
    InitSegment,
    MediaPipeline,
    PipelineConfig,
    PipelineEvent,
    PipelineState,
    RecordingSettings,
    Source,
    SubscriptionEnd,
    parse_source,
)
from tests.support.ports import free_port as closed_port
from tests.support.rtsp_camera import CameraFactory

from .conftest import audio_stream, check_decodes, collect, run_tool

SMALL = RecordingSettings(width=320, height=240, fps=15, bitrate_kbps=300, profile="high", level="3.1")
FRAME = 1 / 15
FAST_BACKOFF = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5}


def most_starts(elapsed_s: float, initial_s: float, maximum_s: float, jitter: float = 0.2) -> int:
    """The most ffmpeg starts the restart schedule allows in ``elapsed_s``: every run failing
    at once and every delay jittered to its shortest. More than this is a restart storm."""
    starts, t, k = 1, 0.0, 0
    while (t := t + (1 - jitter) * min(maximum_s, initial_s * 2**k)) <= elapsed_s:
        starts += 1
        k += 1
    return starts


def assert_hksv_fragments(fragments: list, fps: int = 15) -> None:  # type: ignore[type-arg]
    for f in fragments:
        assert f.keyframe, f"fragment {f.sequence_number} does not start on a keyframe"
        assert f.duration_s <= 4.0 + 1 / fps + 1e-6, f"fragment {f.sequence_number} lasts {f.duration_s} s"


def assert_aac_lc_32k_mono(init: InitSegment, info: dict[str, object]) -> None:
    audio = init.audio
    assert audio is not None
    assert (audio.codec, audio.audio_object_type, audio.sample_rate, audio.channels) == ("mp4a", 2, 32000, 1)
    stream = audio_stream(info)
    assert stream is not None
    assert (stream["codec_name"], stream["profile"], stream["sample_rate"], stream["channels"]) == (
        "aac", "LC", "32000", 1)


@pytest.mark.slow
async def test_copy_from_rtsp_with_audio_then_audio_off(rtsp_camera: CameraFactory, tmp_path: Path) -> None:
    cam = await rtsp_camera(gop=60, audio=True)
    pipeline = MediaPipeline(PipelineConfig(source=parse_source(cam.url), profile="copy", settings=SMALL,
                                            name="copycam"))
    await pipeline.start()
    try:
        init, fragments = await collect(pipeline, 2)
        assert_hksv_fragments(fragments)
        info = await check_decodes(tmp_path / "copy.mp4", init, fragments)
        assert_aac_lc_32k_mono(init, info)
        video = init.video
        assert video is not None and (video.width, video.height, video.codec) == (320, 240, "avc1")

        probe = await pipeline.probe(timeout_s=20)
        assert probe.is_h264 and (probe.width, probe.height) == (320, 240) and probe.has_audio
        assert probe.h264_profile is not None and probe.h264_level is not None
        assert probe.fps == pytest.approx(15, rel=0.1)
        status = pipeline.status()
        assert status.running and status.state is PipelineState.RUNNING and status.pid
        assert status.keyframe_interval_s == pytest.approx(4.0, abs=2 * FRAME)
        assert status.gop_verdict == GopVerdict.OK.value and status.warning is None
        assert status.fps == pytest.approx(15, rel=0.1) and status.bitrate_kbps
        assert set(status.ignored_settings) == {"resolution", "fps", "bitrate", "profile", "level",
                                                "iframe_interval"}

        # The hub turns recording audio off: a new run without any audio track.
        result = await pipeline.reconfigure(RecordingSettings(width=320, height=240, fps=15, audio=False))
        assert result.restarted and "copy mode keeps the camera's stream" in result.message
        generation = pipeline.prebuffer.generation
        init2, fragments2 = await collect(pipeline, 1, min_generation=generation + 1)
        assert init2.audio is None and pipeline.status().audio == AudioMode.NONE.value
        info2 = await check_decodes(tmp_path / "noaudio.mp4", init2, fragments2)
        assert audio_stream(info2) is None
        assert_hksv_fragments(fragments2)
        # Same settings again: nothing to restart.
        again = await pipeline.reconfigure(RecordingSettings(width=320, height=240, fps=15, audio=False))
        assert not again.restarted
    finally:
        await pipeline.stop()
    assert pipeline.state is PipelineState.STOPPED and pipeline.pid is None


@pytest.mark.slow
async def test_transcode_from_rtsp_and_reconfigure(rtsp_camera: CameraFactory, tmp_path: Path) -> None:
    cam = await rtsp_camera(gop=45, audio=True)  # a 3 s camera GOP: the encoder sets its own
    pipeline = MediaPipeline(PipelineConfig(source=parse_source(cam.url), profile="libx264", settings=SMALL,
                                            name="x264cam"))
    await pipeline.start()
    try:
        probe_task = asyncio.create_task(pipeline.probe(timeout_s=20))
        init, fragments = await collect(pipeline, 2)
        assert_hksv_fragments(fragments)
        assert all(abs(f.duration_s - 4.0) <= FRAME for f in fragments[1:])
        info = await check_decodes(tmp_path / "x264.mp4", init, fragments)
        assert_aac_lc_32k_mono(init, info)
        video = init.video
        assert video is not None and (video.width, video.height) == (320, 240)
        assert (video.profile_name, video.level) == ("high", "3.1")
        probe = await probe_task  # the source itself, by a separate short copy-mode run
        assert probe.is_h264 and (probe.width, probe.height) == (320, 240) and probe.has_audio

        new = RecordingSettings(width=480, height=270, fps=15, bitrate_kbps=400, profile="baseline", level="3.1")
        result = await pipeline.reconfigure(new)
        assert result.restarted and result.ignored == ()
        generation = pipeline.prebuffer.generation
        init2, fragments2 = await collect(pipeline, 1, min_generation=generation + 1)
        video2 = init2.video
        assert video2 is not None and (video2.width, video2.height) == (480, 270)
        assert (video2.profile_name, video2.level) == ("baseline", "3.1")
        assert_hksv_fragments(fragments2)
        await check_decodes(tmp_path / "x264b.mp4", init2, fragments2)
    finally:
        await pipeline.stop()


@pytest.mark.slow
async def test_source_without_audio_gets_a_silent_track(rtsp_camera: CameraFactory, tmp_path: Path) -> None:
    cam = await rtsp_camera(gop=60, audio=False)
    pipeline = MediaPipeline(PipelineConfig(source=parse_source(cam.url), profile="copy", settings=SMALL,
                                            name="mutecam"))
    await pipeline.start()
    try:
        # First run maps the source's audio optionally, sees none, restarts with anullsrc.
        await pipeline.wait_for(lambda: pipeline.status().audio == AudioMode.SILENT.value, 20)
        init, fragments = await collect(pipeline, 2)
        assert_hksv_fragments(fragments)
        info = await check_decodes(tmp_path / "silent.mp4", init, fragments)
        assert_aac_lc_32k_mono(init, info)
        for f in fragments:
            track = f.track(init.audio.track_id)  # type: ignore[union-attr]
            assert track is not None and track.sample_count > 0
        assert pipeline.status().has_audio is False
        assert (await pipeline.probe(timeout_s=20)).has_audio is False
    finally:
        await pipeline.stop()


@pytest.mark.slow
async def test_copy_with_long_gop_warns_and_falls_back_to_transcode(
    rtsp_camera: CameraFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cam = await rtsp_camera(gop=75, audio=False)  # 5 s keyframe interval: too long for HKSV
    pipeline = MediaPipeline(PipelineConfig(source=Source(cam.url, has_audio=False), profile="copy",
                                            settings=SMALL, transcode_fallback=True, name="longgop"))
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.profile.name == "libx264", 40)
        assert any("set the camera's I-frame" in r.getMessage() for r in caplog.records)
        assert pipeline.status().warning is not None
        _, fragments = await collect(pipeline, 1, min_generation=pipeline.prebuffer.generation + 1)
        assert_hksv_fragments(fragments)
    finally:
        await pipeline.stop()


@pytest.mark.slow
async def test_copy_merges_two_second_gops_into_four_second_fragments(rtsp_camera: CameraFactory) -> None:
    cam = await rtsp_camera(gop=30, audio=False)
    pipeline = MediaPipeline(PipelineConfig(source=Source(cam.url, has_audio=False), profile="copy",
                                            settings=SMALL, name="shortgop"))
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: "-min_frag_duration" in pipeline.status().argv, 30)
        _, fragments = await collect(pipeline, 2, min_generation=pipeline.prebuffer.generation + 1)
        assert_hksv_fragments(fragments)
        for f in fragments[1:]:
            assert f.duration_s == pytest.approx(4.0, abs=FRAME)
            assert len(f.keyframe_times_s) == 2  # two camera GOPs per fragment
    finally:
        await pipeline.stop()


@pytest.mark.slow
async def test_camera_stalls_30_s_and_comes_back(rtsp_camera: CameraFactory) -> None:
    cam = await rtsp_camera(gop=60, audio=False)
    pipeline = MediaPipeline(PipelineConfig(
        source=Source(cam.url, has_audio=False), profile="copy", settings=SMALL, name="stall",
        backoff_initial_s=0.5, backoff_max_s=4.0,
    ))
    await pipeline.start()
    try:
        await pipeline.wait_ready(4000, timeout_s=20)
        old_generation = pipeline.prebuffer.generation
        old_init = pipeline.prebuffer.init
        live = pipeline.subscribe(4000)
        cam.pause()
        paused_at = time.monotonic()
        await pipeline.wait_for(lambda: pipeline.state is not PipelineState.RUNNING, 20)
        noticed = time.monotonic() - paused_at
        assert noticed <= 12.5, f"took {noticed:.1f} s to notice the stall"
        assert live.close_reason is SubscriptionEnd.NEW_GENERATION  # the recording must end
        assert pipeline.prebuffer.init is None and pipeline.status().last_error
        starts_before = pipeline.starts
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - paused_at)))
        # Each attempt on a stalled camera takes ffmpeg's 5 s socket timeout, plus the backoff
        # (0.5 s doubling to 4 s): a handful of starts in 30 s, never a storm.
        starts = pipeline.starts - starts_before
        print(f"stalled camera: {starts} ffmpeg starts in 30 s")
        assert 1 <= starts <= 7
        cam.resume()
        snap = await pipeline.wait_ready(4000, timeout_s=30)
        assert snap.generation > old_generation and snap.init is not old_init
        assert pipeline.status().running
    finally:
        await pipeline.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "8",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
         "-bf", "0", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=60,
    )
    return path


def _fds() -> int:
    return psutil.Process().num_fds()


@pytest.fixture(scope="module")
def short_gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A looped file standing in for a camera with 0.5 s keyframes (short fragments keep the
    30-kill test to about a minute)."""
    import subprocess

    path = tmp_path_factory.mktemp("clip") / "short-gop.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=16", "-t", "8",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "8", "-keyint_min", "8", "-sc_threshold", "0",
         "-bf", "0", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=60,
    )
    return path


@pytest.mark.slow
async def test_sigkill_30_times_once_mid_recording(short_gop_clip: Path) -> None:
    """ffmpeg SIGKILLed 30 times with the default restart schedule: no zombie, no task or fd
    growth, the prebuffer warm again within 2 s plus one fragment each time, and the recording
    in flight during one of the kills closed with a reason."""
    events: list[PipelineEvent] = []
    pipeline = MediaPipeline(PipelineConfig(
        source=Source(str(short_gop_clip), loop=True, has_audio=False), profile="copy", settings=SMALL, name="kill",
        merge_short_gops=False,
    ), on_event=events.append)
    fds_before = _fds()
    await pipeline.start()
    recoveries: list[float] = []
    try:
        pids: list[int] = []
        tasks = None
        recording_reason = None
        for i in range(30):
            await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0 and pipeline.pid is not None, 20)
            pid = pipeline.pid
            assert pid is not None and pid not in pids
            pids.append(pid)
            if tasks is None:
                tasks = len(asyncio.all_tasks())
            assert len(asyncio.all_tasks()) == tasks  # no task accumulates across restarts
            recording = pipeline.subscribe(0) if i == 15 else None  # a hub's recording in flight
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            await pipeline.wait_for(lambda: pipeline.state is not PipelineState.RUNNING, 10)
            if recording is not None:
                recording_reason = recording.close_reason
            generation = pipeline.prebuffer.generation
            await pipeline.wait_for(lambda g=generation: pipeline.prebuffer.generation > g  # type: ignore[misc]
                                    and pipeline.prebuffer.fragment_count > 0, 20)
            recoveries.append(time.monotonic() - killed)
            fragment_s = pipeline.prebuffer.duration_s  # the one fragment it holds
            assert recoveries[-1] <= 2.0 + fragment_s + 0.5, f"kill {i}: warm again after {recoveries[-1]:.2f} s"
        assert pipeline.restarts == 30
        children = psutil.Process().children(recursive=True)
        assert [c.pid for c in children if c.pid in pids[:-1]] == []  # reaped: no zombies left
        assert all(c.status() != psutil.STATUS_ZOMBIE for c in children)
        # Each kill was told with its cause; the healthy run after the last one cleared it.
        assert pipeline.status().last_error is None
        assert [e.error for e in events if e.state == "restarting"] == ["ffmpeg was killed (SIGKILL)"] * 30
        assert recording_reason is SubscriptionEnd.NEW_GENERATION
    finally:
        await pipeline.stop()
    recoveries.sort()
    print(f"30 SIGKILLs: warm again after p50 {recoveries[15]:.2f} s, max {recoveries[-1]:.2f} s "
          f"(restart delay 0.8-1.0 s + spawn + one 0.5 s fragment); zombies 0")
    assert _fds() == fds_before
    states = [e.state for e in events]
    assert states.count("restarting") == 30 and states.count("running") == 31 and states[-1] == "stopped"
    assert all(e.restart_in_s is not None and 0.8 <= e.restart_in_s <= 1.0 for e in events
               if e.state == "restarting")  # every run was healthy: the backoff never grew


async def test_a_refusing_camera_is_retried_on_schedule_not_in_a_storm(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10: a refusing camera started an ffmpeg every 65 ms and logged "restarting in 15.0 s"
    each time. Now: the default schedule (1 s, 2 s, ...), the log tells the true delay, once."""
    caplog.set_level(logging.DEBUG, logger="sidecar")
    password = "Refused-Pa55"
    url = f"rtsp://admin:{password}@127.0.0.1:{closed_port()}/stream"
    stamped: list[tuple[float, PipelineEvent]] = []
    pipeline = MediaPipeline(PipelineConfig(source=parse_source(url), profile="copy", settings=SMALL, name="down"),
                             on_event=lambda e: stamped.append((time.monotonic(), e)))
    starts: list[float] = []
    window_s = 4.0
    await pipeline.start()
    t0 = time.monotonic()
    try:
        while (left := t0 + window_s - time.monotonic()) > 0:
            n = pipeline.starts
            with contextlib.suppress(TimeoutError):
                await pipeline.wait_for(lambda n=n: pipeline.starts > n, left)  # type: ignore[misc]
            starts.extend(time.monotonic() for _ in range(pipeline.starts - n))
    finally:
        await pipeline.stop()
    # Delays 1 s then 2 s, jittered down by at most 20 %: starts at 0, 0.8-1, 2.4-3; the next
    # is at 5.6 s at the earliest.
    print(f"refusing camera: {len(starts)} ffmpeg starts in {window_s:.0f} s")
    assert 2 <= len(starts) <= 3
    restarting = [(t, e) for t, e in stamped if e.state == "restarting"]
    assert restarting and all(e.error == "connection refused" for _, e in restarting)
    for (announced, event), started in zip(restarting, starts[1:], strict=False):
        assert event.restart_in_s is not None
        gap = started - announced
        assert event.restart_in_s - 0.05 <= gap <= event.restart_in_s + 0.5, (gap, event)
    text = caplog.text
    assert password not in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # one line per outage, not per attempt
    first_delay = restarting[0][1].restart_in_s
    assert warnings[0].startswith(f"down: ffmpeg stopped: connection refused; restarting in {first_delay:.1f} s")


async def test_demo_source(tmp_path: Path) -> None:
    pipeline = MediaPipeline(PipelineConfig(
        source=Source("demo", demo_size=(320, 240), demo_fps=15), profile="copy", settings=SMALL, name="demo",
    ))
    assert pipeline.profile.name == "libx264"  # the pattern cannot be copied
    await pipeline.start()
    try:
        init, fragments = await collect(pipeline, 1)
        assert_hksv_fragments(fragments)
        info = await check_decodes(tmp_path / "demo.mp4", init, fragments)
        assert_aac_lc_32k_mono(init, info)
        probe = await pipeline.probe()
        assert (probe.codec, probe.width, probe.has_audio) == ("rawvideo", 320, True)
    finally:
        await pipeline.stop()


def _fake_ffmpeg(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-ffmpeg"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


async def test_watchdog_kills_a_silent_ffmpeg_that_ignores_sigterm(tmp_path: Path) -> None:
    # Stands in for ffmpeg hung on a source: alive, silent, deaf to SIGTERM.
    fake = _fake_ffmpeg(tmp_path, "trap '' TERM\nexec sleep 600")
    pipeline = MediaPipeline(PipelineConfig(
        source=parse_source("rtsp://127.0.0.1:9/none"), profile="copy", settings=SMALL, name="hung",
        ffmpeg_bin=fake, startup_timeout_s=0.5, silence_timeout_s=0.5, stop_timeout_s=0.3, **FAST_BACKOFF,
    ))
    started = time.monotonic()
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.restarts >= 2, 10)
        assert pipeline.starts <= most_starts(time.monotonic() - started, 0.1, 0.5)  # a schedule, not a storm
        status = pipeline.status()
        assert status.last_error == "no video from the source within 0.5 s"
        assert status.last_exit_code == -signal.SIGKILL
    finally:
        await pipeline.stop()


async def _last_error_of_restarts(ffmpeg_bin: str, name: str) -> str:
    """A copy-mode pipeline whose ``ffmpeg_bin`` never gives a stream: it restarts on a schedule,
    not in a storm; the error it reports."""
    pipeline = MediaPipeline(PipelineConfig(
        source=parse_source("rtsp://127.0.0.1:9/none"), profile="copy", settings=SMALL, name=name,
        ffmpeg_bin=ffmpeg_bin, **FAST_BACKOFF,
    ))
    started = time.monotonic()
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.restarts >= 2, 10)
        assert pipeline.starts <= most_starts(time.monotonic() - started, 0.1, 0.5)  # a schedule, not a storm
        return pipeline.status().last_error or ""
    finally:
        await pipeline.stop()


async def test_malformed_output_restarts_ffmpeg(tmp_path: Path) -> None:
    fake = _fake_ffmpeg(tmp_path, "printf '\\000\\000\\000\\020\\377\\377\\377\\377garbage!'\nexec sleep 600")
    assert (await _last_error_of_restarts(fake, "garbage")).startswith("malformed fMP4 from ffmpeg")


async def test_missing_ffmpeg_binary_is_an_error_not_a_crash(tmp_path: Path) -> None:
    assert (await _last_error_of_restarts(str(tmp_path / "no-such-ffmpeg"), "nobin")).startswith("ffmpeg not found: ")


async def test_stop_is_idempotent_and_start_again_works(clip: Path) -> None:
    pipeline = MediaPipeline(PipelineConfig(source=Source(str(clip), loop=True, has_audio=False),
                                            profile="copy", settings=SMALL, name="again"))
    await pipeline.stop()
    await pipeline.start()
    await pipeline.wait_for(lambda: pipeline.prebuffer.init is not None, 20)
    await pipeline.stop()
    await pipeline.stop()
    await pipeline.start()
    await pipeline.wait_for(lambda: pipeline.prebuffer.init is not None, 20)
    assert pipeline.prebuffer.generation >= 1
    await pipeline.stop()
    rc, _, _ = await run_tool("true")
    assert rc == 0


async def test_stderr_is_drained_and_quiet_while_nothing_flows(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # 20000 lines of stderr (more than a pipe holds), then silence: all drained (the script
    # reaches its marker, ffmpeg never blocks), and none of it logged as a warning: with no
    # media flowing the cause says it all, once.
    marker = tmp_path / "drained"
    fake = _fake_ffmpeg(tmp_path, "i=0; while [ $i -lt 20000 ]; do echo \"line $i\" >&2; i=$((i+1)); done\n"
                                  f"touch {marker}\nexec sleep 600")
    pipeline = MediaPipeline(PipelineConfig(
        source=parse_source("rtsp://127.0.0.1:9/none"), profile="copy", settings=SMALL, name="chatty",
        ffmpeg_bin=fake, startup_timeout_s=2.0, stderr_burst=5, **FAST_BACKOFF,
    ))
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.restarts >= 1, 15)
    finally:
        await pipeline.stop()
    assert marker.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "chatty" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "no video from the source within 2 s" in warnings[0]
    assert pipeline.status().last_error == "no video from the source within 2 s"


@pytest.mark.slow
async def test_camera_killed_then_restarted_on_the_same_port(rtsp_camera: CameraFactory) -> None:
    cam = await rtsp_camera(gop=60, audio=False)
    pipeline = MediaPipeline(PipelineConfig(
        source=Source(cam.url, has_audio=False), profile="copy", settings=SMALL, name="drop",
        backoff_initial_s=0.2, backoff_max_s=1.0,
    ))
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 20)
        generation = pipeline.prebuffer.generation
        await cam.kill()  # connection closed: ffmpeg exits (with code 0), then "connection refused"
        await pipeline.wait_for(lambda: pipeline.status().last_error == "connection refused", 15)
        assert pipeline.prebuffer.init is None
        await cam.start()  # same port
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 30)
        assert pipeline.prebuffer.generation > generation
        # The error belonged to the failed runs: the healthy one cleared it.
        assert pipeline.status().last_error is None
    finally:
        await pipeline.stop()


async def test_camera_back_before_the_first_reachability_poll_starts_at_once(rtsp_camera: CameraFactory) -> None:
    """A camera that comes back just after an attempt was refused (before the wait's first
    reachability poll) is started at that poll, not after the whole back-off. The race lost a
    60 s back-off in the 60 s outage test whenever the camera restarted as an attempt failed."""
    cam = await rtsp_camera(gop=30, audio=False)
    await cam.kill()  # down from the start: the first attempt is refused
    refused = asyncio.Event()

    def on_event(event: PipelineEvent) -> None:
        if event.state == "restarting" and "connection refused" in (event.error or ""):
            refused.set()

    pipeline = MediaPipeline(PipelineConfig(source=Source(cam.url, has_audio=False), profile="copy", settings=SMALL,
                                            name="back-early", merge_short_gops=False, backoff_initial_s=30,
                                            backoff_max_s=30, backoff_jitter=0), on_event=on_event)
    await pipeline.start()
    try:
        await asyncio.wait_for(refused.wait(), 30)
        await cam.start()  # back within the poll interval (2 s) of the refusal
        back = time.monotonic()
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 30)
        recovery = time.monotonic() - back
    finally:
        await pipeline.stop()
    print(f"camera back {recovery:.1f} s before media (the back-off was 30 s)")
    assert recovery <= 12.0
    assert pipeline.starts == 2  # the refused attempt and the one the poll started


@pytest.mark.slow
async def test_camera_down_60_s_then_back(rtsp_camera: CameraFactory, caplog: pytest.LogCaptureFixture) -> None:
    """The RTSP camera stopped for 60 s and started again on the same port, default schedule:
    a handful of ffmpeg starts and at most two log lines during the outage (not one per
    attempt), and media again within 10 s of the camera's return."""
    caplog.set_level(logging.DEBUG, logger="sidecar.media")
    cam = await rtsp_camera(gop=30, audio=False)  # 2 s fragments
    events: list[PipelineEvent] = []
    pipeline = MediaPipeline(PipelineConfig(source=Source(cam.url, has_audio=False), profile="copy", settings=SMALL,
                                            name="outage", merge_short_gops=False), on_event=events.append)
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 30)
        mark, starts_before, events_before = len(caplog.records), pipeline.starts, len(events)
        await cam.kill()
        await asyncio.sleep(60)  # the outage itself: nothing to wait for but time
        starts_during = pipeline.starts - starts_before
        during = [r for r in caplog.records[mark:] if r.levelno >= logging.INFO]
        assert pipeline.prebuffer.fragment_count == 0
        mark = len(caplog.records)
        await cam.start()  # same port
        back = time.monotonic()
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 30)
        recovery = time.monotonic() - back
        after = [r for r in caplog.records[mark:] if r.levelno >= logging.INFO]
        states = [e.state for e in events[events_before:]]
    finally:
        await pipeline.stop()
    print(f"60 s outage: {starts_during} ffmpeg starts, {len(during)} log lines while down; media again "
          f"{recovery:.1f} s after the camera was back")
    for r in during + after:
        print("   ", r.levelname, r.getMessage())
    assert recovery <= 10.0
    # Schedule 1, 2, 4, 8, 16, 32 s (jittered down by <= 20 %): 5-7 attempts in 60 s.
    assert 4 <= starts_during <= 7
    assert 1 <= len(during) <= 2  # "ffmpeg stopped: ..." and at most one change of cause
    assert during[0].getMessage().startswith("outage: ffmpeg stopped: the source ended the stream; restarting in")
    assert any(r.getMessage().startswith("outage: ffmpeg is running again after") for r in after)
    assert states[-1] == "running" and states.count("running") == 1
    # One "restarting" per failed run: the drop, the attempts while down, maybe one more that
    # started while the camera was coming back (events are per attempt; logs are per outage).
    assert set(states[:-1]) == {"restarting"} and starts_during <= len(states) - 1 <= starts_during + 2


async def test_a_gated_restart_waits_for_its_release_and_the_users_restart_does_not() -> None:
    """The pipeline's side of "no restart of the sidecar's own ends a recording": while the gate
    says no, a reconfigure that changes the command line leaves the run going (same generation,
    fragments still coming) and is carried out on release; the user's restart is never gated."""
    asked: list[str] = []
    holding = True

    def gate(reason: str) -> bool:
        asked.append(reason)
        return not holding

    pipeline = MediaPipeline(PipelineConfig(
        source=Source("demo", demo_size=(320, 240), demo_fps=15), profile="libx264", settings=SMALL, name="gated",
    ))
    pipeline.restart_gate = gate
    await pipeline.start()
    try:
        await pipeline.wait_for(lambda: pipeline.prebuffer.fragment_count > 0, 30)
        generation, starts = pipeline.prebuffer.generation, pipeline.starts
        result = await pipeline.reconfigure(dataclasses.replace(SMALL, bitrate_kbps=200))
        assert result.restarted and asked == ["reconfigured"]
        assert pipeline.restart_held == "reconfigured" and not pipeline.restart_pending
        count = pipeline.status().fragments
        await pipeline.wait_for(lambda: pipeline.status().fragments >= count + 2, 20)
        assert (pipeline.prebuffer.generation, pipeline.starts) == (generation, starts)  # the run went on
        holding = False
        assert pipeline.release_restart() and pipeline.restart_held is None
        await pipeline.wait_for(lambda: pipeline.prebuffer.generation > generation, 20)
        assert pipeline.starts == starts + 1
        # The user's "restart ffmpeg" is not put to the gate.
        holding, generation = True, pipeline.prebuffer.generation
        assert pipeline.restart("restart requested from the status page")
        await pipeline.wait_for(lambda: pipeline.prebuffer.generation > generation, 20)
        assert asked == ["reconfigured"]
        assert not pipeline.release_restart()  # nothing held
    finally:
        await pipeline.stop()


async def test_a_copy_build_that_lacks_what_the_camera_needs_gives_way_to_the_full_ffmpeg(
        clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``copy_ffmpeg`` is a build that can only copy; one that cannot read this camera (here a
    script answering as ffmpeg does for a protocol it was built without) fails once, with a
    warning naming what it lacks, and the camera's next run, at once, is the full ffmpeg."""
    lacking = _fake_ffmpeg(tmp_path, "echo 'srt://127.0.0.1:9: Protocol not found' >&2\nexit 1")
    pipeline = MediaPipeline(PipelineConfig(source=Source(str(clip), loop=True, has_audio=False), profile="copy",
                                            settings=SMALL, name="lacks", copy_ffmpeg_bin=lacking,
                                            backoff_initial_s=30.0, backoff_max_s=30.0))
    caplog.set_level(logging.INFO, logger="sidecar.media")
    try:
        await pipeline.start()
        await pipeline.wait_for(lambda: pipeline.prebuffer.init is not None, 20)  # well before a 30 s back-off
        assert pipeline.starts == 2
        assert pipeline.status().argv[0] == "ffmpeg"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert sum("cannot read this camera (srt://127.0.0.1:9: Protocol not found)" in w for w in warnings) == 1
    finally:
        await pipeline.stop()
