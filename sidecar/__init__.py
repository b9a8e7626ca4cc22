"""hksv-sidecar: makes any IP camera a HomeKit Secure Video camera.

For a parent written in Python, the in-process API is :class:`App` plus the config model
(:class:`Config`, :class:`CameraConfig`, :func:`build_config`); see docs/child-process.md.
"""

__version__ = "0.1.0"

# After __version__: the camera package reads it while these imports run.
from .app import App
from .camera import Camera, CameraEvent
from .config import CameraConfig, Config, ConfigError, build_config

__all__ = ["App", "Camera", "CameraConfig", "CameraEvent", "Config", "ConfigError", "__version__", "build_config"]
