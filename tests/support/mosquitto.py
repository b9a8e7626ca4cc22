"""A real mosquitto on a free loopback port, started (and restartable) by the test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt

from tests.support.ports import free_port


class Mosquitto:
    """``mosquitto -c`` with a loopback listener, anonymous clients and no persistence."""

    def __init__(self, workdir: Path, port: int | None = None, extra: str = "") -> None:
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.anonymous = not extra
        self.conf.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser root\n"
                             "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
                             + ("allow_anonymous true\n" if self.anonymous else extra))
        self.log = workdir / "mosquitto.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec("mosquitto", "-c", str(self.conf),
                                                             stdout=log, stderr=log)
        async with asyncio.timeout(15):
            while True:  # ready when it accepts an MQTT session (or, with TLS or passwords, a connection)
                try:
                    if self.anonymous:
                        async with aiomqtt.Client("127.0.0.1", self.port, timeout=2):
                            return
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    await writer.wait_closed()
                    return
                except (aiomqtt.MqttError, OSError):
                    assert self.proc.returncode is None, self.log.read_text()
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None
