"""Wiring: build cameras from the configuration, start them, stop them cleanly.

A fault in one camera (a port in use, a damaged state file) is reported and that camera is
skipped; the others still start. SIGTERM/SIGINT stop everything within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import TextIO

import segno
from zeroconf.asyncio import AsyncZeroconf

from .camera import Camera
from .config import Config
from .hap import StateError, local_addresses, open_zeroconf
from .hap.advertiser import Advertiser
from .triggers import TriggerServer

__all__ = ["App", "print_pairing_info"]

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


def print_pairing_info(camera: Camera, out: TextIO) -> None:
    server = camera.server
    if server.paired:
        out.write(f"\n{camera.name}: paired (HAP port {server.port}).\n")
        return
    out.write(f"\n{camera.name}: scan this code in the Home app, or enter setup code {server.setup_code}\n")
    qr = segno.make(server.setup_uri, micro=False)
    qr.terminal(out=out, compact=True)
    out.write(f"  setup code: {server.setup_code}   HAP port: {server.port}\n")
    out.flush()


class App:
    def __init__(self, config: Config, out: TextIO = sys.stderr) -> None:
        self.config = config
        self.out = out
        self.cameras: list[Camera] = []
        self._zeroconf: AsyncZeroconf | None = None
        self.triggers: TriggerServer | None = None
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        addresses: list[str] = []
        if cfg.mdns:
            self._zeroconf = open_zeroconf(cfg.mdns_interfaces)
            addresses = local_addresses(cfg.mdns_interfaces)
        for index, cam_cfg in enumerate(cfg.cameras):
            advertiser = Advertiser(self._zeroconf, addresses) if self._zeroconf is not None else None
            try:
                camera = Camera(cam_cfg, cfg.state_dir, host=cfg.bind, port=cfg.port_for(index, cam_cfg),
                                advertiser=advertiser)
                await camera.start()
            except (StateError, OSError) as exc:
                log.error("%s: not started: %s", cam_cfg.name, exc)
                continue
            self.cameras.append(camera)
            print_pairing_info(camera, self.out)
        if not self.cameras:
            raise RuntimeError("no camera could be started")
        if cfg.trigger_http_port is not None:
            self.triggers = TriggerServer(lambda: self.cameras, host=cfg.bind, port=cfg.trigger_http_port)
            await self.triggers.start()
            self.out.write(f"motion triggers: http://{cfg.bind}:{self.triggers.port}/motion?<camera name>\n")
            self.out.flush()

    async def stop(self) -> None:
        async def stop_all() -> None:
            if self.triggers is not None:
                await self.triggers.stop()
            await asyncio.gather(*(c.stop() for c in self.cameras), return_exceptions=True)
            if self._zeroconf is not None:
                await self._zeroconf.async_close()

        try:
            await asyncio.wait_for(stop_all(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("shutdown took longer than %.0f s", STOP_TIMEOUT_S)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError):  # not the main thread: no signal handling
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            log.info("running %d camera(s); Ctrl-C to stop", len(self.cameras))
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(RuntimeError):  # not the main thread: no signal handling
                    loop.remove_signal_handler(sig)
