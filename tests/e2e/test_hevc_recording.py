"""An H.265 RTSP camera (GStreamer serving a 1920x1080@15 H.265 clip with an IDR every 4 s)
through the whole sidecar in copy mode: with ``record_codec: hevc`` the simulated hub receives the
camera's own H.265 and checks every rule a tvOS 27 hub has (tests/hub/hevc_rules.py); with the
default ``record_codec: h264`` the same camera still records H.264, as before (docs/h265.md)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from sidecar.camera.recording.configuration import (
    TRIGGER_MOTION,
    AudioRecordingCodec,
    H264Level,
    H264Profile,
    RecordingSelection,
    SampleRate,
    encode_selection,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.hevc_rules import check_fragments, check_init, read_init
from tests.hub.recording import record as record_once
from tests.support.clips import decodes_cleanly, first_frame_is_key, probe
from tests.support.hap_client import pair_off_loop, second_session

PIN = "031-45-154"
pytestmark = pytest.mark.slow


async def _record(sidecar: Any, cam: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  record_codec: str, profile: str = "copy") -> tuple[list[Any], Path, Any]:
    capture = DeriveCapture.install(monkeypatch)
    config = tmp_path / "sidecar.yaml"
    config.write_text(f"cameras:\n  - name: Porch\n    source: {cam.url}\n    profile: {profile}\n"
                      f"    setup_code: {PIN}\n    record_codec: {record_codec}\n    transcode_fallback: true\n")
    proc = await sidecar("--config", str(config))
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    pairing = second_session(await pair_off_loop(port, PIN))  # SRP off this loop: ffmpeg may be transcoding
    try:
        await proc.wait_for_line(r"Porch: source is 1920x1080@[\d.]+ h(?:vc|ev)1", timeout=60)
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        selection = RecordingSelection(4000, TRIGGER_MOTION, 4000, H264Profile.MAIN, H264Level.L4_0,
                                       2000, 4000, 1920, 1080, 15, AudioRecordingCodec.AAC_LC, 1, 0,
                                       SampleRate.KHZ_32, 64)
        await pairing._ensure_connected()
        await pairing.connection.put_json("/prepare", {"ttl": 5000, "pid": 7})
        await pairing.connection.put_json("/characteristics", {"characteristics": [
            {"aid": 1, "iid": ids[("204", "226")], "value": 1}], "pid": 7})
        assert await pairing.put_characteristics([
            (1, ids[("204", "209")], base64.b64encode(encode_selection(selection)).decode()),
            (1, ids[("204", "B0")], 1)]) == {}
        await proc.wait_for_line(r"Porch: prebuffer ready", timeout=90)
        frags, path = await record_once(pairing, capture, ids, 1, live_fragments=1, tmp=tmp_path)
    finally:
        await pairing.shutdown()
    return frags, path, proc


async def test_hevc_camera_recorded_as_hevc_meets_every_hub_rule(
        sidecar: Any, rtsp_camera: Any, h265_camera_clip: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    cam = await rtsp_camera(audio=False, h265_file=h265_camera_clip)
    frags, path, proc = await _record(sidecar, cam, monkeypatch, tmp_path, "hevc")
    init = read_init(bytes(frags[0].data))
    assert check_init(init) == []
    assert (init.width, init.height) == (1920, 1080)
    media = [bytes(f.data) for f in frags[1:]]
    assert len(media) >= 2
    assert check_fragments(init, media) == []
    info = await probe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["codec_tag_string"]) == ("hevc", "hvc1")
    assert (video["width"], video["height"]) == (1920, 1080)
    assert await decodes_cleanly(path) and await first_frame_is_key(path)
    # The log is read as far as the test has waited; wait for the selection's line itself.
    await proc.wait_for_line(r"Porch: the hub selected video codec 0 \(H\.264\)", timeout=10)
    log = "".join(proc.lines)
    assert "transcoding" not in log and "Porch: the camera sends H.265" in log


async def test_hevc_camera_with_the_default_still_records_h264(
        sidecar: Any, rtsp_camera: Any, h265_camera_clip: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    cam = await rtsp_camera(audio=False, h265_file=h265_camera_clip)
    frags, path, _ = await _record(sidecar, cam, monkeypatch, tmp_path, "h264")
    info = await probe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert video["codec_name"] == "h264"
    assert b"prft" not in bytes(frags[1].data)[:64]
    assert await decodes_cleanly(path) and await first_frame_is_key(path)


async def test_auto_falls_back_to_h264_after_two_failed_hevc_recordings(
        sidecar: Any, rtsp_camera: Any, h265_camera_clip: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """A hub that fails H.265 (closes with reason 5, UNEXPECTED_FAILURE, after the first fragment)
    twice: the sidecar says so in the log and on the status page, and the next clip is H.264."""
    cam = await rtsp_camera(audio=False, h265_file=h265_camera_clip)
    capture = DeriveCapture.install(monkeypatch)
    config = tmp_path / "sidecar.yaml"
    config.write_text(f"cameras:\n  - name: Porch\n    source: {cam.url}\n    profile: copy\n"
                      f"    setup_code: {PIN}\n    record_codec: auto\n")
    proc = await sidecar("--config", str(config), "--http-port", "0")
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    web_port = int((await proc.wait_for_line(r"status page: http://[\d.]+:(\d+)/")).group(1))
    pairing = second_session(await pair_off_loop(port, PIN))
    try:
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        selection = RecordingSelection(4000, TRIGGER_MOTION, 4000, H264Profile.MAIN, H264Level.L4_0,
                                       2000, 4000, 1920, 1080, 15, AudioRecordingCodec.AAC_LC, 1, 0,
                                       SampleRate.KHZ_32, 64)
        assert await pairing.put_characteristics([
            (1, ids[("204", "209")], base64.b64encode(encode_selection(selection)).decode()),
            (1, ids[("204", "B0")], 1)]) == {}
        await proc.wait_for_line(r"Porch: prebuffer ready", timeout=90)
        client = await open_hds(pairing, ids[("129", "131")], capture)
        try:
            await client.hello()
            for stream_id in (1, 2):
                opened = await client.open(stream_id)
                assert (opened.header.status, opened.body) == (0, {"status": 0})
                frags, closed = await client.collect(stream_id, fragments=2, within=40)
                assert closed is None and read_init(bytes(frags[0].data)).sample_entry == b"hvc1"
                await client.close_stream(stream_id, 5)
            await proc.wait_for_line(r"Porch: record_codec auto: hubs ended 2 H\.265 recordings in a row", timeout=20)
            await proc.wait_for_line(r"Porch: prebuffer ready", timeout=90, after=proc.mark())
            opened = await client.open(3)
            assert (opened.header.status, opened.body) == (0, {"status": 0})
            frags, closed = await client.collect(3, fragments=2, within=60)
            assert closed is None and b"avc1" in bytes(frags[0].data) and b"hvc1" not in bytes(frags[0].data)
            await client.close_stream(3, 0)
        finally:
            await client.aclose()
        reader, writer = await asyncio.open_connection("127.0.0.1", web_port)
        writer.write(b"GET /api/status HTTP/1.0\r\nHost: x\r\n\r\n")
        await writer.drain()
        body = (await reader.read()).decode()
        writer.close()
        await writer.wait_closed()
        assert "auto fell back" in body and "tvOS 27" in body
    finally:
        await pairing.shutdown()
