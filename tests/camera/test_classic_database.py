"""A camera on the classic model serves exactly the database it served before the secure-video
model existed (docs/secure-video.md §Status).

``data/classic_accessories.json`` holds the ``/accessories`` bodies, byte for byte, recorded from
the code before the model could be chosen (the firmware version is written as ``@VERSION@`` so a
release does not change the file). The body is built as the HAP route builds it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar import __version__
from sidecar.camera import Camera, CameraSpec, TwoWayAudio
from sidecar.hap import HapError
from sidecar.hap.http import json_body
from sidecar.hap.model import Characteristic, Perm, services_json
from sidecar.hap.routes import read_value

GOLDEN = Path(__file__).parent / "data" / "classic_accessories.json"
CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "doorbell": {"doorbell": True, "operating_mode_indicator": True, "night_vision": True,
                 "manually_disabled": True},
    "talk": {"two_way_audio": TwoWayAudio()},
}


class _Session:
    """What a read handler sees of a verified admin session (the route passes the real one)."""

    session_id = 1
    controller_id = b"golden-controller"
    is_admin = True
    shared_secret = bytes(32)

    def add_close_callback(self, callback: Any) -> Any:
        return lambda: None


def accessories_body(tmp_path: Path, **fields: Any) -> bytes:
    """The ``/accessories`` body of a camera built with ``fields`` (the route's own serialisation)."""
    camera = Camera(CameraSpec(name="Golden Cam", source="demo", setup_code="031-45-154", **fields), tmp_path,
                    host="127.0.0.1", port=0, advertiser=None)

    session = _Session()

    def read(char: Characteristic) -> tuple[Any, bool]:
        if Perm.READ not in char.perms:
            return None, False
        try:
            return read_value(char, session), True  # type: ignore[arg-type]
        except HapError:
            return None, False

    accessory = camera.accessory
    body = json_body({"accessories": [{"aid": accessory.aid, "services": services_json(accessory, read)}]})
    return body.replace(json.dumps(__version__).encode(), b'"@VERSION@"')


@pytest.mark.parametrize("key", sorted(CASES))
async def test_a_classic_camera_serves_todays_accessories_byte_for_byte(tmp_path: Path, key: str) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert accessories_body(tmp_path, **CASES[key]).decode() == golden[key]
