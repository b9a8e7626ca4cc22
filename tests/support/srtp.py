"""The controller's end of an SRTP stream, written from RFC 3711 for the tests: key derivation,
authentication (HMAC-SHA1-80) and decryption (AES-CM) of AES_CM_128_HMAC_SHA1_80 packets, and
a UDP receiver that keeps each packet with the moment it arrived.

A viewer in a test must see what an iPhone sees: packets whose tag checks out under the key we
gave it, RTP timestamps on the clock HomeKit expects, and arrival times to set those against.
RTCP (payload types 200-204, multiplexed on the same port) is counted but not decrypted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import statistics
import struct
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["RtpPacket", "SrtpReceiver", "SrtpSession", "rtp_rate"]

TAG_LEN = 10  # HMAC-SHA1-80


def _aes_cm(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES in counter mode with the 128-bit counter block ``iv`` (RFC 3711 §4.1.1)."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """A session key from the master key and salt (RFC 3711 §4.3.1, key derivation rate 0)."""
    x = int.from_bytes(master_salt, "big") ^ (label << 48)
    return _aes_cm(master_key, (x << 16).to_bytes(16, "big"), bytes(length))


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One authenticated, decrypted RTP packet and the monotonic time it arrived."""

    arrival: float
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


class SrtpSession:
    """Receives one SSRC's SRTP packets under one master key||salt (30 bytes)."""

    def __init__(self, key_salt: bytes) -> None:
        if len(key_salt) != 30:
            raise ValueError("AES_CM_128_HMAC_SHA1_80 takes a 16-byte key and a 14-byte salt")
        master_key, master_salt = key_salt[:16], key_salt[16:]
        self._enc = _derive(master_key, master_salt, 0, 16)
        self._auth = _derive(master_key, master_salt, 1, 20)
        self._salt = int.from_bytes(_derive(master_key, master_salt, 2, 14), "big")
        self._roc = 0
        self._last_seq: int | None = None

    def _index(self, seq: int) -> tuple[int, int]:
        """The rollover counter for ``seq`` (RFC 3711 Appendix A, without reordering state)."""
        if self._last_seq is None:
            return self._roc, seq
        if self._last_seq > 0xC000 and seq < 0x4000:
            return self._roc + 1, seq
        if self._last_seq < 0x4000 and seq > 0xC000:
            return max(0, self._roc - 1), seq
        return self._roc, seq

    def _keystream_iv(self, ssrc: int, roc: int, seq: int) -> bytes:
        return ((self._salt << 16) ^ (ssrc << 64) ^ (((roc << 16) | seq) << 16)).to_bytes(16, "big")

    def protect(self, header: bytes, payload: bytes, roc: int = 0) -> bytes:
        """The SRTP packet a sender with this key makes of an RTP header and payload."""
        seq, _, ssrc = struct.unpack_from("!HII", header, 2)
        body = header + _aes_cm(self._enc, self._keystream_iv(ssrc, roc, seq), payload)
        return body + hmac.new(self._auth, body + roc.to_bytes(4, "big"), hashlib.sha1).digest()[:TAG_LEN]

    def unprotect(self, data: bytes, arrival: float) -> RtpPacket:
        """Check the tag and decrypt; raises ``ValueError`` for anything that is not ours."""
        if len(data) < 12 + TAG_LEN or data[0] >> 6 != 2:
            raise ValueError("not an SRTP packet")
        csrc = data[0] & 0x0F
        header_len = 12 + 4 * csrc
        body, tag = data[:-TAG_LEN], data[-TAG_LEN:]
        if data[0] & 0x10 and header_len + 4 <= len(body):  # header extension
            (words,) = struct.unpack_from("!H", body, header_len + 2)
            header_len += 4 + 4 * words
        if header_len > len(body):
            raise ValueError("RTP header longer than the packet")
        seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
        roc, _ = self._index(seq)
        expected = hmac.new(self._auth, body + roc.to_bytes(4, "big"), hashlib.sha1).digest()[:TAG_LEN]
        if not hmac.compare_digest(expected, tag):
            raise ValueError("SRTP authentication failed")
        if self._last_seq is None or roc > self._roc or (roc == self._roc and seq > self._last_seq):
            self._roc, self._last_seq = roc, seq
        payload = _aes_cm(self._enc, self._keystream_iv(ssrc, roc, seq), body[header_len:])
        return RtpPacket(arrival, data[1] & 0x7F, bool(data[1] & 0x80), seq, ts, ssrc, payload)


@dataclass
class SrtpReceiver(asyncio.DatagramProtocol):
    """A UDP port of the controller: keeps the authenticated RTP packets as they arrive."""

    session: SrtpSession
    packets: list[RtpPacket] = field(default_factory=list)
    rtcp: int = 0
    rejected: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        now = time.monotonic()
        if len(data) >= 2 and 200 <= data[1] <= 204:
            self.rtcp += 1
            return
        try:
            self.packets.append(self.session.unprotect(data, now))
        except ValueError:
            self.rejected += 1
            return
        self.arrived.set()

    def span(self) -> float:
        """Seconds between the first and the last packet kept."""
        return self.packets[-1].arrival - self.packets[0].arrival if self.packets else 0.0

    async def wait_for_count(self, count: int, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until ``count`` packets are kept."""
        async with asyncio.timeout(timeout):
            while len(self.packets) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def wait_for_span(self, seconds: float, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the packets kept span ``seconds``."""
        async with asyncio.timeout(timeout):
            while self.span() < seconds:
                self.arrived.clear()
                await self.arrived.wait()


def rtp_rate(packets: list[RtpPacket], clock_hz: int) -> tuple[float, float]:
    """(RTP time per second of arrival, arrival span in s): 1.0 is a stream that runs in real
    time on ``clock_hz``. The rate is the least-squares slope of every packet's RTP time
    (unwrapped modulo 2**32) against its arrival, not the first and last packets' ratio: a
    stream that runs slow is slow in every second and shows as much either way, but what a
    source delivers at once after a slow start (a loaded machine probing it) is one cluster of
    points, which moves a slope over 20 s by about a tenth of what it moves a ratio of its ends
    (``tests/camera/test_srtp_receiver.py``)."""
    if len(packets) < 2:
        raise ValueError("need two packets")
    times, ticks = [0.0], 0
    for a, b in itertools.pairwise(packets):
        step = (b.timestamp - a.timestamp) % 2**32
        ticks += step - 2**32 if step >= 2**31 else step
        times.append(ticks / clock_hz)
    arrivals = [p.arrival for p in packets]
    slope, _ = statistics.linear_regression(arrivals, times)  # StatisticsError if all arrived at once
    return slope, arrivals[-1] - arrivals[0]
