"""The camera side and the hub side of an HDS session over 127.0.0.1, for tests of the real
listener: a stand-in camera that streams given fragments, a stand-in verified HAP session, and a
hub that connects the way a HAP setup write tells it to."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.hds import HDSServer, RecordingStream, StreamClosedError, keys
from tests.hub.hds_client import HubDataStreamClient, build_setup_write, parse_setup_response

SECRET = os.urandom(32)
HOST = "127.0.0.1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Camera:
    """Stands in for the camera layer: collects streams and runs one producer per stream."""

    init: bytes = b"\x00\x00\x00\x18ftypiso5" + bytes(12)
    fragments: list[bytes] = field(default_factory=list)
    end_of_stream: bool = False
    streams: list[RecordingStream] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    produce_forever: bool = False

    def on_stream(self, stream: RecordingStream) -> None:
        self.streams.append(stream)
        self.opened.set()
        self.tasks.append(asyncio.create_task(self.produce(stream)))

    async def produce(self, stream: RecordingStream) -> None:
        try:
            await stream.send_init(self.init)
            for i, fragment in enumerate(self.fragments):
                last = self.end_of_stream and i == len(self.fragments) - 1
                await stream.send_fragment(fragment, end_of_stream=last)
            while self.produce_forever:
                await stream.send_fragment(self.fragments[0])
        except StreamClosedError as exc:
            self.errors.append(exc)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class Hap:
    """Stands in for one verified HAP session: its secret and its close callbacks."""

    secret: bytes = SECRET
    callbacks: list[Callable[[], None]] = field(default_factory=list)

    def register(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def close(self) -> None:
        for callback in self.callbacks:
            callback()


async def connect(
    server: HDSServer, hap: Hap | None = None, *, secret: bytes | None = None, sock: socket.socket | None = None
) -> HubDataStreamClient:
    """Setup write (as the HAP characteristic would carry it) then TCP connect."""
    hap = hap or Hap()
    controller_salt = os.urandom(32)
    response = parse_setup_response(
        server.setup(build_setup_write(controller_salt), shared_secret=hap.secret, on_hap_close=hap.register)
    )
    assert response.status == 0 and response.port >= 32768
    if sock is None:
        return await HubDataStreamClient.connect(
            HOST, response.port, secret or hap.secret, controller_salt, response.accessory_salt
        )
    await asyncio.get_running_loop().sock_connect(sock, (HOST, response.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    return HubDataStreamClient(
        reader, writer, keys.controller_keys(hap.secret, controller_salt, response.accessory_salt)
    )
