"""Pair-verify M1-M4 (sans-IO), once per connection: mutual proof of the long-term keys.

On success it yields the session keys and the X25519 shared secret; the secret is what HDS
later derives its own keys from, so the verified session exposes it to the layers above.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .. import tlv8
from .crypto import hkdf_sha512, open_sealed, seal
from .pairing_tlv import T
from .state import AccessoryState
from .status import TlvErrorCode

__all__ = ["PairVerify", "PairVerifyResult", "VerifiedKeys"]


@dataclass(frozen=True)
class VerifiedKeys:
    controller_id: bytes
    shared_secret: bytes
    encrypt_key: bytes  # accessory -> controller ("Control-Read")
    decrypt_key: bytes  # controller -> accessory ("Control-Write")

    def __repr__(self) -> str:
        return f"VerifiedKeys(controller_id={self.controller_id!r}, <keys redacted>)"


@dataclass(frozen=True)
class PairVerifyResult:
    body: bytes
    keys: VerifiedKeys | None = None
    failed: bool = False  # the body is a kTLVType_Error answer


def _error(state: int, code: TlvErrorCode) -> PairVerifyResult:
    return PairVerifyResult(tlv8.encode([(T.STATE, state), (T.ERROR, int(code))]), failed=True)


class PairVerify:
    """One connection's pair-verify. A new M1 restarts it; M3 without M1 is an error."""

    def __init__(self, state: AccessoryState) -> None:
        self._state = state
        self._pending: tuple[bytes, bytes, bytes, bytes] | None = None  # ctrl pub, acc pub, secret, key

    def handle(self, body: bytes) -> PairVerifyResult:
        try:
            items = tlv8.decode_dict(body)
        except tlv8.TLVError:
            self._pending = None
            return _error(2, TlvErrorCode.UNKNOWN)
        state_raw = items.get(T.STATE)
        if state_raw == b"\x01":
            return self._m1(items)
        if state_raw == b"\x03":
            return self._m3(items)
        self._pending = None
        return _error(2, TlvErrorCode.UNKNOWN)

    def _m1(self, items: dict[int, bytes]) -> PairVerifyResult:
        self._pending = None
        if not self._state.paired:
            return _error(2, TlvErrorCode.AUTHENTICATION)
        controller_public = items.get(T.PUBLIC_KEY)
        if controller_public is None or len(controller_public) != 32:
            return _error(2, TlvErrorCode.UNKNOWN)
        private = X25519PrivateKey.generate()
        accessory_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(controller_public))
        except ValueError:  # low-order point: the shared secret would be all zero
            return _error(2, TlvErrorCode.AUTHENTICATION)
        device_id = self._state.device_id.encode()
        signature = self._state.signing_key.sign(accessory_public + device_id + controller_public)
        key = hkdf_sha512(shared, b"Pair-Verify-Encrypt-Salt", b"Pair-Verify-Encrypt-Info")
        sub = tlv8.encode([(T.IDENTIFIER, device_id), (T.SIGNATURE, signature)])
        self._pending = (controller_public, accessory_public, shared, key)
        body = tlv8.encode(
            [(T.STATE, 2), (T.PUBLIC_KEY, accessory_public), (T.ENCRYPTED_DATA, seal(key, b"PV-Msg02", sub))]
        )
        return PairVerifyResult(body)

    def _m3(self, items: dict[int, bytes]) -> PairVerifyResult:
        pending, self._pending = self._pending, None
        if pending is None:
            return _error(4, TlvErrorCode.UNKNOWN)
        controller_public, accessory_public, shared, key = pending
        encrypted = items.get(T.ENCRYPTED_DATA)
        if encrypted is None:
            return _error(4, TlvErrorCode.UNKNOWN)
        try:
            sub = tlv8.decode_dict(open_sealed(key, b"PV-Msg03", encrypted))
        except (InvalidTag, tlv8.TLVError):
            return _error(4, TlvErrorCode.AUTHENTICATION)
        identifier = sub.get(T.IDENTIFIER)
        signature = sub.get(T.SIGNATURE)
        if identifier is None or signature is None:
            return _error(4, TlvErrorCode.AUTHENTICATION)
        pairing = self._state.pairings.get(identifier)
        if pairing is None:
            return _error(4, TlvErrorCode.AUTHENTICATION)
        try:
            Ed25519PublicKey.from_public_bytes(pairing.public_key).verify(
                signature, controller_public + identifier + accessory_public
            )
        except (InvalidSignature, ValueError):
            return _error(4, TlvErrorCode.AUTHENTICATION)
        keys = VerifiedKeys(
            controller_id=identifier,
            shared_secret=shared,
            encrypt_key=hkdf_sha512(shared, b"Control-Salt", b"Control-Read-Encryption-Key"),
            decrypt_key=hkdf_sha512(shared, b"Control-Salt", b"Control-Write-Encryption-Key"),
        )
        return PairVerifyResult(tlv8.encode([(T.STATE, 4)]), keys)
