"""HDS session keys: HKDF-SHA512 over the HAP session's shared secret and both salts.

The names "Read" and "Write" are from the controller's point of view, exactly like HAP's
Control-Read/Write keys, which is the classic way to get the directions backwards. So callers
never see the raw names: they ask for the key pair of *their* role and get an ``encrypt_key``
and a ``decrypt_key``. The accessory encrypts with Read and decrypts with Write; the hub
(``tests/hub``) does the opposite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import SetupError

__all__ = ["KEY_SALT_LENGTH", "SessionKeys", "accessory_keys", "controller_keys", "derive_key"]

KEY_SALT_LENGTH: Final = 32
_READ_INFO: Final = b"HDS-Read-Encryption-Key"  # accessory -> controller
_WRITE_INFO: Final = b"HDS-Write-Encryption-Key"  # controller -> accessory


@dataclass(frozen=True, slots=True, repr=False)
class SessionKeys:
    """The two ChaCha20-Poly1305 keys of one HDS connection, from one side's point of view."""

    encrypt_key: bytes
    decrypt_key: bytes

    def __repr__(self) -> str:  # keys never reach a log
        return "SessionKeys(<redacted>)"


def derive_key(shared_secret: bytes, controller_salt: bytes, accessory_salt: bytes, info: bytes) -> bytes:
    """One 32-byte key: HKDF-SHA512(IKM=shared secret, salt=controller‖accessory, info)."""
    if len(controller_salt) != KEY_SALT_LENGTH or len(accessory_salt) != KEY_SALT_LENGTH:
        raise SetupError("HDS key salts must be 32 bytes each")
    if not shared_secret:
        raise SetupError("empty shared secret")
    hkdf = HKDF(algorithm=hashes.SHA512(), length=32, salt=controller_salt + accessory_salt, info=info)
    return hkdf.derive(shared_secret)


def accessory_keys(shared_secret: bytes, controller_salt: bytes, accessory_salt: bytes) -> SessionKeys:
    """Keys for the accessory: encrypt with HDS-Read, decrypt with HDS-Write."""
    return SessionKeys(
        encrypt_key=derive_key(shared_secret, controller_salt, accessory_salt, _READ_INFO),
        decrypt_key=derive_key(shared_secret, controller_salt, accessory_salt, _WRITE_INFO),
    )


def controller_keys(shared_secret: bytes, controller_salt: bytes, accessory_salt: bytes) -> SessionKeys:
    """Keys for the controller (hub): encrypt with HDS-Write, decrypt with HDS-Read."""
    mine = accessory_keys(shared_secret, controller_salt, accessory_salt)
    return SessionKeys(encrypt_key=mine.decrypt_key, decrypt_key=mine.encrypt_key)
