"""MQTT payloads shaped like what Frigate and Blue Iris publish, written from their documentation.

Sources (docs/cameras-and-nvrs.md §Frigate and §Blue Iris):
- Frigate ``docs/docs/integrations/mqtt.md`` at v0.13.2, v0.14.1, v0.15.2 and v0.16.4: the
  ``frigate/events`` example and the field list per version (``sub_label`` a ``[name, score]``
  pair from 0.13; ``attributes``/``current_attributes`` from 0.13; ``snapshot`` object and
  ``active`` from 0.15; speed and licence-plate fields from 0.16), and ``frigate/reviews`` (0.14+).
- Blue Iris: the "On alert / On reset" MQTT action convention of ha-blueiris
  (``docs/blueiris-server.md``): topic ``BlueIris/&CAM/Status``, payload
  ``{ "type": "&TYPE", "trigger": "ON" }``.
Each builder notes the version whose documented shape it follows.
"""

from __future__ import annotations

import json
from typing import Any

EVENT_ID = "1718987129.308396-fqk5ka"


def _object_v013(camera: str, label: str, zones: list[str], *, score: float, stationary: bool,
                 end: bool) -> dict[str, Any]:
    """One side (before/after) of a frigate/events message, Frigate 0.13 (docs v0.13.2)."""
    return {
        "id": EVENT_ID, "camera": camera, "frame_time": 1718987134.0, "snapshot_time": 1718987133.5,
        "label": label, "sub_label": None, "top_score": score, "false_positive": False,
        "start_time": 1718987129.3, "end_time": 1718987140.1 if end else None, "score": score,
        "box": [424, 500, 536, 712], "area": 23744, "ratio": 0.5283, "region": [264, 450, 667, 853],
        "current_zones": zones, "entered_zones": zones, "thumbnail": None, "has_snapshot": True,
        "has_clip": True, "stationary": stationary, "motionless_count": 12 if stationary else 0,
        "position_changes": 2, "attributes": {}, "current_attributes": [],
    }


def _object_v014(*args: Any, **kw: Any) -> dict[str, Any]:
    """Frigate 0.14 (docs v0.14.1): as 0.13; sub_label is [name, score] when set."""
    side = _object_v013(*args, **kw)
    side["sub_label"] = ["bob", 0.83] if side["label"] == "person" else None
    return side


def _object_v015(*args: Any, **kw: Any) -> dict[str, Any]:
    """Frigate 0.15 (docs v0.15.2): snapshot_time replaced by a snapshot object; active added."""
    side = _object_v014(*args, **kw)
    del side["snapshot_time"]
    side["snapshot"] = {"frame_time": 1718987133.5, "box": [415, 489, 528, 700], "area": 12728,
                        "region": [260, 446, 660, 846], "score": side["score"], "attributes": []}
    side["active"] = not side["stationary"]
    return side


def _object_v016(*args: Any, **kw: Any) -> dict[str, Any]:
    """Frigate 0.16 (docs v0.16.4): speed and licence-plate fields added."""
    side = _object_v015(*args, **kw)
    side.update({"current_estimated_speed": 0.0, "average_estimated_speed": 0.0, "velocity_angle": 0,
                 "recognized_license_plate": None, "recognized_license_plate_score": None})
    return side


EVENT_SHAPES = {"0.13": _object_v013, "0.14": _object_v014, "0.15": _object_v015, "0.16": _object_v016}


def frigate_event(version: str, kind: str, camera: str = "front_door", label: str = "person",
                  zones: list[str] | None = None, *, score: float = 0.84, stationary: bool = False) -> bytes:
    """A complete ``frigate/events`` message of ``kind`` new/update/end, in ``version``'s shape."""
    make = EVENT_SHAPES[version]
    zones = zones if zones is not None else []
    before = make(camera, label, [], score=score, stationary=False, end=False)
    after = make(camera, label, zones, score=score, stationary=stationary, end=kind == "end")
    return json.dumps({"type": kind, "before": before, "after": after}).encode()


def frigate_review(version: str, kind: str, camera: str = "front_door", severity: str = "alert",
                   objects: list[str] | None = None, zones: list[str] | None = None) -> bytes:
    """A ``frigate/reviews`` message (new in Frigate 0.14; docs v0.14.1 and v0.16.4, same fields)."""
    def side(end: bool) -> dict[str, Any]:
        return {"id": "1718987129.308396-q8wb5e", "camera": camera, "start_time": 1718987129.3,
                "end_time": 1718987140.1 if end else None, "severity": severity,
                "thumb_path": f"/media/frigate/clips/review/thumb-{camera}-1718987129.308396-q8wb5e.webp",
                "data": {"detections": [EVENT_ID], "objects": objects if objects is not None else ["person"],
                         "sub_labels": [], "zones": zones or [], "audio": []}}
    if version not in ("0.14", "0.15", "0.16"):
        raise ValueError("frigate/reviews exists from 0.14 on")
    return json.dumps({"type": kind, "before": side(False), "after": side(kind == "end")}).encode()


def blue_iris(trigger: str, kind: str = "MOTION") -> bytes:
    """Blue Iris 5 "Web request or MQTT" alert action with ha-blueiris' payload (&TYPE substituted)."""
    return json.dumps({"type": kind, "trigger": trigger}).encode()
