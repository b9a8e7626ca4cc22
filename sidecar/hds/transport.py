"""DataStreamTransportManagement (sans-IO): the HAP-side setup of an HDS connection.

A hub writes SetupDataStreamTransport (0x131) with ``"r": true`` over a verified HAP session;
we answer, in the write response, the TCP port and a fresh accessory salt, and keep a
*prepared session* (both HDS keys, derived from that HAP session's pair-verify shared secret)
for 10 s. The first TCP connection whose first frame decrypts under one of those keys consumes
it (:meth:`TransportManager.identify`). The HAP side is passed in as plain values (the shared
secret and a function that registers a "session closed" callback), so this module never
imports ``sidecar.hap``; the camera layer does the gluing.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from .. import tlv8
from .errors import SetupError
from .frames import Frame, try_open
from .keys import KEY_SALT_LENGTH, SessionKeys, accessory_keys

__all__ = [
    "MAX_PENDING_SESSIONS",
    "MIN_PORT",
    "PREPARED_SESSION_TIMEOUT",
    "SUPPORTED_CONFIGURATION",
    "SUPPORTED_CONFIGURATION_B64",
    "VERSION",
    "HapCloseRegistrar",
    "PreparedSession",
    "SetupRequest",
    "TransportManager",
    "build_setup_read_value",
    "build_setup_response",
    "parse_setup_write",
]

SUPPORTED_CONFIGURATION: Final = bytes.fromhex("0103010100")
"""SupportedDataStreamTransportConfiguration: one transport, type 0 (HDS over TCP)."""
SUPPORTED_CONFIGURATION_B64: Final = "AQMBAQA="
VERSION: Final = "1.0"
PREPARED_SESSION_TIMEOUT: Final = 10.0
MIN_PORT: Final = 32768
"""The lowest TCP port an HDS listener may use (docs/protocol.md §HDS setup)."""
MAX_PENDING_SESSIONS: Final = 16
"""Bounds memory and the trial decryptions a single accepted socket can cost us."""

_CMD_TYPE: Final = 0x01
_TRANSPORT_TYPE: Final = 0x02
_CONTROLLER_SALT: Final = 0x03
_RESP_STATUS: Final = 0x01
_RESP_PARAMS: Final = 0x02
_RESP_SALT: Final = 0x03
_PARAM_PORT: Final = 0x01
_START_SESSION: Final = 0
_HDS_OVER_TCP: Final = 0

HapCloseRegistrar = Callable[[Callable[[], None]], object]
"""Registers a callback run when the HAP session closes. If it returns a callable, that is
taken as "unregister", and we call it once the callback is no longer needed."""


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """A validated SetupDataStreamTransport write."""

    controller_salt: bytes


def _as_tlv_bytes(value: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(value, str):  # HAP carries tlv8 characteristic values as base64 in JSON
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SetupError("value is not base64") from None
    return bytes(value)


def parse_setup_write(value: bytes | bytearray | memoryview | str) -> SetupRequest:
    """Validate the write; any :class:`SetupError` must become HAP status -70410.

    HN crashes on missing items (and answers -70402); we check each one explicitly.
    """
    try:
        items = tlv8.decode_dict(_as_tlv_bytes(value))
    except tlv8.TLVError as exc:
        raise SetupError(f"malformed TLV: {exc}") from None
    command = items.get(_CMD_TYPE)
    transport = items.get(_TRANSPORT_TYPE)
    salt = items.get(_CONTROLLER_SALT)
    if command != bytes((_START_SESSION,)):
        raise SetupError(f"session command {command!r} is not 'start session'")
    if transport != bytes((_HDS_OVER_TCP,)):
        raise SetupError(f"transport type {transport!r} is not HDS over TCP")
    if salt is None or len(salt) != KEY_SALT_LENGTH:
        raise SetupError("controller key salt missing or not 32 bytes")
    return SetupRequest(salt)


def _port_params(port: int) -> bytes:
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    return tlv8.item(_PARAM_PORT, tlv8.uint_le(port, 2))


def build_setup_response(port: int, accessory_salt: bytes, status: int = 0) -> bytes:
    """The write-response TLV: status, session parameters (port, uint16 LE), accessory salt."""
    return tlv8.encode([(_RESP_STATUS, status), (_RESP_PARAMS, _port_params(port)), (_RESP_SALT, accessory_salt)])


def build_setup_read_value(port: int, status: int = 0) -> bytes:
    """What a later GET of 0x131 returns: the last response without the salt (HN)."""
    return tlv8.encode([(_RESP_STATUS, status), (_RESP_PARAMS, _port_params(port))])


SessionState = Literal["pending", "bound", "expired", "hap-closed"]


class _CloseHook:
    """The callback handed to the HAP session. It holds the prepared session only until that
    session is finished with, so a long-lived HAP session that sets up HDS thousands of times
    (and cannot unregister callbacks) keeps only these empty shells alive."""

    __slots__ = ("session",)

    def __init__(self, session: PreparedSession) -> None:
        self.session: PreparedSession | None = session

    def __call__(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.hap_session_closed()


class PreparedSession:
    """Keys for one expected TCP connection, bound to the HAP session that asked for it."""

    def __init__(
        self,
        keys: SessionKeys,
        accessory_salt: bytes,
        expires_at: float,
        manager: TransportManager,
    ) -> None:
        self.keys = keys
        self.accessory_salt = accessory_salt
        self.expires_at = expires_at
        self.state: SessionState = "pending"
        self._manager = manager
        self._hook = _CloseHook(self)
        self._unregister: Callable[[], object] | None = None
        self._on_hap_close: Callable[[], None] | None = None

    def register_with(self, registrar: HapCloseRegistrar | None) -> None:
        if registrar is None:
            return
        result = registrar(self._hook)
        if callable(result):
            self._unregister = result

    def bind(self, on_hap_close: Callable[[], None]) -> None:
        """Called by the connection that identified itself with this session: from now on the
        HAP session closing closes that connection."""
        self.state = "bound"
        self._on_hap_close = on_hap_close

    def hap_session_closed(self) -> None:
        state, callback = self.state, self._on_hap_close
        self.state = "hap-closed"
        self._manager.discard(self)
        self.release()
        if state == "bound" and callback is not None:
            callback()

    def release(self) -> None:
        """Forget the HAP session (the HDS connection ended or the session expired)."""
        self._hook.session = None
        self._on_hap_close = None
        unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()


class TransportManager:
    """Per camera: validates setup writes and holds the pending prepared sessions."""

    def __init__(
        self,
        *,
        session_timeout: float = PREPARED_SESSION_TIMEOUT,
        max_pending: int = MAX_PENDING_SESSIONS,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.session_timeout = session_timeout
        self.max_pending = max_pending
        self._random = random_bytes
        self._pending: list[PreparedSession] = []
        self._last_port: int | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def setup(
        self,
        value: bytes | bytearray | memoryview | str,
        *,
        shared_secret: bytes,
        port: int,
        now: float,
        on_hap_close: HapCloseRegistrar | None = None,
    ) -> bytes:
        """Handle a SetupDataStreamTransport write; return the write-response TLV bytes.

        Raises :class:`SetupError` (→ HAP -70410) for a bad command, transport or salt.
        """
        request = parse_setup_write(value)
        if not shared_secret:
            raise SetupError("setup write outside a verified HAP session")
        accessory_salt = self._random(KEY_SALT_LENGTH)
        keys = accessory_keys(shared_secret, request.controller_salt, accessory_salt)
        response = build_setup_response(port, accessory_salt)
        self.expire(now)
        while len(self._pending) >= self.max_pending:
            self._pending.pop(0).release()
        session = PreparedSession(keys, accessory_salt, now + self.session_timeout, self)
        session.register_with(on_hap_close)
        if session.state == "pending":  # the registrar may have run the hook at once
            self._pending.append(session)
        self._last_port = port
        return response

    def read_value(self) -> bytes:
        """Value of a GET on 0x131: empty until the first setup, then status + port."""
        return b"" if self._last_port is None else build_setup_read_value(self._last_port)

    def identify(self, frame: Frame, now: float) -> tuple[PreparedSession, bytes] | None:
        """Trial-decrypt a connection's first frame against each pending session (counter 0).

        The first session whose key authenticates the frame is consumed and returned with the
        plaintext; ``None`` means the socket belongs to nobody and must be closed.
        """
        self.expire(now)
        for session in self._pending:
            plaintext = try_open(session.keys.decrypt_key, frame, 0)
            if plaintext is not None:
                self._pending.remove(session)
                return session, plaintext
        return None

    def discard(self, session: PreparedSession) -> None:
        if session in self._pending:
            self._pending.remove(session)

    def expire(self, now: float) -> None:
        """Drop prepared sessions nobody connected to within the timeout."""
        keep: list[PreparedSession] = []
        for session in self._pending:
            if session.expires_at <= now:
                session.state = "expired"
                session.release()
            else:
                keep.append(session)
        self._pending = keep

    def next_deadline(self) -> float | None:
        return min((s.expires_at for s in self._pending), default=None)

    def clear(self) -> None:
        """Drop every pending session (listener shutting down)."""
        for session in self._pending:
            session.release()
        self._pending.clear()
