"""The encrypted HAP session framing (sans-IO), switched on right after pair-verify M4.

Frames are ``<u16 LE length><ciphertext><16-byte tag>`` with the two length bytes as AAD, at
most 1024 plaintext bytes, ChaCha20-Poly1305 with a 64-bit little-endian counter per
direction. Any bad tag or oversized length is fatal: the caller closes the connection, since
after a failure the counters can no longer be trusted. A zero-length frame is valid (it
authenticates and carries no data) and simply advances the counter.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

__all__ = ["MAX_FRAME", "SecureChannel", "SecureChannelError"]

MAX_FRAME = 1024
TAG = 16
_LEN = struct.Struct("<H")
_NONCE = struct.Struct("<4xQ")  # 4 zero bytes, then the 64-bit little-endian counter


class SecureChannelError(Exception):
    """Authentication failed or a frame was malformed: close the connection."""


class SecureChannel:
    def __init__(self, encrypt_key: bytes, decrypt_key: bytes) -> None:
        self._enc = ChaCha20Poly1305(encrypt_key)
        self._dec = ChaCha20Poly1305(decrypt_key)
        self._send_counter = 0
        self._recv_counter = 0
        self._buffer = bytearray()

    def encrypt(self, plaintext: bytes | bytearray | memoryview) -> bytes:
        size = len(plaintext)
        if 0 < size <= MAX_FRAME:  # most messages are one frame: no slicing, no join
            header = _LEN.pack(size)
            nonce = _NONCE.pack(self._send_counter)
            self._send_counter += 1
            return header + self._enc.encrypt(nonce, bytes(plaintext), header)
        view = memoryview(plaintext)
        parts: list[bytes] = []
        encrypt = self._enc.encrypt
        for start in range(0, len(view), MAX_FRAME):
            chunk = view[start : start + MAX_FRAME]
            header = _LEN.pack(len(chunk))
            nonce = _NONCE.pack(self._send_counter)
            self._send_counter += 1
            parts.append(header)
            parts.append(encrypt(nonce, bytes(chunk), header))
        return b"".join(parts)

    def decrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed ciphertext; return all plaintext of the frames now complete."""
        buf = self._buffer
        if not buf and len(data) >= 2:
            # The usual read: exactly one whole frame and nothing buffered, opened in place.
            (length,) = _LEN.unpack_from(data)
            if length <= MAX_FRAME and len(data) == 2 + length + TAG:
                view = memoryview(data)
                try:
                    plaintext = self._dec.decrypt(_NONCE.pack(self._recv_counter), view[2:], view[:2])
                except InvalidTag:
                    raise SecureChannelError("bad authentication tag") from None
                self._recv_counter += 1
                return plaintext
        buf += data
        out: list[bytes] = []
        pos = 0
        decrypt = self._dec.decrypt
        while len(buf) - pos >= 2:
            (length,) = _LEN.unpack_from(buf, pos)
            if length > MAX_FRAME:
                raise SecureChannelError(f"frame of {length} bytes exceeds {MAX_FRAME}")
            end = pos + 2 + length + TAG
            if len(buf) < end:
                break
            nonce = _NONCE.pack(self._recv_counter)
            try:
                out.append(decrypt(nonce, bytes(buf[pos + 2 : end]), bytes(buf[pos : pos + 2])))
            except InvalidTag:
                raise SecureChannelError("bad authentication tag") from None
            self._recv_counter += 1
            pos = end
        if pos:
            del buf[:pos]
        return b"".join(out)

    @property
    def buffered(self) -> int:
        return len(self._buffer)
