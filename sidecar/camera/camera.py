"""One camera: its accessory, its HAP server, and the small interface triggers talk to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from ..config import CameraConfig
from ..hap import AccessoryServer, Advertiser
from .accessory import build_camera_accessory

__all__ = ["Camera"]

log = logging.getLogger(__name__)


class Camera:
    def __init__(self, config: CameraConfig, state_dir: Path, *, host: str, port: int,
                 advertiser: Advertiser | None) -> None:
        self.config = config
        self.name = config.name
        self.parts = build_camera_accessory(config.name, serial=config.slug)
        self.server = AccessoryServer(
            self.parts.accessory, state_dir / f"{config.slug}.json", name=config.name, host=host, port=port,
            setup_code=config.setup_code, advertiser=advertiser,
        )
        self._demo_task: asyncio.Task[None] | None = None

    def set_motion(self, active: bool) -> None:
        """Raise or clear motion; subscribed hubs get an event (HKSV opens a recording on it)."""
        if self.parts.motion.set_value(active):
            log.info("%s: motion %s", self.name, "detected" if active else "cleared")

    async def start(self) -> None:
        await self.server.start()
        if self.config.motion_every:
            self._demo_task = asyncio.get_running_loop().create_task(self._demo_motion(self.config.motion_every))

    async def stop(self) -> None:
        if self._demo_task is not None:
            self._demo_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._demo_task
            self._demo_task = None
        await self.server.stop()

    async def _demo_motion(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.set_motion(not self.parts.motion.value)
