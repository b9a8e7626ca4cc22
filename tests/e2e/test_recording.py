"""The whole sidecar, started by its command line on the demo camera, driven by a hub simulator:
aiohomekit for HAP, our hub-side HDS client for the recording (docs/protocol.md §dataSend, §Recording flow)."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
    MOTION_DETECTED,
    SUPPORTED_AUDIO_RECORDING_CONFIGURATION,
    SUPPORTED_CAMERA_RECORDING_CONFIGURATION,
    SUPPORTED_VIDEO_RECORDING_CONFIGURATION,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import enable_recording, record, recording_selection, set_recording_audio
from tests.support.clips import (
    advertised_resolutions,
    decodes_cleanly,
    first_frame_is_key,
    probe,
)
from tests.support.hap_client import aio_pair

PIN = "031-45-154"
pytestmark = pytest.mark.slow


async def test_demo_camera_records_to_a_hub(sidecar: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    capture = DeriveCapture.install(monkeypatch)
    proc = await sidecar("--demo", "--demo-motion-every", "100000", "--setup-code", PIN, "--trigger-http-port", "0")
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    trigger_port = int((await proc.wait_for_line(r"motion triggers: http://[\d.]+:(\d+)")).group(1))
    pairing = await aio_pair(port, PIN)
    try:
        accessories = await pairing.list_accessories_and_characteristics()
        ids = iids_by_type(accessories)
        values = await pairing.get_characteristics([(1, ids[k]) for k in (
            SUPPORTED_CAMERA_RECORDING_CONFIGURATION, SUPPORTED_VIDEO_RECORDING_CONFIGURATION,
            SUPPORTED_AUDIO_RECORDING_CONFIGURATION)])
        supported_video = base64.b64decode(values[(1, ids[SUPPORTED_VIDEO_RECORDING_CONFIGURATION])]["value"])
        assert (640, 360, 15) in advertised_resolutions(supported_video) or \
            (640, 360, 24) in advertised_resolutions(supported_video)
        # The real hub selection of docs/protocol.md §Recording TLVs, adapted to an advertised resolution.
        selection = recording_selection()
        await set_recording_audio(pairing, ids, True)
        await enable_recording(pairing, ids, selection)
        await proc.wait_for_line(r"prebuffer ready", timeout=40)

        motion_seen = asyncio.Event()
        pairing.dispatcher_connect(lambda ev: (1, ids[MOTION_DETECTED]) in ev and motion_seen.set())
        await pairing.subscribe([(1, ids[MOTION_DETECTED])])
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{trigger_port}/motion?Demo%20Camera") as resp:
            assert resp.status == 200 and (await resp.json())["error"] is False
        await asyncio.wait_for(motion_seen.wait(), 10)

        frags, path = await record(pairing, capture, ids, 1, live_fragments=2, tmp=tmp_path)
        assert frags[0].data_type == "mediaInitialization" and frags[0].sequence == 1
        assert [f.sequence for f in frags] == list(range(1, len(frags) + 1))
        info = await probe(path)
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert streams["video"]["codec_name"] == "h264" and streams["video"]["width"] == 640
        assert streams["audio"]["codec_name"] == "aac" and streams["audio"]["profile"] == "LC"
        assert streams["audio"]["sample_rate"] == "32000" and streams["audio"]["channels"] == 1
        assert float(info["format"]["duration"]) >= 4.0 + 2 * 3.9  # prebuffer + the live fragments
        assert await decodes_cleanly(path)
        assert await first_frame_is_key(path)

        # Recording audio off (a timed write): the next recording has no audio track at all.
        mark = proc.mark()
        await set_recording_audio(pairing, ids, False, pid=43)
        await proc.wait_for_line(r"restarting ffmpeg", timeout=20, after=mark)
        await proc.wait_for_line(r"prebuffer ready", timeout=40, after=mark)
        _, path2 = await record(pairing, capture, ids, 2, live_fragments=1, tmp=tmp_path)
        assert {s["codec_type"] for s in (await probe(path2))["streams"]} == {"video"}
        assert await decodes_cleanly(path2)

        # SIGTERM mid-recording: the stream is closed with a reason, then the process exits 0 in < 5 s.
        client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
        try:
            await client.hello()
            assert (await client.open(3)).body == {"status": 0}
            await client.collect(3, fragments=2, within=20)
            started = time.monotonic()
            assert await proc.terminate() == 0
            assert time.monotonic() - started < 5.0
            _, closed = await client.collect(3, within=5)
            assert closed is not None and closed.body == {"streamId": 3, "reason": 3}
        finally:
            await client.aclose()
        assert not any("Traceback" in line for line in proc.lines)
    finally:
        await pairing.shutdown()
