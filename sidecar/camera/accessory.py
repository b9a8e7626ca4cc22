"""The HAP accessory that represents one camera.

Today it carries what the HAP foundation can serve on its own: accessory information,
protocol information and the motion sensor that HKSV recordings hang off. The HKSV services
(camera recording management, operating mode, data stream transport, RTP stream management)
are added here by the camera issues.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import __version__
from ..hap import Accessory, Characteristic, catalog

__all__ = ["CATEGORY_IP_CAMERA", "CameraAccessory", "build_camera_accessory"]

CATEGORY_IP_CAMERA = 17


@dataclass
class CameraAccessory:
    accessory: Accessory
    motion: Characteristic
    motion_active: Characteristic


def build_camera_accessory(name: str, serial: str) -> CameraAccessory:
    motion = catalog.motion_sensor()
    accessory = Accessory(category=CATEGORY_IP_CAMERA).add(
        catalog.accessory_information(name, manufacturer="hksv-sidecar", model="hksv-sidecar camera",
                                      serial=serial, firmware=__version__),
        catalog.protocol_information(),
        motion,
    )
    return CameraAccessory(accessory, motion.get("22"), motion.get("75"))
