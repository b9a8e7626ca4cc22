"""A plain camera records with no NVR: the whole sidecar with ``motion: detector`` on a file
camera with a moving object, a hub simulator (aiohomekit + our HDS client) that enables
recording, sees MotionDetected and pulls a recording that decodes. No HTTP or MQTT trigger is
configured: the motion can only come from the built-in detector."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.hub.characteristics import MOTION_DETECTED
from tests.hub.hap_setup import DeriveCapture
from tests.hub.recording import enable_recording, paired, record, recording_selection
from tests.support.clips import decodes_cleanly, first_frame_is_key, probe
from tests.support.motion_clip import make_motion_clip

PIN = "031-45-154"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_motion_clip(tmp_path_factory.mktemp("clip") / "yard.mp4")  # box in view 4-8 s of each 12 s


async def test_detector_motion_makes_the_hub_record(sidecar: Any, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path, clip: Path) -> None:
    capture = DeriveCapture.install(monkeypatch)
    config = tmp_path / "sidecar.yaml"
    config.write_text(f"cameras:\n  - name: Yard\n    source: loop:{clip}\n    profile: copy\n"
                      f"    setup_code: {PIN}\n    motion: [detector]\n    detector: {{off_delay: 2}}\n")
    proc = await sidecar("--config", str(config))
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    async with paired(port, PIN) as (pairing, ids):
        motion = (1, ids[MOTION_DETECTED])
        changes: list[bool] = []
        rose = asyncio.Event()

        def on_event(ev: dict[Any, Any]) -> None:
            if motion in ev:
                changes.append(bool(ev[motion]["value"]))
                if changes[-1]:
                    rose.set()

        pairing.dispatcher_connect(on_event)
        await pairing.subscribe([motion])
        # As a hub does: select a configuration, then switch recording on; no trigger exists.
        selection = recording_selection(bitrate_kbps=1000, audio_kbps=32)
        await enable_recording(pairing, ids, selection, homekit_active=False)
        await asyncio.wait_for(rose.wait(), 30)
        await proc.wait_for_line(r"Yard: motion detected \(detector\)", timeout=5)

        frags, path = await record(pairing, capture, ids, 1, live_fragments=1, tmp=tmp_path)
        assert frags[0].data_type == "mediaInitialization"
        info = await probe(path)
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 640, 360)
        assert float(info["format"]["duration"]) >= 4.0
        assert await decodes_cleanly(path) and await first_frame_is_key(path)
        # The box left: motion went off again (2 s OFF delay), and it never flapped.
        assert False in changes
        assert changes.count(True) <= 3
        assert not any("Traceback" in line for line in proc.lines)
        assert not any("motion detected (" in line and "(detector)" not in line for line in proc.lines)
