"""Small crypto helpers shared by pairing and the secure session (HKDF-SHA512, ChaCha20 nonces)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ChaCha20Poly1305", "counter_nonce", "hkdf_sha512", "label_nonce", "open_sealed", "seal"]


def hkdf_sha512(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA512 as HAP uses it for every derived key."""
    return HKDF(algorithm=hashes.SHA512(), length=length, salt=salt, info=info).derive(ikm)


def label_nonce(label: bytes) -> bytes:
    """Pairing messages use an 8-byte ASCII label (e.g. b"PS-Msg05") left-padded to 12 bytes."""
    return b"\x00" * (12 - len(label)) + label


def counter_nonce(counter: int) -> bytes:
    """Secure-session and HDS frames use 4 zero bytes and a 64-bit little-endian counter."""
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


def seal(key: bytes, label: bytes, plaintext: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(label_nonce(label), plaintext, None)


def open_sealed(key: bytes, label: bytes, ciphertext: bytes) -> bytes:
    """Raises cryptography's InvalidTag on a bad tag."""
    return ChaCha20Poly1305(key).decrypt(label_nonce(label), ciphertext, None)
