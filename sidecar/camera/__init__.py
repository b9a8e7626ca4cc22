"""HKSV semantics for one camera; the only place where hap/, hds/ and media/ meet."""

from .accessory import CATEGORY_IP_CAMERA, CameraAccessory, build_camera_accessory
from .camera import Camera

__all__ = ["CATEGORY_IP_CAMERA", "Camera", "CameraAccessory", "build_camera_accessory"]
