"""Drive :class:`ServerCore` in memory: a fake clock and controller peers without sockets.

Pairing runs aiohomekit's controller generators (an independent implementation); the
encrypted session on the controller side mirrors the framing rules byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sidecar.hap.connection import Connection
from sidecar.hap.core import CoreConfig, ServerCore
from sidecar.hap.secure_channel import SecureChannel
from sidecar.hap.state import AccessoryState
from tests.support.accessories import TestAccessory, build_test_accessory

from .socketless import pair, verify

PIN = "031-45-154"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Message:
    kind: str  # "HTTP" or "EVENT"
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_messages(data: bytes) -> list[Message]:
    out: list[Message] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete message: {data[:80]!r}"
        lines = head.decode("latin-1").split("\r\n")
        proto, status, *_ = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        out.append(Message("EVENT" if proto.startswith("EVENT") else "HTTP", int(status), headers, rest[:length]))
        data = rest[length:]
    return out


@dataclass
class Peer:
    """One controller connection to the core."""

    core: ServerCore
    clock: FakeClock
    conn: Connection
    channel: SecureChannel | None = None
    events: list[Any] = field(default_factory=list)
    raw_out: bytes = b""

    def feed(self, data: bytes) -> list[Message]:
        """Send raw bytes; return the messages the server produced."""
        self.conn.receive_data(data, self.clock())
        self.run_offloaded()
        return self.collect()

    def run_offloaded(self) -> None:
        """Do what the adapter does for a CPU-heavy step (here inline, on the fake clock)."""
        while (work := self.conn.pending_offload) is not None:
            self.conn.complete_offload(work.compute(), None, self.clock())

    def collect(self) -> list[Message]:
        out = self.conn.data_to_send()
        self.conn.sent()
        self.raw_out = out
        if self.channel is not None and out:
            out = self.channel.decrypt(out)
        messages = parse_messages(out)
        responses = []
        for msg in messages:
            if msg.kind == "EVENT":
                self.events.append(msg.json())
            else:
                responses.append(msg)
        return responses

    @property
    def closed(self) -> bool:
        return self.conn.close_after_send or self.conn.closed

    def encode_request(self, method: str, path: str, body: bytes = b"",
                       content_type: str = "application/hap+json") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode() + body

    def request(self, method: str, path: str, body: bytes = b"",
                content_type: str = "application/hap+json") -> Message:
        data = self.encode_request(method, path, body, content_type)
        if self.channel is not None:
            data = self.channel.encrypt(data)
        responses = self.feed(data)
        assert len(responses) == 1, responses
        return responses[0]

    def tlv(self, path: str, body: bytes) -> bytes:
        msg = self.request("POST", path, body, "application/pairing+tlv8")
        assert msg.status == 200, msg
        return msg.body

    def get_json(self, path: str) -> Message:
        return self.request("GET", path)

    def put_json(self, path: str, payload: Any) -> Message:
        return self.request("PUT", path, json.dumps(payload).encode())

    def pair(self, pin: str = PIN, with_auth: bool = False) -> dict[str, Any]:
        return pair(lambda body: self.tlv("/pair-setup", body), pin, with_auth=with_auth)

    def verify(self, pairing_data: dict[str, Any]) -> None:
        derive = verify(lambda body: self.tlv("/pair-verify", body), pairing_data)
        self.channel = SecureChannel(
            derive(b"Control-Salt", b"Control-Write-Encryption-Key"),
            derive(b"Control-Salt", b"Control-Read-Encryption-Key"),
        )

    def close(self) -> None:
        self.conn.connection_lost()


@dataclass
class Harness:
    core: ServerCore
    clock: FakeClock
    state: AccessoryState
    test: TestAccessory
    dirty: int = 0
    adverts: int = 0
    outputs: list[int] = field(default_factory=list)

    def peer(self, host: str | None = None) -> Peer:
        conn = self.core.open_connection(self.clock(), host)
        assert conn is not None
        return Peer(self.core, self.clock, conn)

    def paired_peer(self, with_auth: bool = False, host: str | None = None) -> tuple[Peer, dict[str, Any]]:
        setup = self.peer(host)
        data = setup.pair(with_auth=with_auth)
        setup.close()
        peer = self.peer(host)
        peer.verify(data)
        return peer, data

    def session_peer(self, data: dict[str, Any]) -> Peer:
        peer = self.peer()
        peer.verify(data)
        return peer


def make_harness(config: CoreConfig | None = None, state: AccessoryState | None = None) -> Harness:
    clock = FakeClock()
    test = build_test_accessory()
    state = state or AccessoryState.create(setup_code=PIN)
    core = ServerCore(test.accessory, state, clock=clock, config=config or CoreConfig())
    harness = Harness(core, clock, state, test)

    def dirty() -> None:
        harness.dirty += 1

    def advertise() -> None:
        harness.adverts += 1

    core.callbacks.on_state_dirty = dirty
    core.callbacks.on_advertise = advertise
    core.callbacks.on_output = lambda conn: harness.outputs.append(conn.id)
    return harness

