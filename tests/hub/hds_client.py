"""A home hub's side of HomeKit Data Stream, for tests: setup TLVs, keys, hello, open, collect.

Written from the controller's point of view so that the accessory code is exercised by a peer
that derives its own keys (HDS-Write to encrypt, HDS-Read to decrypt) and parses what the
accessory sends. No background task: every read happens inside the awaited call that wants it,
so a test that stops calling stops reading, exactly like a stalled hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sidecar import tlv8
from sidecar.hds import frames, keys, messages
from sidecar.hds.errors import FrameError
from sidecar.hds.messages import Kind, Message

__all__ = [
    "DataEvent",
    "Fragment",
    "HubDataStreamClient",
    "SetupResponse",
    "build_setup_write",
    "parse_setup_response",
]


def build_setup_write(controller_salt: bytes, command: int = 0, transport: int = 0) -> bytes:
    """The SetupDataStreamTransport value a hub writes (command, transport type, salt)."""
    return tlv8.encode([(0x01, command), (0x02, transport), (0x03, controller_salt)])


@dataclass(frozen=True)
class SetupResponse:
    status: int
    port: int
    accessory_salt: bytes


def parse_setup_response(value: bytes) -> SetupResponse:
    """Read the accessory's write response the way a hub does."""
    items = tlv8.decode_dict(value)
    params = tlv8.decode_dict(items[0x02])
    return SetupResponse(items[0x01][0], int.from_bytes(params[0x01], "little"), items.get(0x03, b""))


@dataclass
class DataEvent:
    stream_id: int
    data: bytes
    metadata: dict[str, Any]
    end_of_stream: bool | None


@dataclass
class Fragment:
    """One init segment or fragment, reassembled from its chunks."""

    sequence: int
    data_type: str
    data: bytearray = field(default_factory=bytearray)
    chunks: list[DataEvent] = field(default_factory=list)
    total_size: int | None = None
    end_of_stream: bool | None = None

    @property
    def complete(self) -> bool:
        return bool(self.chunks) and bool(self.chunks[-1].metadata.get("isLastDataChunk"))


class HubDataStreamClient:
    """One hub-side HDS connection over TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: keys.SessionKeys):
        self.reader = reader
        self.writer = writer
        self._encryptor = frames.FrameEncryptor(session.encrypt_key)
        self._decryptor = frames.FrameDecryptor(session.decrypt_key)
        self._frames = frames.FrameReader()
        self._pending: deque[Message] = deque()
        self._ids = itertools.count(1)
        self.eof = False

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        shared_secret: bytes,
        controller_salt: bytes,
        accessory_salt: bytes,
    ) -> HubDataStreamClient:
        """Connect and derive the controller-side keys (no hello yet)."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, keys.controller_keys(shared_secret, controller_salt, accessory_salt))

    # -- sending ---------------------------------------------------------------------------

    def encrypt(self, payload: bytes | bytearray) -> bytes:
        return bytes(self._encryptor.seal(payload))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_payload(self, payload: bytes | bytearray) -> None:
        await self.send_raw(self.encrypt(payload))

    async def send_event(self, protocol: str, topic: str, body: object) -> None:
        await self.send_payload(messages.encode_event(protocol, topic, body))

    async def send_request(self, protocol: str, topic: str, body: object, msg_id: int | None = None) -> int:
        msg_id = next(self._ids) if msg_id is None else msg_id
        await self.send_payload(messages.encode_request(protocol, topic, msg_id, body))
        return msg_id

    async def request(self, protocol: str, topic: str, body: object, within: float = 5.0) -> Message:
        """Send a request and return its response (other messages are kept for later)."""
        msg_id = await self.send_request(protocol, topic, body)
        async with asyncio.timeout(within):
            while True:
                message = await self._read_message()
                if message.header.kind is Kind.RESPONSE and message.header.id == msg_id:
                    return message
                self._pending.append(message)

    async def hello(self) -> Message:
        return await self.request("control", "hello", {})

    async def open(
        self, stream_id: int, target: str = "controller", stream_type: str = "ipcamera.recording"
    ) -> Message:
        return await self.request(
            "dataSend", "open", {"target": target, "type": stream_type, "streamId": stream_id, "reason": "motion"}
        )

    async def ack(self, stream_id: int) -> None:
        await self.send_event("dataSend", "ack", {"streamId": stream_id, "endOfStream": True})

    async def close_stream(self, stream_id: int, reason: int = 0) -> None:
        await self.send_event("dataSend", "close", {"streamId": stream_id, "reason": reason})

    # -- receiving -------------------------------------------------------------------------

    async def _read_message(self) -> Message:
        while True:
            frame = self._frames.next_frame()
            if frame is not None:
                return messages.parse_message(self._decryptor.open(frame))
            data = await self.reader.read(1 << 18)
            if not data:
                self.eof = True
                raise EOFError("accessory closed the connection")
            self._frames.feed(data)

    async def next_message(self, within: float = 5.0) -> Message:
        """The next message from the accessory, in arrival order."""
        if self._pending:
            return self._pending.popleft()
        async with asyncio.timeout(within):
            return await self._read_message()

    async def collect(
        self, stream_id: int, *, fragments: int | None = None, within: float = 10.0
    ) -> tuple[list[Fragment], Message | None]:
        """Reassemble data events into fragments until ``fragments`` are complete, a data
        event carries ``endOfStream: true``, or the accessory closes the stream (returned)."""
        done: list[Fragment] = []
        current: Fragment | None = None
        async with asyncio.timeout(within):
            while True:
                message = await self.next_message(within)
                header = message.header
                body: Any = message.body
                assert isinstance(body, dict)
                if header.kind is Kind.EVENT and (header.protocol, header.topic) == ("dataSend", "close"):
                    return done, message
                assert (header.kind, header.protocol, header.topic) == (Kind.EVENT, "dataSend", "data"), header
                assert body["streamId"] == stream_id
                (packet,) = body["packets"]
                eos: Any = body.get("endOfStream")
                event = DataEvent(stream_id, packet["data"], packet["metadata"], eos)
                meta = event.metadata
                if current is None:
                    current = Fragment(meta["dataSequenceNumber"], meta["dataType"])
                current.chunks.append(event)
                current.data += event.data
                if meta["dataChunkSequenceNumber"] == 1:
                    current.total_size = meta.get("dataTotalSize")
                if meta["isLastDataChunk"]:
                    current.end_of_stream = event.end_of_stream
                    done.append(current)
                    current = None
                    if done[-1].end_of_stream or (fragments is not None and len(done) >= fragments):
                        return done, None

    async def wait_eof(self, within: float = 5.0) -> bool:
        """True once the accessory has closed the connection (messages meanwhile are dropped)."""
        async with asyncio.timeout(within):
            while not self.eof:
                try:
                    await self._read_message()
                except EOFError:
                    return True
                except (ConnectionError, FrameError):
                    return True
        return True

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def new_salt() -> bytes:
    return os.urandom(32)
