"""Live view as an iPhone-like controller sees it: the RTP packets themselves and the decoded TLVs.

* Opus RTP timestamps advance at the selected sample rate (320 per 20 ms at 16 kHz, 480 at
  24 kHz), not at ffmpeg's fixed 48 kHz Opus clock (960), which iOS plays as choppy audio.
* StreamingStatus is 1 (in use) while a stream runs, and 0 again once it ends.
* Beyond ``max_live_streams``, a second controller's SetupEndpoints read-back is status 1 (busy).

The controller's UDP port authenticates and decrypts each SRTP packet with the key of our
read-back (tests/support/srtp.py), so the timestamps are those of real Opus packets.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohomekit.model.characteristics.const import SampleRateValues
from aiohomekit.model.characteristics.const import SessionControlCommandValues as Cmd

from sidecar.camera.events import LiveSessionsChanged
from tests.hub.characteristics import SELECTED_RTP_STREAM_CONFIGURATION, SETUP_ENDPOINTS
from tests.support.hap_client import second_session
from tests.support.live_view import STATUS, LiveViewRig, StatusEvents, make_rig, selected, srtp_ports, wait_until

SELECTED = SELECTED_RTP_STREAM_CONFIGURATION


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LiveViewRig]:
    async for r in make_rig(tmp_path):  # the default: two live streams
        yield r


def opus_frame_ms(toc: int) -> float:
    """The frame duration an Opus packet's TOC byte announces (RFC 6716 §3.1)."""
    config = toc >> 3
    if config < 12:  # SILK
        return (10, 20, 40, 60)[config % 4]
    if config < 16:  # hybrid
        return (10, 20)[config % 2]
    return (2.5, 5, 10, 20)[config % 4]  # CELT


@pytest.mark.parametrize(("rate", "per_packet"), [(SampleRateValues.SIXTEEN_KHZ, 320),
                                                   (SampleRateValues.TWENTY_FOUR_KHZ, 480)])
async def test_opus_rtp_timestamps_at_the_selected_rate(rig: LiveViewRig, rate: SampleRateValues,
                                                       per_packet: int) -> None:
    status, viewer = await rig.setup("opus-clock-00001")
    assert status == 0
    async with srtp_ports(viewer) as (_, audio):
        raw = selected(viewer.session, Cmd.START_SESSION, sample_rate=rate)
        result = await rig.pairing.put_characteristics([(1, rig.ids[SELECTED], base64.b64encode(raw).decode())])
        assert not result
        await audio.wait_for_count(30, timeout=20)
        packets = list(audio.packets)
        assert audio.rejected == 0  # each one authenticated and decrypted with our read-back's key
    assert {p.payload_type for p in packets} == {110}
    assert {p.ssrc for p in packets} == {viewer.answer["audio_ssrc"]}
    # Each packet is one 20 ms Opus frame (TOC code 0), and its RTP time counts 20 ms of samples.
    assert {(opus_frame_ms(p.payload[0]), p.payload[0] & 3) for p in packets} == {(20, 0)}
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(packets)
             if b.sequence == (a.sequence + 1) % 2**16]
    print(f"\nOpus at {rate.name}: RTP timestamp steps {sorted(set(steps))} over {len(steps)} packets")
    assert len(steps) >= 20
    assert set(steps) == {per_packet}
    assert await rig.select(viewer.session, Cmd.END_SESSION) == 0
    await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")


async def test_streaming_status_in_use_while_streaming(rig: LiveViewRig) -> None:
    live_counts: list[int] = []  # what observers (status page, parent process) are told
    rig.camera.events.subscribe(lambda e: live_counts.append(e.sessions) if isinstance(e, LiveSessionsChanged)
                                else None)
    events = StatusEvents(rig)
    stop = rig.pairing.dispatcher_connect(events)
    await rig.pairing.subscribe([(1, rig.ids[STATUS])])
    try:
        assert await rig.streaming_status() == 0
        status, viewer = await rig.setup("in-use-session-1")
        assert status == 0 and viewer.answer["status"] == 0
        assert await rig.streaming_status() == 0  # prepared, one of two slots: still available
        assert await rig.select(viewer.session, Cmd.START_SESSION, audio=False) == 0
        assert await events.next() == 1
        assert await rig.streaming_status() == 1  # in use while the stream runs
        await wait_until(lambda: len(rig.live_pids()) == 1, 10, "ffmpeg")
        assert await rig.streaming_status() == 1
        assert await rig.select(viewer.session, Cmd.END_SESSION) == 0
        assert await events.next() == 0
        assert await rig.streaming_status() == 0
        await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")
        assert live_counts == [1, 0]
    finally:
        stop()


@pytest.fixture
async def one_stream_rig(tmp_path: Path) -> AsyncIterator[LiveViewRig]:
    async for r in make_rig(tmp_path, max_live_streams=1):
        yield r


async def test_second_controller_gets_busy_beyond_max_live_streams(one_stream_rig: LiveViewRig) -> None:
    rig = one_stream_rig
    other = second_session(rig.pairing.pairing_data)  # another controller's HAP connection
    try:
        status, first = await rig.setup("first-viewer-001")
        assert status == 0 and first.answer["status"] == 0
        assert await rig.select(first.session, Cmd.START_SESSION, audio=False) == 0
        await wait_until(lambda: len(rig.live_pids()) == 1, 10, "ffmpeg")
        status, second = await rig.setup("second-viewer-01", pairing=other)
        assert status == 0
        # The decoded read-back: this controller's session id, status 1 (busy), nothing else.
        assert second.answer == {"session_id": b"second-viewer-01", "status": 1}
        assert len(rig.camera.live._runners) == 1
        # The first controller's own read-back still describes its session.
        again = await rig.get(SETUP_ENDPOINTS)
        assert base64.b64decode(again)[:2] == b"\x01\x10"
        assert await rig.select(first.session, Cmd.END_SESSION) == 0
        await wait_until(lambda: not rig.camera.live._runners, 10, "the session to end")
        status, second = await rig.setup("second-viewer-01", pairing=other)
        assert status == 0 and second.answer["status"] == 0
    finally:
        await other.shutdown()
