"""Trigger inputs: HTTP, MQTT and the built-in detector. They talk only to the camera interface.

The names below load on first use, so importing one trigger module (the detector's parameters,
the MQTT presets) does not pull in the HTTP triggers' aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .http import MotionTarget, TriggerRoutes, parse_trigger_query

__all__ = ["MotionTarget", "TriggerRoutes", "parse_trigger_query"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".http", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
