"""Hub-written motion zones mask the built-in detector (docs/secure-video.md §Behaviour).

A secure-video camera is given zones through its CameraZones write handler, exactly as a hub
writes them; the detector takes them through the camera's interface (``add_zones_observer``)
and is fed the synthetic frames of the detector's test rig. Motion inside an excluded zone, or
outside every included zone, raises nothing; the rest of the picture is still watched.
MotionEnabled off raises no motion at all.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sidecar.camera import Camera, CameraSpec
from sidecar.camera.secure_video import tlv as sv
from sidecar.hap.model import Characteristic, WriteContext
from sidecar.triggers.detector import DetectorParams, MotionDetector
from tests.camera.test_classic_database import _Session
from tests.triggers.test_detector import FPS, STEP, Box, Scene, crossing

SENSOR_W, SENSOR_H = 1920, 1080  # the sensor a camera advertises before its first probe
RIGHT_HALF = ((960, 0), (1920, 0), (1920, 1080), (960, 1080))
LEFT_HALF = ((0, 0), (960, 0), (960, 1080), (0, 1080))


def secure_camera(tmp_path: Path, **fields: Any) -> Camera:
    return Camera(CameraSpec(name="Zone Cam", source="demo", setup_code="031-45-154", homekit_model="secure_video",
                             **fields), tmp_path, host="127.0.0.1", port=0, advertiser=None)


def hub_write(char: Characteristic, value: object) -> None:
    """What the HAP route does with a hub's write: the handler, then the new value."""
    assert char.on_write is not None
    value = char.validate(value)
    char.on_write(value, WriteContext(_Session(), timed=True, write_response=False))  # type: ignore[arg-type]
    char.set_value(value)


def write_zones(cam: Camera, *zones: tuple[int, tuple[tuple[int, int], ...]]) -> None:
    assert cam.secure is not None and cam.secure.zones.on_write is not None
    value = sv.Zones(tuple(sv.Zone(method, (sv.Polygon(bytes(16), points),)) for method, points in zones)).encode()
    hub_write(cam.secure.zones, value)


async def events_for(cam: Camera, scene: Scene, seconds: float) -> list[tuple[float, bool]]:
    """The detector's events for ``seconds`` of the scene, fed in a thread (numpy work must not
    block the loop the suite watches), with the camera's zones."""
    detector = MotionDetector(DetectorParams(off_delay=3.0))
    stop = cam.add_zones_observer(detector.set_zones)

    def feed() -> list[tuple[float, bool]]:
        out = []
        for n in range(round(seconds * FPS)):
            t = n * STEP
            out += [(round(e.at - 1000, 3), e.active) for e in detector.feed(scene.frame(t), 1000 + t)]
        return out

    try:
        with ThreadPoolExecutor(1) as pool:
            return await asyncio.get_running_loop().run_in_executor(pool, feed)
    finally:
        stop()


RIGHT_CAT = Scene(boxes=[Box(18, 14, 220.0, crossing(4.0, 9.0, 100, 160, 40))])  # x 100-178 of 178: right half
LEFT_CAT = Scene(boxes=[Box(18, 14, 220.0, crossing(4.0, 9.0, 5, 60, 40))])


async def test_motion_inside_an_excluded_zone_raises_nothing(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path)
    assert await events_for(cam, RIGHT_CAT, 12.0)  # without zones the cat is motion
    write_zones(cam, (2, RIGHT_HALF))
    assert await events_for(cam, RIGHT_CAT, 12.0) == []
    left = await events_for(cam, LEFT_CAT, 12.0)  # the rest of the picture is still watched
    assert [active for _, active in left] == [True, False]


async def test_motion_outside_every_included_zone_raises_nothing(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path)
    write_zones(cam, (1, LEFT_HALF))
    assert await events_for(cam, RIGHT_CAT, 12.0) == []
    assert [active for _, active in await events_for(cam, LEFT_CAT, 12.0)] == [True, False]


#: The right half in ``zone_coordinates: normalized`` (0-65535 across the picture).
NORMALIZED_RIGHT_HALF = ((32768, 0), (65535, 0), (65535, 65535), (32768, 65535))


@pytest.mark.parametrize("space", ["sensor_pixels", "normalized"])
async def test_zone_corners_are_read_in_the_configured_coordinate_space(tmp_path: Path, space: str) -> None:
    """Which space real hubs write in is unknown (docs/secure-video.md §Certain and uncertain):
    each setting maps its own reading of the right half onto the detector's right half, and
    reads the other's corners as something else."""
    cam = secure_camera(tmp_path, zone_coordinates=space)
    seen: list[Any] = []
    stop = cam.add_zones_observer(seen.append)
    native, other = (RIGHT_HALF, NORMALIZED_RIGHT_HALF) if space == "sensor_pixels" else (NORMALIZED_RIGHT_HALF,
                                                                                           RIGHT_HALF)
    write_zones(cam, (2, native))
    ((exclude,),) = [z.exclude for z in seen[-1:]]
    assert [(round(x, 3), round(y, 3)) for x, y in exclude] == [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
    write_zones(cam, (2, other))
    ((exclude,),) = [z.exclude for z in seen[-1:]]
    assert [(round(x, 3), round(y, 3)) for x, y in exclude] != [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
    stop()


async def test_normalized_zones_mask_the_detector(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path, zone_coordinates="normalized")
    write_zones(cam, (2, NORMALIZED_RIGHT_HALF))
    assert await events_for(cam, RIGHT_CAT, 12.0) == []
    assert [active for _, active in await events_for(cam, LEFT_CAT, 12.0)] == [True, False]


async def test_zones_switched_off_are_kept_but_not_applied(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path)
    write_zones(cam, (2, RIGHT_HALF))
    assert cam.secure is not None and cam.secure.zones_active.on_write is not None
    hub_write(cam.secure.zones_active, 0)
    assert await events_for(cam, RIGHT_CAT, 12.0)
    assert sv.parse_zones(cam.secure.zones.value).zones  # still there


async def test_zones_reach_a_running_detector_and_survive_a_restart(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path)
    seen: list[object] = []
    stop = cam.add_zones_observer(seen.append)
    write_zones(cam, (2, RIGHT_HALF))
    stop()
    assert len(seen) == 2 and seen[-1] == cam.detection_zones()
    (excluded,) = cam.detection_zones().exclude
    assert excluded == ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
    await cam.server.drain_state()  # the state file is written off the loop; a restart waits for it
    assert secure_camera(tmp_path).detection_zones() == cam.detection_zones()


async def test_motion_enabled_off_raises_no_motion(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path)
    cam.trigger_motion("http")
    assert cam.core.motion.active
    assert cam.secure is not None and cam.secure.motion_enabled.on_write is not None
    hub_write(cam.secure.motion_enabled, False)
    assert not cam.core.motion.active  # switching it off ends the motion in progress
    cam.trigger_motion("http")
    assert not cam.core.motion.active and cam.services.motion.value is False


@pytest.mark.parametrize("model", ["classic"])
async def test_a_classic_camera_has_no_zones(tmp_path: Path, model: str) -> None:
    cam = Camera(CameraSpec(name="Plain", source="demo", homekit_model=model), tmp_path, host="127.0.0.1", port=0,  # type: ignore[arg-type]
                 advertiser=None)
    assert cam.detection_zones().include == () and cam.detection_zones().exclude == ()


async def test_the_status_shows_the_zones_and_motion_enabled(tmp_path: Path) -> None:
    cam = secure_camera(tmp_path)
    write_zones(cam, (2, RIGHT_HALF))
    assert cam.secure is not None
    hub_write(cam.secure.motion_enabled, False)
    status = cam.status()
    assert status.homekit_model == "secure_video" and status.motion_enabled is False
    assert status.zones == ("ignore: (960,0) (1920,0) (1920,1080) (960,1080)",)
