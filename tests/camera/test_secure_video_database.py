"""The secure-video model's accessory database (docs/secure-video.md §Services) and its write
handlers: every service the hub looks for and none of the classic RTP stream management, the
links, the advertised tiers, its own identity, and writes that fail only with HAP errors."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.secure_video import tlv as sv
from sidecar.camera.secure_video.handlers import STATE_KEY
from sidecar.camera.secure_video.tiers import TierSpec
from sidecar.hap import HapError, HapStatus
from sidecar.hap.model import Characteristic, Perm, WriteContext, short_uuid
from tests.camera.test_classic_database import CASES, GOLDEN, _Session, accessories_body

SECURE_SERVICES = {"3E", "A2", "8010", "8032", "21A", "8021", "8031", "8033", "204", "129", "85"}
PROBE = {"width": 2560, "height": 1440, "fps": 20, "codec": "hvc1"}


def camera(tmp_path: Path, **fields: Any) -> Camera:
    spec = CameraSpec(name="Secure Cam", source="demo", setup_code="031-45-154", homekit_model="secure_video",
                      **fields)
    return Camera(spec, tmp_path, host="127.0.0.1", port=0, advertiser=None)


def types(cam: Camera) -> dict[str, Any]:
    return {short_uuid(s.type): s for s in cam.accessory.services}


def char(service: Any, char_type: str) -> Characteristic:
    (found,) = [c for c in service.characteristics if short_uuid(c.type) == char_type]
    return found


def write(c: Characteristic, value: Any) -> Any:
    """What the HAP route does with a hub's write: the handler (its answer returned), then the value."""
    assert c.on_write is not None
    value = c.validate(value)
    answer = c.on_write(value, WriteContext(_Session(), timed=True, write_response=True))  # type: ignore[arg-type]
    c.set_value(value)
    return answer


async def test_every_service_of_the_model_and_none_of_the_classic_rtp(tmp_path: Path) -> None:
    services = types(camera(tmp_path))
    assert set(services) == SECURE_SERVICES
    assert not {"110", "8000", "8050", "8080", "112", "113"} & set(services)
    assert char(services["8010"], "37").value == "17.99"
    motion = {short_uuid(c.type) for c in services["85"].characteristics}
    assert {"22", "75", "8086", "8087"} <= motion
    assert {short_uuid(c.type) for c in services["8032"].characteristics} >= {"21B", "8041", "21D"}


async def test_links(tmp_path: Path) -> None:
    services = types(camera(tmp_path))
    linked = {t: {short_uuid(o.type) for o in s.linked} for t, s in services.items()}
    assert linked["8031"] == {"8033", "129"}
    assert linked["8033"] == {"8031", "129"}
    assert linked["204"] == {"129", "85"}


async def test_capabilities_and_tiers_follow_the_probe_and_the_configured_tiers(tmp_path: Path) -> None:
    cam = camera(tmp_path, tiers=(TierSpec(name="low", width=640, height=360, source="rtsp://sub"),))
    cam.state.app["probe"] = PROBE
    assert cam.secure is not None
    cam.secure_video.advertise_tiers(cam.secure)
    tiers = sv.parse_video_tiers(cam.secure.video_tiers.value)
    assert tiers.codec == sv.CODEC_H264  # tier_codec h264 (the default), even from an H.265 camera
    assert [(t.tier_id, t.quality, t.width, t.height, t.fps, t.avg_kbps) for t in tiers.tiers] == [
        (1, sv.Quality.HIGH, 2560, 1440, 20, 2800), (3, sv.Quality.LOW, 640, 360, 15, 180)]  # no Medium
    (sensor,) = sv.parse_capabilities(cam.secure.capabilities.value).sensors
    assert (sensor.width, sensor.height) == (2560, 1440)
    assert [s.quality for s in sensor.streams] == [sv.Quality.HIGH, sv.Quality.LOW]
    assert sv.parse_contributing_sensors(cam.secure.contributing_sensors.value) == (sensor.sensor_id,)
    assert all(c.value == sensor.sensor_id for c in cam.secure.sensor_ids)
    audio = sv.parse_audio_tiers(cam.secure.audio_tiers.value)
    assert (audio.codec, audio.tiers[0].sample_rate) == (sv.CODEC_OPUS, 4)  # Opus, 48 kHz


@pytest.mark.parametrize(("tier_codec", "camera_codec", "expected"), [
    ("h264", "hvc1", sv.CODEC_H264), ("auto", "hvc1", sv.CODEC_H265), ("auto", "hev1", sv.CODEC_H265),
    ("auto", "avc1", sv.CODEC_H264)])
async def test_tier_codec_auto_advertises_h265_for_an_h265_camera_only(
        tmp_path: Path, tier_codec: str, camera_codec: str, expected: int) -> None:
    cam = camera(tmp_path, tier_codec=tier_codec)
    cam.state.app["probe"] = {**PROBE, "codec": camera_codec}
    assert cam.secure is not None
    cam.secure_video.advertise_tiers(cam.secure)
    assert sv.parse_video_tiers(cam.secure.video_tiers.value).codec == expected
    assert sv.parse_video_tiers(cam.secure.webrtc_video_tiers.value).codec == expected


async def test_its_own_identity_and_pairing_state(tmp_path: Path) -> None:
    secure = camera(tmp_path)
    classic = Camera(CameraSpec(name="Secure Cam", source="demo", setup_code="031-45-154"), tmp_path,
                     host="127.0.0.1", port=0, advertiser=None)
    assert secure.server.state_path.name == "secure-cam.secure-video.json"
    assert classic.server.state_path.name == "secure-cam.json"
    assert secure.state.device_id != classic.state.device_id


@pytest.mark.parametrize("key", sorted(CASES))
async def test_homekit_model_classic_is_todays_database(tmp_path: Path, key: str) -> None:
    body = accessories_body(tmp_path, homekit_model="classic", **CASES[key])
    assert body.decode() == json.loads(GOLDEN.read_text())[key]


async def test_zones_and_motion_enabled_are_kept_with_the_camera(tmp_path: Path) -> None:
    cam = camera(tmp_path)
    assert cam.secure is not None
    zones = sv.Zones((sv.Zone(2, (sv.Polygon(bytes(16), ((0, 0), (10, 0), (10, 10))),)),))
    write(cam.secure.zones, zones.encode())
    write(cam.secure.motion_enabled, False)
    await cam.server.drain_state()  # the state file is written off the loop; a restart waits for it
    again = camera(tmp_path)
    assert again.secure is not None
    assert sv.parse_zones(cam.secure.zones.value) == zones
    assert sv.parse_zones(again.secure.zones.value) == zones
    assert again.secure.motion_enabled.value is False
    assert again.state.app[STATE_KEY]["motion_enabled"] is False


async def test_webrtc_answers_error_until_an_engine_exists(tmp_path: Path) -> None:
    cam = camera(tmp_path)
    assert cam.secure is not None
    answer = sv.parse_solicit_offer_response(write(cam.secure.solicit_offer, bytes.fromhex("0103010100")))
    assert answer.status is sv.WebRTCStatus.ERROR
    assert len(answer.session_id) == 16


async def test_every_write_handler_fails_only_with_a_hap_error(tmp_path: Path) -> None:
    cam = camera(tmp_path)
    sv_services = cam.secure
    assert sv_services is not None

    @settings(max_examples=300, deadline=None)
    @given(which=st.sampled_from(["zones", "control", "solicit_offer", "provide_answer", "webrtc_control"]),
           raw=st.binary(max_size=200))
    def fuzz(which: str, raw: bytes) -> None:
        before = sv_services.zones.value
        try:
            write(getattr(sv_services, which), raw)
        except HapError as exc:
            assert exc.status is HapStatus.INVALID_VALUE
            assert sv_services.zones.value == before

    with ThreadPoolExecutor(1) as pool:  # hypothesis runs long: off the loop the suite watches, joined here
        await asyncio.get_running_loop().run_in_executor(pool, fuzz)


async def test_setup_endpoints_has_the_write_response_permission_only_when_configured(tmp_path: Path) -> None:
    """``setup_endpoints_answer``: read (default) publishes SetupEndpoints as pr/pw, as in the
    classic model; write_response adds wr (docs/secure-video.md §Certain and uncertain)."""
    default = char(types(camera(tmp_path / "read"))["8031"], "118")
    answering = char(types(camera(tmp_path / "wr", setup_endpoints_answer="write_response"))["8031"], "118")
    assert Perm.WRITE_RESPONSE not in default.perms
    assert answering.perms == default.perms | {Perm.WRITE_RESPONSE}
