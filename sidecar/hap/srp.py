"""SRP-6a server, 3072-bit group of RFC 5054 with SHA-512, as HAP pair-setup uses it.

Every value that enters a hash is padded to its full width (A, B and S to 384 bytes), the way
Apple's ADK and aiohomekit do: an implementation that hashes them unpadded fails roughly one
pairing in a hundred, whenever a value happens to start with a zero byte.

Security rules that matter: A ≡ 0 (mod N) would make the premaster secret 0 and let anyone
compute the proof without the PIN, so it is refused, as is A ≥ N or a wrong length; the client
proof is compared in constant time.

The modular exponentiations are done in small steps (:func:`modexp`), not by one ``pow`` call:
one 3072-bit ``pow`` holds the interpreter lock for tens of milliseconds, so even when the
adapter runs it in a worker thread it would stall the event loop for that long; in steps, the
lock is free to change hands between them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["KEY_LENGTH", "G", "N", "SrpError", "SrpServer", "modexp"]

N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E"
    "3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5"
    "CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A"
    "69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA1"
    "8217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497"
    "CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8A"
    "EA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A"
    "0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BF"
    "CE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
G = 5
KEY_LENGTH = 384  # bytes in N
USERNAME = b"Pair-Setup"


def _h(*parts: bytes) -> bytes:
    return hashlib.sha512(b"".join(parts)).digest()


def _pad(value: int) -> bytes:
    return value.to_bytes(KEY_LENGTH, "big")


def _minimal(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


WINDOW_BITS = 4


def modexp(base: int, exponent: int, modulus: int) -> int:
    """``pow(base, exponent, modulus)`` for exponent >= 0, as a fixed-window loop of small
    steps (a few multiplications each) so no single call holds the interpreter lock long."""
    size = 1 << WINDOW_BITS
    table = [1 % modulus, base % modulus]
    for _ in range(2, size):
        table.append(table[-1] * table[1] % modulus)
    result = 1 % modulus
    for shift in range((exponent.bit_length() + WINDOW_BITS - 1) // WINDOW_BITS * WINDOW_BITS - WINDOW_BITS,
                       -1, -WINDOW_BITS):
        result = pow(result, size, modulus)
        digit = (exponent >> shift) & (size - 1)
        if digit:
            result = result * table[digit] % modulus
    return result


_K = int.from_bytes(_h(_minimal(N), _pad(G)), "big")
_H_GROUP = bytes(a ^ b for a, b in zip(_h(_minimal(N)), _h(_minimal(G)), strict=True))
_H_USER = _h(USERNAME)


class SrpError(Exception):
    """The client's public value or proof is unacceptable."""


class SrpServer:
    """One pair-setup's SRP exchange, from the accessory's side.

    ``private`` and ``salt`` can be injected so tests can force values with leading zero bytes.
    """

    def __init__(self, pin: str, *, salt: bytes | None = None, private: int | None = None) -> None:
        self.salt = salt if salt is not None else secrets.token_bytes(16)
        x = int.from_bytes(_h(self.salt, _h(USERNAME + b":" + pin.encode())), "big")
        self._verifier = modexp(G, x, N)
        # 256 random bits, RFC 5054's minimum for the private value: a full-width exponent
        # would make every pair-setup ~100x slower for no gain in security.
        self._b = private if private is not None else secrets.randbits(256) | (1 << 255)
        self.B = (_K * self._verifier + modexp(G, self._b, N)) % N
        self.public_key = _pad(self.B)
        self._session_key: bytes | None = None
        self._A_bytes = b""

    def set_client_public(self, a_bytes: bytes) -> None:
        """Accept A and compute the session key; raises SrpError for an unsafe A."""
        if not 1 <= len(a_bytes) <= KEY_LENGTH:
            raise SrpError("client public key has the wrong length")
        a = int.from_bytes(a_bytes, "big")
        if a >= N or a % N == 0:
            raise SrpError("client public key is not in 1..N-1")
        self._A_bytes = _pad(a)
        u = int.from_bytes(_h(self._A_bytes, self.public_key), "big")
        if u == 0:
            raise SrpError("scrambling parameter is zero")
        s = modexp(a * modexp(self._verifier, u, N) % N, self._b, N)
        self._session_key = _h(_pad(s))

    @property
    def session_key(self) -> bytes:
        if self._session_key is None:
            raise SrpError("no client public key yet")
        return self._session_key

    def verify_client_proof(self, proof: bytes) -> bytes:
        """Check M1 in constant time and return M2, the accessory's proof."""
        key = self.session_key
        expected = _h(_H_GROUP, _H_USER, self.salt, self._A_bytes, self.public_key, key)
        if not hmac.compare_digest(expected, proof):
            raise SrpError("client proof mismatch")
        return _h(self._A_bytes, expected, key)
