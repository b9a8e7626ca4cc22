"""The HAP half of a hub's HDS setup, on top of aiohomekit 4.0.1 (for this issue's tests and the
end-to-end tests of the HKSV issue).

A hub writes SetupDataStreamTransport over its verified HAP session with ``"r": true``, reads
the port and accessory salt from the write response, and derives the HDS keys from that session's
pair-verify shared secret. aiohomekit keeps only the Control keys, so :class:`DeriveCapture`
wraps its pair-verify state machine and keeps the HKDF closure over each session's secret; the
secret itself never leaves aiohomekit. Install it *before* the pairing connects::

    capture = DeriveCapture.install(monkeypatch)
    ...pair / connect with aiohomekit...
    client = await open_hds(pairing, setup_iid, capture)
    await client.hello()
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable, Generator
from typing import Any

import pytest
from aiohomekit.controller.ip import IpPairing
from aiohomekit.controller.ip import connection as aio_connection

from sidecar.hds import SessionKeys

from .hds_client import HubDataStreamClient, SetupResponse, build_setup_write, parse_setup_response

__all__ = ["DeriveCapture", "DerivesByAccessory", "HDSSetupRefused", "controller_hds_keys", "open_hds", "setup_write"]

Derive = Callable[[bytes, bytes], bytes]


class DeriveCapture:
    """Wraps aiohomekit's pair-verify and keeps ``derive(salt, info)`` of every session."""

    def __init__(self) -> None:
        self.derives: list[Derive] = []
        self.original: Any = vars(aio_connection)["get_session_keys"]

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> DeriveCapture:
        capture = cls()
        monkeypatch.setattr(aio_connection, "get_session_keys", capture)
        return capture

    def __call__(self, pairing_data: dict[str, Any]) -> Generator[Any, Any, Any]:
        result = yield from self.original(pairing_data)
        self.derives.append(result[1])
        return result

    @property
    def latest(self) -> Derive:
        """The derive function of the most recently verified HAP session."""
        return self.derives[-1]


def controller_hds_keys(derive: Derive, controller_salt: bytes, accessory_salt: bytes) -> SessionKeys:
    """The hub's HDS keys: it encrypts with HDS-Write and decrypts with HDS-Read."""
    salt = controller_salt + accessory_salt
    return SessionKeys(
        encrypt_key=derive(salt, b"HDS-Write-Encryption-Key"),
        decrypt_key=derive(salt, b"HDS-Read-Encryption-Key"),
    )


class HDSSetupRefused(Exception):
    """The accessory answered the setup write with a HAP error status."""


async def setup_write(pairing: IpPairing, setup_iid: int, value: bytes, aid: int = 1) -> dict[str, Any]:
    """PUT the SetupDataStreamTransport value with ``"r": true``; return the reply entry."""
    await pairing._ensure_connected()  # type: ignore[no-untyped-call]
    reply = await pairing.connection.put_json(
        "/characteristics",
        {"characteristics": [{"aid": aid, "iid": setup_iid, "value": base64.b64encode(value).decode(), "r": True}]},
    )
    entry: dict[str, Any] = reply["characteristics"][0]
    return entry


async def open_hds(
    pairing: IpPairing, setup_iid: int, capture: DeriveCapture, *, host: str = "127.0.0.1", aid: int = 1
) -> HubDataStreamClient:
    """Setup write over the pairing's current HAP session, then TCP connect (no hello yet)."""
    controller_salt = os.urandom(32)
    entry = await setup_write(pairing, setup_iid, build_setup_write(controller_salt), aid)
    if entry.get("status", 0) != 0:
        raise HDSSetupRefused(entry)
    response: SetupResponse = parse_setup_response(base64.b64decode(entry["value"]))
    keys = controller_hds_keys(capture.latest, controller_salt, response.accessory_salt)
    reader, writer = await asyncio.open_connection(host, response.port)
    return HubDataStreamClient(reader, writer, keys)


class DerivesByAccessory:
    """Like :class:`DeriveCapture`, for several hubs in one process, each paired with its own
    accessory: keeps the latest session's ``derive`` per accessory pairing id. ``install``
    returns the function that puts aiohomekit back; :meth:`view` is what :func:`open_hds` and
    ``tests.hub.recording.record`` take as their capture, for one pairing."""

    def __init__(self) -> None:
        self.by_accessory: dict[str, Derive] = {}
        self.original: Any = vars(aio_connection)["get_session_keys"]

    def install(self) -> Callable[[], None]:
        aio_connection.get_session_keys = self  # type: ignore[assignment]

        def restore() -> None:
            aio_connection.get_session_keys = self.original

        return restore

    def __call__(self, pairing_data: dict[str, Any]) -> Generator[Any, Any, Any]:
        result = yield from self.original(pairing_data)
        self.by_accessory[pairing_data["AccessoryPairingID"]] = result[1]
        return result

    def view(self, pairing: IpPairing) -> Any:
        derives = self

        class _View:
            @property
            def latest(self) -> Derive:
                return derives.by_accessory[pairing.pairing_data["AccessoryPairingID"]]

        return _View()
