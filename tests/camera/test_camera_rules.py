"""The camera's HKSV rules through real HAP and HDS sessions.

The rules are in docs/protocol.md §dataSend open, §Recording TLVs and §Snapshots.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.camera.recording.configuration import (
    encode_selection,
)
from sidecar.hds.frames import batch_bound
from tests.hub.characteristics import MOTION_STATUS_ACTIVE, SELECTED_RECORDING_CONFIGURATION
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture
from tests.support.camera_rig import PIN, SELECTION, RecordingRig, make_camera, recording_rig
from tests.support.hap_client import aio_pair
from tests.support.live_view import wait_until


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RecordingRig]:
    async with recording_rig(tmp_path, monkeypatch, max_event_s=10) as rig:
        yield rig


async def test_open_is_refused_until_everything_is_set(rig: RecordingRig) -> None:
    client = await rig.hds()
    try:
        assert rig.camera.pipeline.status().state.value == "stopped"  # recording off: no ffmpeg
        refused = await client.open(1)
        assert (refused.header.status, refused.body) == (6, {"status": 1})  # recording Active = 0
        await rig.put(recording=1, homekit=0)
        refused = await client.open(2)
        assert (refused.header.status, refused.body) == (6, {"status": 1})  # HomeKitCameraActive = 0
        await rig.put(homekit=1)
        refused = await client.open(3)
        assert (refused.header.status, refused.body) == (6, {"status": 9})  # no selection yet
        bad = await rig.put(selection=b"\x01\x00")
        assert bad[(1, rig.ids[SELECTED_RECORDING_CONFIGURATION])]["status"] == -70410
    finally:
        await client.aclose()


async def test_busy_cap_and_camera_off(rig: RecordingRig) -> None:
    await rig.put(selection=encode_selection(SELECTION), recording=1)
    await rig.camera.pipeline.wait_ready(4000, timeout_s=40)
    first, second = await rig.hds(), await rig.hds()
    try:
        assert (await first.open(1)).body == {"status": 0}
        busy = await second.open(2)
        assert (busy.header.status, busy.body) == (6, {"status": 2})
        same = await first.open(3)  # a second open on the stream's own connection: BUSY too
        assert (same.header.status, same.body) == (6, {"status": 2})
        # max_event_s = 10: the stream ends by itself, with endOfStream on its last fragment...
        frags, closed = await first.collect(1, within=30)
        assert closed is None and frags[-1].end_of_stream is True
        assert sum(1 for f in frags if f.data_type == "mediaFragment") >= 3
        # ...and, since this hub does not close it, a NORMAL close follows.
        _, closed = await first.collect(1, within=10)
        assert closed is not None and closed.body == {"streamId": 1, "reason": 0}

        # A new selection that changes ffmpeg's command line wants a restart, which would give
        # the clip in flight a new init segment: the restart waits for the recording's end, and
        # the stream goes on to its own end (the 10 s cap, NORMAL) on the same ffmpeg run.
        assert (await second.open(4)).body == {"status": 0}
        await second.collect(4, fragments=2, within=20)
        generation = rig.camera.pipeline.prebuffer.generation
        await rig.put(selection=encode_selection(dataclasses.replace(SELECTION, bitrate_kbps=400)))
        await rig.camera.pipeline.wait_for(lambda: rig.camera.pipeline.restart_held is not None, 10)
        frags, closed = await second.collect(4, within=30)
        assert any(f.data_type == "mediaFragment" for f in frags)  # media went on after the new selection
        if closed is None:
            _, closed = await second.collect(4, within=10)
        assert closed is not None and closed.body == {"streamId": 4, "reason": 0}
        await rig.camera.pipeline.wait_for(lambda: rig.camera.pipeline.prebuffer.generation > generation, 20)
        assert rig.camera.pipeline.restart_held is None
        await rig.camera.pipeline.wait_ready(4000, timeout_s=40)

        assert (await second.open(5)).body == {"status": 0}
        await second.collect(5, fragments=2, within=20)
        await rig.put(homekit=0)  # switched off mid-recording: close with NOT_ALLOWED (1)
        _, closed = await second.collect(4, within=10)
        assert closed is not None and closed.body == {"streamId": 5, "reason": 1}
        values = await rig.pairing.get_characteristics([(1, rig.ids[MOTION_STATUS_ACTIVE])])
        assert values[(1, rig.ids[MOTION_STATUS_ACTIVE])]["value"] in (False, 0)  # StatusActive follows
    finally:
        await first.aclose()
        await second.aclose()


async def test_snapshots_follow_the_operating_modes(rig: RecordingRig) -> None:
    await rig.pairing._ensure_connected()
    conn = rig.pairing.connection

    async def snap(reason: int | None) -> Any:
        body: dict[str, Any] = {"resource-type": "image", "image-width": 320, "image-height": 180}
        if reason is not None:
            body["reason"] = reason
        response = await conn.post_json("/resource", body)
        return response

    image = await rig.pairing.image(1, 320, 180)
    assert image.startswith(b"\xff\xd8")
    await rig.put(event=0)
    assert await snap(None) == {"status": -70401}
    assert await snap(1) == {"status": -70412}
    await rig.put(event=1, periodic=0)
    assert await snap(0) == {"status": -70412}
    await rig.put(periodic=1, homekit=0)
    assert await snap(1) == {"status": -70412}


async def test_settings_and_selection_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    camera = await make_camera(tmp_path)
    pairing = await aio_pair(camera.server.port, PIN)
    ids = iids_by_type(await pairing.list_accessories_and_characteristics())
    rig = RecordingRig(camera, pairing, DeriveCapture(), ids)
    await rig.put(selection=encode_selection(SELECTION), event=0, periodic=0)
    data = dict(pairing.pairing_data)
    await pairing.shutdown()
    await camera.stop()

    again = await make_camera(tmp_path)
    try:
        assert again.core.selection == SELECTION
        assert (again.core.settings.event_snapshots, again.core.settings.periodic_snapshots) == (0, 0)
        assert again.services.event_snapshots.value == 0 and again.server.paired
        assert again.server.port != 0 and data["AccessoryPairingID"] == again.server.state.device_id
    finally:
        await again.stop()


async def test_a_changed_source_drops_the_selection(tmp_path: Path) -> None:
    camera = await make_camera(tmp_path)
    camera.core.settings.selection = base64.b64encode(encode_selection(SELECTION)).decode()
    camera.core.settings.supported_hash = "what we advertised before"
    camera.core.settings.store(camera.state.app)
    await camera.stop()
    again = await make_camera(tmp_path)
    try:
        assert again.core.selection is None and again.core.settings.selection == ""
    finally:
        await again.stop()


async def test_a_warm_camera_has_its_sealing_buffer_before_any_hub_opens(rig: RecordingRig) -> None:
    """The prebuffer a hub gets right after its open is sealed into memory made while the camera
    was idle (the first burst after a start no longer faults it in while hubs wait)."""
    assert rig.camera.hds.take_spare() is None  # recording off: nothing made
    await rig.put(selection=encode_selection(SELECTION), recording=1)
    snap = await rig.camera.pipeline.wait_ready(4000, timeout_s=40)
    largest = max(fragment.data.nbytes for fragment in snap.fragments)
    await wait_until(lambda: rig.camera.hds.pool.idle == 1, 10, "the sealing buffer")
    spare = rig.camera.hds.take_spare()
    assert spare is not None and len(spare) >= batch_bound(largest)  # the whole fragment, or one batch of it
    rig.camera.hds.keep_spare(spare)
    client = await rig.hds()
    try:
        assert (await client.open(1)).body == {"status": 0}
        fragments, _ = await client.collect(1, fragments=2, within=15)
        assert fragments[0].data_type == "mediaInitialization" and len(fragments) == 2
        assert rig.camera.hds.pool.idle == 0  # lent to the recording
    finally:
        await client.aclose()


async def test_switching_the_camera_off_and_on_keeps_one_prebuffer_announcer(
        rig: RecordingRig, caplog: pytest.LogCaptureFixture) -> None:
    """Each start of ffmpeg used to add a task that announces the prebuffer, and none ended: a
    camera switched off and on N times kept N + 1 of them, each logging every run's readiness."""
    caplog.set_level(logging.INFO, logger="sidecar.camera.camera_media")
    await rig.put(selection=encode_selection(SELECTION), recording=1)
    await rig.camera.pipeline.wait_ready(4000, timeout_s=40)
    for _ in range(2):
        await rig.put(homekit=0)
        await wait_until(lambda: rig.camera.pipeline.status().state.value == "stopped", 10, "ffmpeg stopped")
        await rig.put(homekit=1)
        snap = await rig.camera.pipeline.wait_ready(4000, timeout_s=40)
    line = f"prebuffer ready (generation {snap.generation},"
    await wait_until(lambda: line in caplog.text, 10, "the last run announced")
    announcers = [t for t in asyncio.all_tasks() if t.get_name().endswith(":prebuffer-ready") and not t.done()]
    assert len(announcers) == 1
    assert caplog.text.count(line) == 1


async def test_the_prebuffer_ring_keeps_what_the_selected_prebuffer_reaches(rig: RecordingRig) -> None:
    """The camera advertises 8 s (the spec's default) but keeps in memory only what the hub's
    selection reaches: with the demo's 4 s fragments, two for an 8 s selection, one for 4 s."""
    prebuffer = rig.camera.pipeline.prebuffer
    assert rig.camera.spec.prebuffer_ms == 8000 and prebuffer.serve_ms == 4000  # no selection yet
    await rig.put(selection=encode_selection(dataclasses.replace(SELECTION, prebuffer_ms=8000)), recording=1)
    assert prebuffer.serve_ms == 8000
    await rig.camera.pipeline.wait_ready(8000, timeout_s=60)
    assert prebuffer.fragment_count == 2
    await rig.put(selection=encode_selection(SELECTION))  # 4 s: the same ffmpeg command, no restart
    assert prebuffer.serve_ms == 4000
    before = prebuffer.last_fragment_at
    await rig.camera.pipeline.wait_for(lambda: prebuffer.last_fragment_at != before, timeout_s=20)
    assert prebuffer.fragment_count == 1  # the 8 s selection's older fragment went
    snap = prebuffer.fragments_since(4000, rig.camera.clock())
    assert snap is not None and snap.duration_s >= 4.0 - 0.001  # and a 4 s request is still served in full
