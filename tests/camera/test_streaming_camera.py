"""Live streaming's rules on a real camera over HAP (aiohomekit): refusals, busy, status events.

docs/protocol.md §Live-view TLVs: with RTP Active = 0 or HomeKitCameraActive = 0 the writes fail
with -70412 and the reads give the idle values; switching either off ends running sessions;
beyond the configured number of sessions SetupEndpoints answers busy.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohomekit.model.characteristics.const import SessionControlCommandValues as Cmd

from tests.hub.characteristics import (
    HOMEKIT_CAMERA_ACTIVE,
    SELECTED_RTP_STREAM_CONFIGURATION,
    SETUP_ENDPOINTS,
    STREAMING_ACTIVE,
)
from tests.support.hap_client import second_session
from tests.support.live_view import STATUS, LiveViewRig, StatusEvents, alive, make_rig, wait_until

SETUP, SELECTED = SETUP_ENDPOINTS, SELECTED_RTP_STREAM_CONFIGURATION
RTP_ACTIVE, HOMEKIT_ACTIVE = STREAMING_ACTIVE, HOMEKIT_CAMERA_ACTIVE


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LiveViewRig]:
    async for r in make_rig(tmp_path, max_live_streams=1):
        yield r


@pytest.mark.parametrize("switch", [RTP_ACTIVE, HOMEKIT_ACTIVE])
async def test_switched_off_refuses_with_70412_and_ends_running_sessions(rig: LiveViewRig,
                                                                        switch: tuple[str, str]) -> None:
    events = StatusEvents(rig)
    stop = rig.pairing.dispatcher_connect(events)
    await rig.pairing.subscribe([(1, rig.ids[STATUS])])
    writer = second_session(rig.pairing.pairing_data)  # another controller flips the switch
    try:
        status, viewer = await rig.setup("running-session1")
        assert status == 0 and await events.next() == 1  # in use: the only allowed session
        assert await rig.select(viewer.session, Cmd.START_SESSION, audio=False) == 0
        await wait_until(lambda: len(rig.live_pids()) == 1, 10, "ffmpeg")
        (pid,) = rig.live_pids()

        await writer.put_characteristics([(1, rig.ids[switch], 0)])
        assert await events.next() == 2  # unavailable
        await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")
        assert not alive(pid)

        status, _ = await rig.setup("refused-session1")
        assert status == -70412
        assert await rig.select(viewer.session, Cmd.START_SESSION) == -70412
        assert base64.b64decode(await rig.get(SETUP)) == bytes.fromhex("020102")
        assert base64.b64decode(await rig.get(SELECTED)) == bytes.fromhex("0103020102")
        assert await rig.streaming_status() == 2

        await writer.put_characteristics([(1, rig.ids[switch], 1)])
        assert await events.next() == 0
        status, viewer = await rig.setup("allowed-session1")
        assert status == 0 and viewer.answer["status"] == 0
    finally:
        stop()
        await writer.shutdown()


async def test_busy_beyond_the_limit(rig: LiveViewRig) -> None:
    status, first = await rig.setup("first-session-01")
    assert status == 0 and first.answer["status"] == 0
    assert await rig.streaming_status() == 1
    status, second = await rig.setup("second-session-1")
    assert status == 0  # the write succeeds; the read-back says busy (HAP-NodeJS's answer)
    assert second.answer == {"session_id": b"second-session-1", "status": 1}
    assert len(rig.camera.live._runners) == 1
    assert await rig.select(first.session, Cmd.END_SESSION) == 0
    assert await rig.streaming_status() == 0
    status, second = await rig.setup("second-session-1")
    assert second.answer["status"] == 0


async def test_suspend_resume_unknown_and_foreign_sessions_are_refused(rig: LiveViewRig) -> None:
    status, viewer = await rig.setup("the-session-0001")
    assert status == 0
    assert await rig.select("unknown-session1", Cmd.START_SESSION) == -70410
    other = second_session(rig.pairing.pairing_data)
    try:
        assert await rig.select(viewer.session, Cmd.START_SESSION, pairing=other) == -70410
    finally:
        await other.shutdown()
    assert await rig.select(viewer.session, Cmd.RECONFIGURE_SESSION) == -70410  # not started yet
    assert await rig.select(viewer.session, Cmd.START_SESSION, audio=False) == 0
    await wait_until(lambda: len(rig.live_pids()) == 1, 10, "ffmpeg")
    assert await rig.select(viewer.session, Cmd.SUSPEND_SESSION) == -70410
    assert await rig.select(viewer.session, Cmd.RESUME_SESSION) == -70410
    assert len(rig.live_pids()) == 1  # still streaming
    assert await rig.select(viewer.session, Cmd.END_SESSION) == 0
    await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")


async def test_a_prepared_session_never_started_expires(rig: LiveViewRig) -> None:
    rig.camera.live.prepared_timeout_s = 0.2
    status, _ = await rig.setup("never-started-01")
    assert status == 0 and len(rig.camera.live._runners) == 1
    await wait_until(lambda: not rig.camera.live._runners, 5, "the prepared session to expire")
    assert await rig.streaming_status() == 0
