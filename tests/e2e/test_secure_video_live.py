"""Live view of the secure-video model's tiers (docs/secure-video.md §Tiers), over real HAP and SRTP.

The hub sets a session up with SetupEndpoints on Multi-Tier RTP Stream Management, starts a tier
with RTPStreamingControl and receives SRTP: packets carry the SSRCs of our SetupEndpoints answer,
Opus counts 960 per 20 ms (a 48 kHz clock), and an ffmpeg viewer decodes the High and the Low
tier, each at its advertised size. Ending a tier ends its sender.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.camera.live.talkback import free_port_pair
from sidecar.camera.secure_video import tlv as sv
from sidecar.camera.secure_video.tiers import TierSpec
from tests.e2e.test_live_stream import Decoder, video_size
from tests.hub.characteristics import SETUP_ENDPOINTS
from tests.hub.hap_setup import setup_write
from tests.support.live_view import (
    KEY,
    SALT,
    LiveViewRig,
    Viewer,
    decode_setup_response,
    make_rig,
    setup_tlv,
    srtp_ports,
    wait_until,
)

pytestmark = pytest.mark.slow
CONTROL = ("8031", "8045")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LiveViewRig]:
    async for r in make_rig(tmp_path, homekit_model="secure_video",
                            tiers=(TierSpec(name="low", width=320, height=180, fps=15),)):
        r.ids[SETUP_ENDPOINTS] = r.ids[("8031", "118")]  # the hub finds SetupEndpoints by service
        yield r


async def control(rig: LiveViewRig, viewer: Viewer, command: sv.ControlCommand, tier: int | None = None) -> int:
    raw = sv.StreamingControl(viewer.session.encode(), command, tier, 0x1234 if tier else None,
                              1 if tier else None, 0x5678 if tier else None).encode()
    entry = await setup_write(rig.pairing, rig.ids[CONTROL], raw)
    assert entry.get("status", 0) == 0, entry
    answer = sv.parse_control_response(base64.b64decode(entry["value"]))
    assert answer.session_id == viewer.session.encode()
    return int(answer.status)


async def tiers(rig: LiveViewRig) -> dict[int, sv.VideoTier]:
    raw = base64.b64decode(await rig.get(("8031", "8043")))
    return {t.tier_id: t for t in sv.parse_video_tiers(raw).tiers}


async def test_high_and_low_tiers_decode_at_their_sizes_with_our_ssrcs(rig: LiveViewRig) -> None:
    advertised = await tiers(rig)
    assert set(advertised) == {1, 3}  # Medium is not configured: not advertised
    high, low = advertised[1], advertised[3]
    assert (low.width, low.height) == (320, 180)

    # Low: raw SRTP first: our SSRCs, and Opus on a 48 kHz clock.
    status, viewer = await rig.setup("tier-low-0000001")
    assert status == 0
    async with srtp_ports(viewer) as (video, audio):
        assert await control(rig, viewer, sv.ControlCommand.START, 3) == sv.ControlStatus.OK
        await audio.wait_for_count(20, timeout=20)
        await video.wait_for_count(5, timeout=20)
        assert {p.ssrc for p in video.packets} == {viewer.answer["video_ssrc"]}
        assert {p.ssrc for p in audio.packets} == {viewer.answer["audio_ssrc"]}
        steps = {(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(audio.packets)
                 if b.sequence == (a.sequence + 1) % 2**16}
        assert steps == {960}
    assert await control(rig, viewer, sv.ControlCommand.END) == sv.ControlStatus.OK
    await wait_until(lambda: not rig.camera.live._runners, 10, "the Low tier to end")

    for name, tier in (("tier-low-0000002", low), ("tier-high-000001", high)):
        status, viewer = await rig.setup(name)
        assert status == 0
        decoder = Decoder(viewer, rig.tmp_path)
        await decoder.start()
        assert await control(rig, viewer, sv.ControlCommand.START, tier.tier_id) == sv.ControlStatus.OK
        frames, err = await decoder.result(timeout=30)
        assert video_size(err) == (tier.width, tier.height)
        assert len(frames) == 3 * tier.width * tier.height
        assert "Audio: opus" in err
        assert await control(rig, viewer, sv.ControlCommand.END) == sv.ControlStatus.OK
        await wait_until(lambda: not rig.camera.live._runners, 10, "the tier to end")


async def test_unknown_sessions_and_tiers_are_answered_not_raised(rig: LiveViewRig) -> None:
    status, viewer = await rig.setup("tier-none-000001")
    assert status == 0
    assert await control(rig, viewer, sv.ControlCommand.START, 2) == sv.ControlStatus.NO_SUCH_STREAM
    stranger = Viewer("never-set-up-001", 1, 1, {})
    assert await control(rig, stranger, sv.ControlCommand.START, 1) == sv.ControlStatus.UNKNOWN


async def test_a_tier_with_a_source_is_that_substream(tmp_path: Path) -> None:
    """A Medium tier configured with a substream shows the substream (here: a white picture),
    not the camera's main stream scaled down."""
    sub = tmp_path / "sub.mp4"
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=white:s=480x270:r=15",
        "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "15", str(sub))
    assert await proc.wait() == 0
    tier = TierSpec(name="medium", width=480, height=270, fps=15, source=f"loop:{sub}")
    async for rig in make_rig(tmp_path / "cam", homekit_model="secure_video", tiers=(tier,)):
        rig.ids[SETUP_ENDPOINTS] = rig.ids[("8031", "118")]
        status, viewer = await rig.setup("tier-medium-0001")
        assert status == 0
        decoder = Decoder(viewer, rig.tmp_path, audio=False)
        await decoder.start()
        assert await control(rig, viewer, sv.ControlCommand.START, 2) == sv.ControlStatus.OK
        frames, err = await decoder.result(timeout=30)
        assert video_size(err) == (480, 270)
        assert len(frames) == 3 * 480 * 270
        assert sum(frames) / len(frames) > 200  # white: the substream, not the demo picture
        assert await control(rig, viewer, sv.ControlCommand.END) == sv.ControlStatus.OK
        live = rig.camera.live
        await wait_until(lambda live=live: not live._runners, 10, "the tier to end")


async def test_setup_endpoints_answers_on_read_and_refuses_a_write_response_by_default(rig: LiveViewRig) -> None:
    """``setup_endpoints_answer: read`` (the default): SetupEndpoints has no write-response
    permission, so a hub that asks for the answer in the write is refused (docs/secure-video.md
    §Certain and uncertain); reading it back works (every other test here)."""
    entry = await setup_write(rig.pairing, rig.ids[SETUP_ENDPOINTS], setup_tlv(b"tier-wr-refused1"))
    assert entry["status"] == -70410


async def test_setup_endpoints_answers_in_the_write_response_when_configured(tmp_path: Path) -> None:
    """``setup_endpoints_answer: write_response``: the write's response carries the answer (the
    same a read gives), and a tier started on it is sent with its SSRCs and keys."""
    async for rig in make_rig(tmp_path, homekit_model="secure_video", setup_endpoints_answer="write_response",
                              tiers=(TierSpec(name="low", width=320, height=180, fps=15),)):
        video_port, audio_port = free_port_pair(), free_port_pair()
        session = b"tier-write-resp1"
        entry = await setup_write(rig.pairing, rig.ids[("8031", "118")],
                                  setup_tlv(session, video_port=video_port, audio_port=audio_port, key=KEY, salt=SALT))
        assert entry.get("status", 0) == 0, entry
        answer = decode_setup_response(base64.b64decode(entry["value"]))
        assert answer["status"] == 0 and answer["session_id"] == session
        rig.ids[SETUP_ENDPOINTS] = rig.ids[("8031", "118")]
        assert decode_setup_response(base64.b64decode(await rig.get(SETUP_ENDPOINTS))) == answer
        viewer = Viewer(session.decode(), video_port, audio_port, answer)
        async with srtp_ports(viewer) as (video, audio):
            assert await control(rig, viewer, sv.ControlCommand.START, 3) == sv.ControlStatus.OK
            await video.wait_for_count(5, timeout=20)
            await audio.wait_for_count(5, timeout=20)
            assert {p.ssrc for p in video.packets} == {answer["video_ssrc"]}
            assert {p.ssrc for p in audio.packets} == {answer["audio_ssrc"]}
        assert await control(rig, viewer, sv.ControlCommand.END) == sv.ControlStatus.OK
        live = rig.camera.live
        await wait_until(lambda live=live: not live._runners, 10, "the tier to end")
