"""Trigger inputs (HTTP today; MQTT and detection later). They talk only to the camera interface."""

from .http import MotionTarget, TriggerServer

__all__ = ["MotionTarget", "TriggerServer"]
