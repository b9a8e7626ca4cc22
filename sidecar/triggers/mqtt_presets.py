"""What an NVR's MQTT messages mean for our cameras: the presets, as data, and a sans-IO router.

A :class:`Binding` ties one of our cameras to one preset (Frigate motion, events or reviews, a
Blue Iris alert action, or homebridge-camera-ffmpeg's generic topics). The :class:`MqttRouter`
is fed ``(topic, payload)`` and answers with :class:`Command` values (raise motion, clear it,
ring the doorbell) and :class:`Malformed` notes. It opens no socket and keeps no clock, so
every payload shape from every Frigate version is tested in memory; ``mqtt.py`` adapts it to a
broker. Payload shapes: docs/cameras-and-nvrs.md §Frigate, §Blue Iris, §Other motion sources (generic).

Every payload is validated before it is believed: a field of the wrong type, JSON that is not
an object, bytes that are not UTF-8 or a payload over 64 KiB is :class:`Malformed`, never an
exception. Only the first malformed payload per topic is marked ``first`` (the adapter logs it
as a warning, later ones quietly), so a misconfigured publisher cannot flood the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PRESETS",
    "Binding",
    "Command",
    "Malformed",
    "MqttRouter",
    "Preset",
    "frigate_snapshot_url",
    "topic_matches",
]

MAX_PAYLOAD = 64 * 1024
Action = Literal["motion", "clear", "doorbell"]


@dataclass(frozen=True, slots=True)
class Command:
    """Do ``action`` on our camera ``camera`` (its name)."""

    camera: str
    action: Action


@dataclass(frozen=True, slots=True)
class Malformed:
    """A payload that could not be understood; ``first`` is set once per topic."""

    topic: str
    problem: str
    first: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One of our cameras listening to one preset.

    ``remote`` is the camera's name on the NVR side (Frigate's camera name, Blue Iris' short
    name). ``prefix`` is the NVR's topic prefix (Frigate ``topic_prefix``, ``BlueIris``).
    The generic preset uses the three topics and messages instead; an unset message is our
    camera's name, as in homebridge-camera-ffmpeg.
    """

    camera: str
    preset: str
    remote: str = ""
    prefix: str = ""
    labels: tuple[str, ...] = ("person",)
    zones: tuple[str, ...] = ()
    min_score: float = 0.0
    severities: tuple[str, ...] = ("alert",)
    motion_topic: str | None = None
    motion_message: str | None = None
    reset_topic: str | None = None
    reset_message: str | None = None
    doorbell_topic: str | None = None
    doorbell_message: str | None = None
    json_field: str | None = None  # generic: compare this (dotted) JSON field, not the whole payload


class _Invalid(Exception):
    """Raised inside a preset handler; becomes :class:`Malformed`."""


_State = dict[str, set[str]]  # per binding: ids of the NVR events/reviews that hold motion up
Handler = Callable[[Binding, set[str], str, bytes], list[Action]]


@dataclass(frozen=True, slots=True)
class Preset:
    """A preset: the topics it subscribes to (templates over the binding's fields), the default
    prefix, and the handler that turns one payload into actions."""

    topics: tuple[str, ...]
    default_prefix: str
    handle: Handler
    doc: str = ""


# -- payload helpers -----------------------------------------------------------------------------
def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Invalid("payload is not UTF-8") from None


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(_text(payload))
    except ValueError:
        raise _Invalid("payload is not JSON") from None
    if not isinstance(data, dict):
        raise _Invalid("payload is not a JSON object")
    return data


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str, *, required: bool = True,
           default: Any = None) -> Any:
    if name not in obj or obj[name] is None:
        if required:
            raise _Invalid(f"{where}.{name} is missing")
        return default
    value = obj[name]
    # bool is an int in Python; a number field must not accept true/false
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise _Invalid(f"{where}.{name} has the wrong type ({type(value).__name__})")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _strings(obj: dict[str, Any], name: str, where: str) -> list[str]:
    value = _field(obj, name, list, where, required=False, default=[])
    if not all(isinstance(v, str) for v in value):
        raise _Invalid(f"{where}.{name} must be a list of strings")
    return list(value)


# -- the presets ---------------------------------------------------------------------------------
def _on_off(text: str) -> Action | None:
    upper = text.upper()
    if upper == "ON":
        return "motion"
    if upper == "OFF":
        return "clear"
    return None


def _frigate_motion(b: Binding, active: set[str], topic: str, payload: bytes) -> list[Action]:
    action = _on_off(_text(payload))
    if action is None:
        raise _Invalid("expected ON or OFF")
    return [action]


def _frigate_after(b: Binding, payload: bytes) -> tuple[str, dict[str, Any], str] | None:
    """The shared envelope of Frigate's events and reviews: (type, after, id), or None when the
    message is about another camera."""
    data = _json_object(payload)
    kind = _field(data, "type", str, "payload")
    if kind not in ("new", "update", "end"):
        raise _Invalid(f"payload.type {kind!r} is not new, update or end")
    after = _field(data, "after", dict, "payload")
    camera = _field(after, "camera", str, "after")
    if camera != b.remote:
        return None
    return kind, after, _field(after, "id", str, "after")


def _frigate_events(b: Binding, active: set[str], topic: str, payload: bytes) -> list[Action]:
    envelope = _frigate_after(b, payload)
    if envelope is None:
        return []
    kind, after, event_id = envelope
    label = _field(after, "label", str, "after")
    score = _field(after, "top_score", (int, float), "after", required=False)
    if score is None:
        score = _field(after, "score", (int, float), "after", required=False, default=0.0)
    zones = _strings(after, "current_zones", "after")
    stationary = _field(after, "stationary", bool, "after", required=False, default=False)
    _field(after, "false_positive", bool, "after", required=False)
    if kind == "end":
        return _release(active, event_id)
    wanted = (label in b.labels and score >= b.min_score and not stationary
              and (not b.zones or bool(set(zones) & set(b.zones))))
    if wanted:
        active.add(event_id)
        return ["motion"]
    return _release(active, event_id)  # e.g. it became stationary or left the zone


def _frigate_reviews(b: Binding, active: set[str], topic: str, payload: bytes) -> list[Action]:
    envelope = _frigate_after(b, payload)
    if envelope is None:
        return []
    kind, after, review_id = envelope
    severity = _field(after, "severity", str, "after")
    detail = _field(after, "data", dict, "after")
    objects = _strings(detail, "objects", "after.data")
    zones = _strings(detail, "zones", "after.data")
    if kind == "end":
        return _release(active, review_id)
    # objects may carry Frigate's "-verified" suffix (a face or plate was recognised)
    labels = {o.removesuffix("-verified") for o in objects}
    wanted = (severity in b.severities and (not b.labels or bool(labels & set(b.labels)))
              and (not b.zones or bool(set(zones) & set(b.zones))))
    if wanted:
        active.add(review_id)
        return ["motion"]
    return _release(active, review_id)


def _release(active: set[str], key: str) -> list[Action]:
    if key not in active:
        return []
    active.discard(key)
    return [] if active else ["clear"]


_BI_IGNORED_TYPES = frozenset({"WATCHDOG", "CONNECTIVITY"})  # loss of signal, not motion


def _blue_iris(b: Binding, active: set[str], topic: str, payload: bytes) -> list[Action]:
    text = _text(payload)
    plain = _on_off(text)
    if plain is not None:  # an action set that sends just ON / OFF
        return [plain]
    data = _json_object(payload)
    trigger = _field(data, "trigger", str, "payload")
    kind = _field(data, "type", str, "payload", required=False, default="")
    if kind.upper() in _BI_IGNORED_TYPES:
        return []
    action = _on_off(trigger)
    if action is None:
        raise _Invalid("payload.trigger must be ON or OFF")
    return [action]


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _generic(b: Binding, active: set[str], topic: str, payload: bytes) -> list[Action]:
    if b.json_field:
        found = _lookup(_json_object(payload), b.json_field)
        got = None if found is None or isinstance(found, dict | list) else str(found)
        if isinstance(found, bool):
            got = "true" if found else "false"
    else:
        got = _text(payload)
    actions: list[Action] = []
    for want_topic, message, action in ((b.motion_topic, b.motion_message, "motion"),
                                        (b.reset_topic, b.reset_message, "clear"),
                                        (b.doorbell_topic, b.doorbell_message, "doorbell")):
        if want_topic and topic_matches(want_topic, topic) and got == (message if message is not None else b.camera):
            actions.append(action)  # type: ignore[arg-type]
    return actions


PRESETS: dict[str, Preset] = {
    "frigate_motion": Preset(("{prefix}/{remote}/motion",), "frigate", _frigate_motion,
                             "Frigate's raw motion: ON as soon as pixels move, OFF after mqtt_off_delay"),
    "frigate_events": Preset(("{prefix}/events",), "frigate", _frigate_events,
                             "Frigate tracked objects: label, zones, score; stationary objects ignored"),
    "frigate_reviews": Preset(("{prefix}/reviews",), "frigate", _frigate_reviews,
                              "Frigate >= 0.14 review items: alert (and optionally detection)"),
    "blue_iris": Preset(("{prefix}/{remote}/Status",), "BlueIris", _blue_iris,
                        'Blue Iris "On alert / On reset" MQTT action: {"type":"&TYPE","trigger":"ON|OFF"}'),
    "generic": Preset(("{motion_topic}", "{reset_topic}", "{doorbell_topic}"), "", _generic,
                      "homebridge-camera-ffmpeg: a topic per action, the payload is the camera name"),
}


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest)."""
    p_parts, t_parts = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(p_parts) == len(t_parts)


def frigate_snapshot_url(base_url: str, camera: str) -> str:
    """Frigate's newest frame, sized by the hub: ``h`` is read by Frigate <= 0.14 (Flask) and
    ``height`` by 0.15+ (FastAPI; its query model ignores unknown parameters), so both are sent.
    ``{height}`` is filled by the camera at request time."""
    return f"{base_url.rstrip('/')}/api/{camera}/latest.jpg?h={{height}}&height={{height}}"


@dataclass
class MqttRouter:
    """Routes each incoming message to the bindings whose topics match."""

    bindings: Sequence[Binding]
    _filters: list[tuple[str, int]] = field(init=False)
    _active: list[set[str]] = field(init=False)
    _warned: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._filters = []
        self._active = [set() for _ in self.bindings]
        for index, b in enumerate(self.bindings):
            preset = PRESETS[b.preset]
            values = {"prefix": b.prefix or preset.default_prefix, "remote": b.remote,
                      "motion_topic": b.motion_topic or "", "reset_topic": b.reset_topic or "",
                      "doorbell_topic": b.doorbell_topic or ""}
            for template in preset.topics:
                topic = template.format_map(values)
                if topic:
                    self._filters.append((topic, index))

    def subscriptions(self) -> list[str]:
        """The topic filters to subscribe to (each once)."""
        return sorted({topic for topic, _ in self._filters})

    def active(self, camera: str) -> bool:
        """Whether an NVR event or review still holds this camera's motion up."""
        return any(self._active[i] for i, b in enumerate(self.bindings) if b.camera == camera)

    def feed(self, topic: str, payload: bytes) -> list[Command | Malformed]:
        out: list[Command | Malformed] = []
        seen: set[int] = set()
        malformed: Malformed | None = None
        for pattern, index in self._filters:
            if index in seen or not topic_matches(pattern, topic):
                continue
            seen.add(index)
            binding = self.bindings[index]
            try:
                if len(payload) > MAX_PAYLOAD:
                    raise _Invalid(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
                actions = PRESETS[binding.preset].handle(binding, self._active[index], topic, payload)
            except _Invalid as exc:
                if malformed is None:  # one report per message, even on a topic many cameras share
                    malformed = Malformed(topic, str(exc), topic not in self._warned)
                    self._warned.add(topic)
                continue
            out.extend(Command(binding.camera, a) for a in actions)
        if malformed is not None:
            out.append(malformed)
        return out
