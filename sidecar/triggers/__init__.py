"""Trigger inputs (HTTP today; MQTT and detection later). They talk only to the camera interface."""

from .http import MotionTarget, TriggerRoutes, parse_trigger_query

__all__ = ["MotionTarget", "TriggerRoutes", "parse_trigger_query"]
