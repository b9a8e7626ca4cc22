"""hksv-sidecar: makes any IP camera a HomeKit Secure Video camera.

For a parent written in Python, the in-process API is :class:`App` plus the config model
(:class:`Config`, :class:`CameraConfig`, :func:`build_config`); see docs/child-process.md.

Those names load on first use (PEP 562): importing one layer, ``sidecar.hap`` say, must not
pull in the whole application (the web server, the config model, the detector's numpy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .app import App
    from .camera import Camera, CameraEvent
    from .config import CameraConfig, Config, ConfigError, build_config

__all__ = ["App", "Camera", "CameraConfig", "CameraEvent", "Config", "ConfigError", "__version__", "build_config"]

_LAZY = {
    "App": ".app",
    "Camera": ".camera",
    "CameraEvent": ".camera",
    "CameraConfig": ".config",
    "Config": ".config",
    "ConfigError": ".config",
    "build_config": ".config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
