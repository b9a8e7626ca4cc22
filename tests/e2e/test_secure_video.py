"""A camera on the secure-video model, started by the command line, driven by the tvOS 27 hub
simulator (tests/hub/secure_video.py) over real HAP and HDS (docs/secure-video.md).

The hub pairs, finds every service of the model and none of the classic RTP stream management,
decodes every new characteristic and checks the links; writes zones and reads them back; asks
WebRTC for an offer and is told "error"; starts the High tier (the camera's H.264 passed through)
and then the Low one (encoded with the tier's encoding profile), receiving and decoding each at
its size (tests/hub/tier_viewer.py); switches the camera and recording on through the Global
Operating Mode, records a decodable clip over HDS and gets a JPEG snapshot over HDS.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sidecar.camera.recording.configuration import H264Level
from sidecar.camera.secure_video import tlv as sv
from tests.hub.characteristics import DATA_STREAM_SETUP, HOMEKIT_CAMERA_ACTIVE, MOTION_DETECTED
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.hevc_rules import check_fragments, check_init, read_init
from tests.hub.recording import enable_recording, record, recording_selection
from tests.hub.secure_video import read_model, solicit_offer, timed_write, write_value, write_zones
from tests.hub.tier_viewer import wait_for_span, watch_tier
from tests.support.clips import decodes_cleanly, probe
from tests.support.hap_client import aio_pair
from tests.support.live_view import wait_until

PIN = "031-45-154"
pytestmark = pytest.mark.slow

CONFIG = """\
http_port: 0
ffmpeg_profiles_dir: {profiles}
cameras:
  - name: Secure
    source: loop:{clip}
    profile: copy
    setup_code: {pin}
    homekit_model: secure_video
    tiers:
      low: {{width: 320, height: 180, profile: x264high}}
"""
#: A user's encoding profile for the Low tier: libx264 at the High H.264 profile (the built-in
#: live encoder uses Main), so the decoded stream shows that the tier's ``profile`` is honoured.
TIER_PROFILE = """\
name = "x264high"
description = "libx264, H.264 High profile"
mode = "transcode"
honours = ["resolution", "fps", "bitrate", "iframe_interval"]
[video]
codec = "libx264"
filter = "scale={width}:{height},format=yuv420p"
[video.options]
preset = "veryfast"
tune = "zerolatency"
"profile:v" = "high"
r = "{fps}"
"b:v" = "{bitrate}k"
maxrate = "{bitrate}k"
bufsize = "{bufsize}k"
g = "{gop}"
bf = "0"
[audio]
codec = "aac"
"""
#: The camera's main stream: H.264 at 640x360, 15 fps, a keyframe a second, with AAC audio; in
#: MPEG-TS (SPS/PPS in band, as an RTSP camera sends them), so High is the stream passed through.
CLIP_ARGS = ("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15", "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000", "-t", "12", "-c:v", "libx264", "-preset", "veryfast",
             "-profile:v", "main", "-g", "15", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k")


async def watch_tiers(pairing: Any, view: Any, proc: Any, tmp_path: Path,
                      cases: list[tuple[sv.VideoTier, bytes, bool, str]], *, audio: bool = True) -> None:
    """The hub starts each tier in turn: each is received as SRTP with the SSRCs of our
    SetupEndpoints answer, decoded by ffmpeg at the tier's size at about the tier's frame rate
    (with Opus audio on a 48 kHz clock when ``audio``), and ends when the hub says end. A case is
    (tier, session id, whether the camera's stream is copied, what the decoder calls the video)."""
    h265 = view.video_tiers.codec == sv.CODEC_H265
    for tier, session, copied, decoded_as in cases:
        mark = proc.mark()
        async with watch_tier(pairing, view, tier, tmp_path, session_id=session, audio=audio,
                              payload="H265" if h265 else "H264") as watch:
            started = await proc.wait_for_line(r"live session [0-9a-f]{8} (copying|encoding) (\d+)x(\d+)@(\d+)",
                                               after=mark)
            assert (started.group(1) == "copying") is copied
            assert (int(started.group(2)), int(started.group(3))) == (tier.width, tier.height)
            warm, window = 1.0, 3.0
            await wait_for_span(watch, warm + window, timeout=30)
            decoded = watch.frames_within(window, after=warm)
            assert tier.fps * window * 0.5 <= decoded <= tier.fps * window * 1.5 + 2, (decoded, tier)
            assert watch.decoded_size() == (tier.width, tier.height)
            assert f"Video: {decoded_as}" in watch.stderr
            assert {p.ssrc for p in watch.video.packets} == {watch.answer["video_ssrc"]}
            assert {p.payload_type for p in watch.video.packets} == {99}
            if audio:
                assert "Audio: opus" in watch.stderr
                assert {p.ssrc for p in watch.audio.packets} == {watch.answer["audio_ssrc"]}
                assert watch.audio_steps() == {960}  # 20 ms on the 48 kHz clock
            assert watch.video.rejected == watch.audio.rejected == 0
        await proc.wait_for_line(rf"live session {session.hex()[:8]} ended: the controller ended it", after=mark)


async def test_the_hub_finds_the_model_writes_zones_and_records(sidecar: Any, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    capture = DeriveCapture.install(monkeypatch)
    clip = tmp_path / "main.ts"
    make = await asyncio.create_subprocess_exec("ffmpeg", "-hide_banner", "-loglevel", "error", *CLIP_ARGS,
                                                str(clip))
    assert await make.wait() == 0
    config = tmp_path / "sidecar.yaml"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "x264high.toml").write_text(TIER_PROFILE)
    config.write_text(CONFIG.format(clip=clip, pin=PIN, profiles=profiles))
    proc = await sidecar("--config", str(config))
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    http_port = int((await proc.wait_for_line(r"motion triggers: http://[\d.]+:(\d+)")).group(1))
    # The state file is written off the sidecar's event loop: wait for it rather than race it.
    state_file = tmp_path / "state" / "secure.secure-video.json"
    await wait_until(state_file.exists, 10, "the secure-video accessory's state file")
    pairing = await aio_pair(port, PIN)
    try:
        await proc.wait_for_line(r"Secure: source is 640x360@[\d.]+ avc1", timeout=60)
        view = await read_model(pairing)
        assert view.version == "17.99"
        assert view.linked["8031"] == {"8033", "129"} and view.linked["8033"] == {"8031", "129"}
        assert view.linked["204"] == {"129", "85"}
        (sensor,) = view.capabilities.sensors
        assert view.contributing_sensors == (sensor.sensor_id,) and set(view.sensor_ids) == {sensor.sensor_id}
        assert [(t.tier_id, t.quality) for t in view.video_tiers.tiers] == [(1, sv.Quality.HIGH), (3, sv.Quality.LOW)]
        low = view.video_tiers.tiers[1]
        assert (low.width, low.height) == (320, 180)
        assert view.webrtc_video_tiers == view.video_tiers
        assert view.audio_tiers.codec == sv.CODEC_OPUS and view.audio_tiers.tiers[0].sample_rate == 4
        assert view.supported_rtp == bytes.fromhex("020100")

        zones = sv.Zones((sv.Zone(2, (sv.Polygon(bytes(range(16)), ((0, 0), (100, 0), (100, 100))),)),))
        assert await write_zones(pairing, view, zones) == {}
        assert (await read_model(pairing)).zones == zones
        await proc.wait_for_line(r"the hub wrote 1 motion zone")
        bad = await write_value(pairing, view, ("8021", "8022"), b"\x02\x05")  # truncated
        assert bad and next(iter(bad.values()))["status"] == -70410

        offer = await solicit_offer(pairing, view)
        assert offer.status is sv.WebRTCStatus.ERROR and not offer.offer

        # The Global Operating Mode: StreamingEnabled and HomeKitCameraActive, then recording.
        assert await timed_write(pairing, view, ("8032", "8041"), True) == {}
        untimed = await write_value(pairing, view, ("8032", "8041"), True)
        assert next(iter(untimed.values()))["status"] == -70410  # StreamingEnabled takes timed writes only
        # High is the camera's H.264 (Main) passed through; Low is encoded with the tier's profile (High).
        tiers = {t.quality: t for t in view.video_tiers.tiers}
        high, low = tiers[sv.Quality.HIGH], tiers[sv.Quality.LOW]
        assert view.video_tiers.codec == sv.CODEC_H264
        assert (high.width, high.height) == (640, 360) and 12 <= high.fps <= 15  # what the probe measured
        await watch_tiers(pairing, view, proc, tmp_path, [(high, b"hub-tier-high-01", True, "h264 (Main)"),
                                                         (low, b"hub-tier-low-001", False, "h264 (High)")])

        ids = {**view.ids, HOMEKIT_CAMERA_ACTIVE: view.ids[("8032", "21B")]}
        # The camera's own stream is recorded as it is: its size, measured frame rate and level.
        await enable_recording(pairing, ids, recording_selection(width=640, height=360, level=H264Level.L3_1,
                                                                 fps=view.video_tiers.tiers[0].fps))
        await proc.wait_for_line(r"prebuffer ready", timeout=60)
        motion_seen = asyncio.Event()
        pairing.dispatcher_connect(lambda ev: (1, ids[MOTION_DETECTED]) in ev and motion_seen.set())
        await pairing.subscribe([(1, ids[MOTION_DETECTED])])
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{http_port}/motion?Secure") as resp:
            assert resp.status == 200
        await asyncio.wait_for(motion_seen.wait(), 10)
        frags, path = await record(pairing, capture, ids, 1, live_fragments=1, tmp=tmp_path)
        assert frags[0].data_type == "mediaInitialization"
        video = next(s for s in (await probe(path))["streams"] if s["codec_type"] == "video")
        assert video["codec_name"] == "h264" and video["width"] == 640
        assert await decodes_cleanly(path)
        # A snapshot over HDS: one JPEG, in chunks, on a dataSend stream of its own.
        client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
        try:
            await client.hello()
            assert (await client.open(9, stream_type="ipcamera.snapshot")).body == {"status": 0}
            (picture,), closed = await client.collect(9, within=20)
            assert closed is None and picture.data_type == "image" and picture.end_of_stream
        finally:
            await client.aclose()
        jpeg = tmp_path / "snapshot.jpg"
        jpeg.write_bytes(bytes(picture.data))
        assert jpeg.read_bytes()[:2] == b"\xff\xd8"
        (image,) = (await probe(jpeg))["streams"]
        assert image["codec_name"] == "mjpeg" and image["width"] > 0
        assert not any("Traceback" in line for line in proc.lines)
    finally:
        await pairing.shutdown()


async def test_a_secure_video_h265_camera_records_h265_that_meets_the_hub_rules(
        sidecar: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The model's recordings are the classic HDS path, so an H.265 camera with ``record_codec:
    hevc`` records its own H.265 under every rule a tvOS 27 hub checks (docs/h265.md). With
    ``tier_codec: auto`` its live tiers are H.265: High its own stream passed through, Low encoded
    with libx265, each sent as H.265 RTP and decoded at its size."""
    clip = tmp_path / "h265.ts"
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=15",
        "-t", "12", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
        "keyint=60:min-keyint=60:scenecut=0:open-gop=0:bframes=0:log-level=error", "-pix_fmt", "yuv420p",
        str(clip))
    assert await proc.wait() == 0
    capture = DeriveCapture.install(monkeypatch)
    config = tmp_path / "sidecar.yaml"
    config.write_text(f"http_port: 0\ncameras:\n  - name: Secure\n    source: loop:{clip}\n    profile: copy\n"
                      f"    setup_code: {PIN}\n    homekit_model: secure_video\n    record_codec: hevc\n"
                      "    tier_codec: auto\n    tiers:\n      low: {width: 320, height: 180}\n")
    sc = await sidecar("--config", str(config))
    port = int((await sc.wait_for_line(r"HAP port: (\d+)")).group(1))
    http_port = int((await sc.wait_for_line(r"motion triggers: http://[\d.]+:(\d+)")).group(1))
    pairing = await aio_pair(port, PIN)
    try:
        await sc.wait_for_line(r"Secure: source is 640x360@[\d.]+ h(?:vc|ev)1", timeout=60)
        view = await read_model(pairing)
        assert view.video_tiers.codec == sv.CODEC_H265  # tier_codec: auto, an H.265 camera
        high, low = view.video_tiers.tiers
        assert (high.width, high.height, low.width, low.height) == (640, 360, 320, 180)
        await watch_tiers(pairing, view, sc, tmp_path, [(high, b"hub-h265-high-01", True, "hevc"),
                                                       (low, b"hub-h265-low-001", False, "hevc")], audio=False)
        ids = {**view.ids, HOMEKIT_CAMERA_ACTIVE: view.ids[("8032", "21B")]}
        # The camera's own stream is recorded as it is: its size, measured frame rate and level.
        await enable_recording(pairing, ids, recording_selection(width=640, height=360, level=H264Level.L3_1,
                                                                 fps=view.video_tiers.tiers[0].fps))
        await sc.wait_for_line(r"prebuffer ready", timeout=60)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{http_port}/motion?Secure") as resp:
            assert resp.status == 200
        frags, path = await record(pairing, capture, ids, 1, live_fragments=1, tmp=tmp_path)
        init = read_init(bytes(frags[0].data))
        assert check_init(init) == []
        assert check_fragments(init, [bytes(f.data) for f in frags[1:]]) == []
        video = next(s for s in (await probe(path))["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["codec_tag_string"]) == ("hevc", "hvc1")
        assert await decodes_cleanly(path)
    finally:
        await pairing.shutdown()
