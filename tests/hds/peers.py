"""In-memory peers for the sans-IO tests: a hub and an accessory connection wired back to back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sidecar.hds import frames, keys, messages
from sidecar.hds.connection import HDSConnection
from sidecar.hds.datasend import StreamRegistry
from sidecar.hds.messages import Message
from sidecar.hds.transport import TransportManager
from tests.hub.hds_client import build_setup_write, parse_setup_response

SECRET = bytes(range(32))
CONTROLLER_SALT = b"\xaa" * 32
ACCESSORY_SALT = b"\xbb" * 32


@dataclass
class Gate:
    recording: bool = True
    camera: bool = True
    selected: bool = True

    def recording_active(self) -> bool:
        return self.recording

    def camera_active(self) -> bool:
        return self.camera

    def has_selected_configuration(self) -> bool:
        return self.selected


class Hub:
    """Controller side, sans-IO: builds frames, reads the accessory's frames."""

    def __init__(self, session: keys.SessionKeys) -> None:
        self.encryptor = frames.FrameEncryptor(session.encrypt_key)
        self.decryptor = frames.FrameDecryptor(session.decrypt_key)
        self.reader = frames.FrameReader()
        self.next_id = 1

    def frame(self, payload: bytes | bytearray) -> bytes:
        return bytes(self.encryptor.seal(payload))

    def request(self, protocol: str, topic: str, body: object = None, msg_id: int | None = None) -> bytes:
        if msg_id is None:
            msg_id, self.next_id = self.next_id, self.next_id + 1
        return self.frame(messages.encode_request(protocol, topic, msg_id, {} if body is None else body))

    def hello(self) -> bytes:
        return self.request("control", "hello")

    def open(self, stream_id: int = 1, **overrides: Any) -> bytes:
        body = {"target": "controller", "type": "ipcamera.recording", "streamId": stream_id}
        body.update(overrides)
        return self.request("dataSend", "open", body)

    def event(self, protocol: str, topic: str, body: object) -> bytes:
        return self.frame(messages.encode_event(protocol, topic, body))

    def receive(self, data: list[bytearray]) -> list[Message]:
        out = []
        for chunk in data:
            self.reader.feed(chunk)
        while (frame := self.reader.next_frame()) is not None:
            out.append(messages.parse_message(self.decryptor.open(frame)))
        return out


@dataclass
class Pair:
    manager: TransportManager
    registry: StreamRegistry
    gate: Gate
    hub: Hub
    conn: HDSConnection
    setup_response: bytes
    hap_close_callbacks: list[Any] = field(default_factory=list)

    def exchange(self, data: bytes, now: float = 0.0) -> list[Message]:
        self.conn.receive_data(data, now)
        return self.hub.receive(self.conn.data_to_send())

    def another_connection(self, now: float = 0.0, secret: bytes = SECRET) -> tuple[Hub, HDSConnection, bytes]:
        salt = b"\xcc" * 32
        response = self.manager.setup(
            build_setup_write(salt),
            shared_secret=secret,
            port=40000,
            now=now,
            on_hap_close=self.hap_close_callbacks.append,
        )
        acc_salt = parse_setup_response(response).accessory_salt
        hub = Hub(keys.controller_keys(secret, salt, acc_salt))
        return hub, HDSConnection(self.manager.identify, self.registry, now), response


def make_pair(now: float = 0.0, gate: Gate | None = None, **conn_kwargs: Any) -> Pair:
    manager = TransportManager(random_bytes=lambda n: ACCESSORY_SALT[:n])
    callbacks: list[Any] = []
    response = manager.setup(
        build_setup_write(CONTROLLER_SALT),
        shared_secret=SECRET,
        port=40000,
        now=now,
        on_hap_close=callbacks.append,
    )
    gate = gate or Gate()
    registry = StreamRegistry(gate)
    hub = Hub(keys.controller_keys(SECRET, CONTROLLER_SALT, ACCESSORY_SALT))
    conn = HDSConnection(manager.identify, registry, now, **conn_kwargs)
    return Pair(manager, registry, gate, hub, conn, response, callbacks)


def ready_pair(now: float = 0.0, gate: Gate | None = None, **conn_kwargs: Any) -> Pair:
    pair = make_pair(now, gate, **conn_kwargs)
    (response,) = pair.exchange(pair.hub.hello(), now)
    assert response.header.status == 0
    pair.conn.events()
    return pair
