"""Microphone and Speaker exist only on cameras with ``two_way_audio:`` (docs/two-way-audio.md).

A camera without it must serve exactly the database it served before two-way audio existed:
``data/database_without_talk.json`` is that database (every service but AccessoryInformation,
with iids, formats, permissions, links and values), recorded from the code before the change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.camera import Camera, CameraSpec, TwoWayAudio
from sidecar.hap.model import services_json

GOLDEN = Path(__file__).parent / "data" / "database_without_talk.json"


def _database(tmp_path: Path, **fields: Any) -> list[dict[str, Any]]:
    camera = Camera(CameraSpec(name="Golden Cam", source="demo", setup_code="031-45-154", **fields), tmp_path,
                    host="127.0.0.1", port=0, advertiser=None)
    out = services_json(camera.accessory, lambda c: (c.value, True))
    rows = [s for s in out if s["type"] != "3E"]
    return json.loads(json.dumps(rows, sort_keys=True, default=lambda b: b.hex()))  # type: ignore[no-any-return]


@pytest.mark.parametrize(("key", "fields"), [
    ("plain", {}), ("doorbell", {"doorbell": True, "operating_mode_indicator": True, "night_vision": True})])
async def test_a_camera_without_two_way_audio_serves_todays_database(tmp_path: Path, key: str,
                                                                     fields: dict[str, Any]) -> None:
    assert _database(tmp_path, **fields) == json.loads(GOLDEN.read_text())[key]


async def test_two_way_audio_adds_microphone_and_speaker_with_mute_and_volume(tmp_path: Path) -> None:
    plain = _database(tmp_path / "a")
    talk = _database(tmp_path / "b", two_way_audio=TwoWayAudio())
    added = [s for s in talk if s["type"] not in {p["type"] for p in plain}]
    assert sorted(s["type"] for s in added) == ["112", "113"]
    for service in added:
        mute, volume = service["characteristics"]
        assert (mute["type"], mute["format"], mute["perms"], mute["value"]) == ("11A", "bool", ["pr", "pw", "ev"],
                                                                                False)
        assert (volume["type"], volume["format"], volume["perms"], volume["value"]) == (
            "119", "uint8", ["pr", "pw", "ev"], 100)
        assert (volume["minValue"], volume["maxValue"], volume["unit"]) == (0, 100, "percentage")
    # Everything that was there keeps its iids and values.
    assert [s for s in talk if s["type"] not in ("112", "113")] == plain
