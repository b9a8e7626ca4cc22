"""hksv-sidecar: makes any IP camera a HomeKit Secure Video camera."""

__version__ = "0.1.0"
