"""The MQTT part of the configuration: the broker (top-level ``mqtt:``) and a camera's preset
(``cameras[].mqtt:``). Kept beside ``config.py`` so that file stays a short list of settings.

Example (Frigate beside us, both on the host network)::

    mqtt: {host: 127.0.0.1, port: 1883, user: hksv, password: "${MQTT_PASSWORD}"}
    cameras:
      - name: Front Door
        source: rtsp://127.0.0.1:8554/front_door
        mqtt: {preset: frigate_events, camera: front_door, labels: [person], zones: [porch]}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CameraMqttConfig", "MqttConfig", "remote_name"]

Preset = Literal["frigate_motion", "frigate_events", "frigate_reviews", "blue_iris", "generic"]
Severity = Literal["alert", "detection"]


def _alerts_only() -> list[Severity]:
    return ["alert"]


_TOPIC_PART = re.compile(r"[^+#\x00]+")


class _Strict(BaseModel):
    # defer_build: built when first used; these are only ever validated inside ``Config`` (see
    # sidecar/config.py's _Strict).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _plain_topic(value: str | None, what: str) -> str | None:
    """A topic (or part of one) that we publish or fill into a template: no wildcards."""
    if value is not None and (not value or not _TOPIC_PART.fullmatch(value)):
        raise ValueError(f"{what} must be non-empty and contain no MQTT wildcards (+, #)")
    return value


class MqttConfig(_Strict):
    """The broker. ``password`` is usually ``"${MQTT_PASSWORD}"`` (taken from the environment)."""

    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: Path | None = Field(default=None, description="CA bundle for the broker's certificate")
    tls_insecure: bool = Field(default=False, description="accept any certificate (self-signed, no CA file)")
    client_id: str = Field(default="hksv-sidecar", min_length=1, max_length=64)
    keepalive: int = Field(default=60, ge=5, le=3600)
    topic_prefix: str = Field(default="hksv", description="where we publish availability, motion and recordings")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        _plain_topic(value, "topic_prefix")
        return value.strip("/")


class CameraMqttConfig(_Strict):
    """Where this camera's motion comes from on the broker."""

    preset: Preset
    camera: str | None = Field(default=None, description="the NVR's name for it (default: our name, lower_case)")
    topic_prefix: str | None = Field(default=None, description="the NVR's prefix (frigate / BlueIris)")
    labels: list[str] = Field(default_factory=lambda: ["person"], description="frigate_events/reviews objects")
    zones: list[str] = Field(default_factory=list, description="only these Frigate zones (empty: anywhere)")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, description="frigate_events: lowest top_score")
    severities: list[Severity] = Field(default_factory=_alerts_only, description="frigate_reviews")
    frigate_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:5000: snapshots from Frigate")
    motion_topic: str | None = None
    motion_message: str | None = None
    reset_topic: str | None = None
    reset_message: str | None = None
    doorbell_topic: str | None = None
    doorbell_message: str | None = None
    json_field: str | None = Field(default=None, description="generic: match this JSON field (a.b.c)")

    @field_validator("camera", "topic_prefix")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return _plain_topic(value, "camera and topic_prefix")

    @field_validator("frigate_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:5000")
        return value

    @model_validator(mode="after")
    def _generic(self) -> CameraMqttConfig:
        if self.preset == "generic" and not (self.motion_topic or self.reset_topic or self.doorbell_topic):
            raise ValueError("the generic preset needs motion_topic, reset_topic or doorbell_topic")
        if self.preset != "generic" and any((self.motion_topic, self.reset_topic, self.doorbell_topic,
                                             self.json_field)):
            raise ValueError(f"motion_topic/reset_topic/doorbell_topic/json_field belong to the generic preset, "
                             f"not {self.preset}")
        if self.preset == "frigate_events" and not self.labels:
            raise ValueError("frigate_events needs at least one label (e.g. [person])")
        return self


def remote_name(camera_name: str) -> str:
    """Our camera's name as an NVR would spell it: ``Front Door`` -> ``front_door``."""
    return re.sub(r"[^a-z0-9]+", "_", camera_name.lower()).strip("_") or "camera"
