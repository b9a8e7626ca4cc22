"""Pair-setup M1-M6 (sans-IO): the one place a controller proves it knows the setup code.

One exchange at a time per accessory, bound to the connection that sent M1: another
connection's M1 gets Busy without disturbing it, and steps from the wrong connection or out of
order get an error. Failed proofs are counted in the persisted state, so 100 failures mean
MaxTries even across restarts; M1s are also rate-limited because each one costs modular
exponentiations. An exchange left idle for ``TIMEOUT`` seconds is abandoned.

Flags (Transient / Split) are parsed and ignored: the exchange is always a normal, persistent
pairing. That is the behaviour controllers get from HAP-NodeJS and HAP-python, and it keeps
iOS working whether or not it sends the flags.

The SRP steps (M1 and M3) are CPU-heavy: :meth:`PairSetup.begin` hands them back as an
:class:`~.offload.Offload` whose pure half the adapter may run off the event loop, while the
exchange stays reserved for its connection; :meth:`PairSetup.handle` runs both halves at once.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import tlv8
from .crypto import hkdf_sha512, open_sealed, seal
from .offload import Offload
from .pairing_tlv import Method, T
from .srp import SrpError, SrpServer
from .state import MAX_PAIRINGS, AccessoryState, Pairing
from .status import TlvErrorCode

__all__ = ["PairSetup", "PairSetupResult", "PairSetupStep"]

MAX_FAILED_ATTEMPTS = 100
MAX_IDENTIFIER_BYTES = 36


class _Step(IntEnum):
    COMPUTING = 0  # an SRP step runs off the loop; the exchange is held for its connection
    WAIT_M3 = 3
    WAIT_M5 = 5


@dataclass(frozen=True)
class PairSetupResult:
    """The TLV body to answer with, and what the caller must do after sending it."""

    body: bytes
    new_pairing: Pairing | None = None
    state_dirty: bool = False


@dataclass
class _Exchange:
    conn_id: int
    srp: SrpServer | None  # None until M1's SRP values are computed
    step: _Step
    last_activity: float


PairSetupStep = Offload[Any, PairSetupResult]


def _error(state: int, code: TlvErrorCode, retry_delay: int | None = None) -> bytes:
    items: list[tuple[int, tlv8.Value]] = [(T.STATE, state), (T.ERROR, int(code))]
    if retry_delay is not None:
        items.append((T.RETRY_DELAY, retry_delay))
    return tlv8.encode(items)


def _valid_identifier(identifier: bytes) -> bool:
    if not 1 <= len(identifier) <= MAX_IDENTIFIER_BYTES:
        return False
    try:
        text = identifier.decode("ascii")
    except UnicodeDecodeError:
        return False
    if len(text) == 36:
        try:
            uuid_module.UUID(text)
        except ValueError:
            return False
        return True
    return text.isprintable()


class PairSetup:
    """Pair-setup for one accessory. ``srp_factory`` lets tests force SRP values."""

    TIMEOUT = 30.0
    BURST = 5  # M1s allowed back to back
    REFILL_S = 2.0  # one more M1 allowed per this many seconds

    def __init__(
        self,
        state: AccessoryState,
        *,
        srp_factory: Callable[[str], SrpServer] | None = None,
    ) -> None:
        self._state = state
        self._srp_factory = srp_factory or SrpServer
        self._exchange: _Exchange | None = None
        self._tokens = float(self.BURST)
        self._tokens_at = 0.0

    def connection_closed(self, conn_id: int) -> None:
        if self._exchange is not None and self._exchange.conn_id == conn_id:
            self._exchange = None

    def active_connection(self, now: float) -> int | None:
        """The connection holding the pair-setup exchange in progress, if any."""
        self._expire(now)
        return self._exchange.conn_id if self._exchange is not None else None

    def _expire(self, now: float) -> None:
        if self._exchange is not None and now - self._exchange.last_activity > self.TIMEOUT:
            self._exchange = None

    def _take_token(self, now: float) -> int | None:
        """Returns None when an M1 may proceed, else the seconds to wait."""
        self._tokens = min(self.BURST, self._tokens + (now - self._tokens_at) / self.REFILL_S)
        self._tokens_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, round((1 - self._tokens) * self.REFILL_S))

    def handle(self, conn_id: int, body: bytes, now: float) -> PairSetupResult:
        """One request, answered at once (the SRP work done inline)."""
        result = self.begin(conn_id, body, now)
        return result.run_inline(now) if isinstance(result, Offload) else result

    def begin(self, conn_id: int, body: bytes, now: float) -> PairSetupResult | PairSetupStep:
        """One request: its answer, or for M1 and M3 the SRP work to run (off the loop if the
        caller likes) and the step that turns its result into the answer."""
        try:
            items = tlv8.decode_dict(body)
            state_raw = items.get(T.STATE)
            if state_raw is None or len(state_raw) != 1:
                return PairSetupResult(_error(2, TlvErrorCode.UNKNOWN))
            step = state_raw[0]
            self._expire(now)
            if step == 1:
                return self._m1(conn_id, items, now)
            if step == 3:
                return self._m3(conn_id, items, now)
            if step == 5:
                return self._m5(conn_id, items, now)
            return PairSetupResult(_error(min(step + 1, 6), TlvErrorCode.UNKNOWN))
        except tlv8.TLVError:
            return PairSetupResult(_error(2, TlvErrorCode.UNKNOWN))

    # -- M1 -> M2 -----------------------------------------------------------------------------
    def _m1(self, conn_id: int, items: dict[int, bytes], now: float) -> PairSetupResult | PairSetupStep:
        if self._state.paired:
            return PairSetupResult(_error(2, TlvErrorCode.UNAVAILABLE))
        if self._state.failed_attempts >= MAX_FAILED_ATTEMPTS:
            return PairSetupResult(_error(2, TlvErrorCode.MAX_TRIES))
        exchange = self._exchange
        if exchange is not None:
            if exchange.conn_id != conn_id:
                return PairSetupResult(_error(2, TlvErrorCode.BUSY))
            # M1 again mid-flow on the same connection: abandon the exchange.
            self._exchange = None
            return PairSetupResult(_error(2, TlvErrorCode.UNKNOWN))
        method = items.get(T.METHOD)
        if method is None or len(method) != 1 or method[0] not in (
            Method.PAIR_SETUP,
            Method.PAIR_SETUP_WITH_AUTH,
        ):
            return PairSetupResult(_error(2, TlvErrorCode.UNKNOWN))
        flags = items.get(T.FLAGS)
        if flags is not None and len(flags) > 4:
            return PairSetupResult(_error(2, TlvErrorCode.UNKNOWN))
        wait = self._take_token(now)
        if wait is not None:
            return PairSetupResult(_error(2, TlvErrorCode.BACKOFF, retry_delay=min(wait, 255)))
        exchange = self._exchange = _Exchange(conn_id, None, _Step.COMPUTING, now)
        factory, code = self._srp_factory, self._state.setup_code

        def finish(srp: SrpServer, at: float) -> PairSetupResult:
            if self._exchange is not exchange:  # the connection went away meanwhile
                return PairSetupResult(_error(2, TlvErrorCode.UNKNOWN))
            exchange.srp, exchange.step, exchange.last_activity = srp, _Step.WAIT_M3, at
            body = tlv8.encode([(T.STATE, 2), (T.SALT, srp.salt), (T.PUBLIC_KEY, srp.public_key)])
            return PairSetupResult(body)

        return Offload(lambda: factory(code), finish)

    def _current(self, conn_id: int, step: _Step) -> _Exchange | None:
        exchange = self._exchange
        if exchange is None or exchange.conn_id != conn_id or exchange.step != step:
            return None
        return exchange

    def _fail(self) -> PairSetupResult:
        self._exchange = None
        self._state.failed_attempts += 1
        return PairSetupResult(_error(4, TlvErrorCode.AUTHENTICATION), state_dirty=True)

    # -- M3 -> M4 -----------------------------------------------------------------------------
    def _m3(self, conn_id: int, items: dict[int, bytes], now: float) -> PairSetupResult | PairSetupStep:
        exchange = self._current(conn_id, _Step.WAIT_M3)
        if exchange is None:
            if self._exchange is not None and self._exchange.conn_id == conn_id:
                self._exchange = None
            return PairSetupResult(_error(4, TlvErrorCode.UNKNOWN))
        public = items.get(T.PUBLIC_KEY)
        proof = items.get(T.PROOF)
        if public is None or proof is None:
            self._exchange = None
            return PairSetupResult(_error(4, TlvErrorCode.UNKNOWN))
        srp = exchange.srp
        assert srp is not None  # set when the exchange reached WAIT_M3
        exchange.step = _Step.COMPUTING

        def compute() -> bytes | None:
            try:
                srp.set_client_public(public)
                return srp.verify_client_proof(proof)
            except SrpError:
                return None

        def finish(server_proof: bytes | None, at: float) -> PairSetupResult:
            if self._exchange is not exchange:  # the connection went away meanwhile
                return PairSetupResult(_error(4, TlvErrorCode.UNKNOWN))
            if server_proof is None:
                return self._fail()
            exchange.step, exchange.last_activity = _Step.WAIT_M5, at
            return PairSetupResult(tlv8.encode([(T.STATE, 4), (T.PROOF, server_proof)]))

        return Offload(compute, finish)

    # -- M5 -> M6 -----------------------------------------------------------------------------
    def _m5(self, conn_id: int, items: dict[int, bytes], now: float) -> PairSetupResult:
        exchange = self._current(conn_id, _Step.WAIT_M5)
        if exchange is None:
            if self._exchange is not None and self._exchange.conn_id == conn_id:
                self._exchange = None
            return PairSetupResult(_error(6, TlvErrorCode.UNKNOWN))
        self._exchange = None  # whatever happens next, this exchange is over
        encrypted = items.get(T.ENCRYPTED_DATA)
        if encrypted is None:
            return PairSetupResult(_error(6, TlvErrorCode.UNKNOWN))
        assert exchange.srp is not None  # set when the exchange reached WAIT_M3
        key_material = exchange.srp.session_key
        enc_key = hkdf_sha512(key_material, b"Pair-Setup-Encrypt-Salt", b"Pair-Setup-Encrypt-Info")
        try:
            sub = tlv8.decode_dict(open_sealed(enc_key, b"PS-Msg05", encrypted))
        except InvalidTag:
            return PairSetupResult(_error(6, TlvErrorCode.AUTHENTICATION))
        except tlv8.TLVError:
            return PairSetupResult(_error(6, TlvErrorCode.UNKNOWN))
        identifier = sub.get(T.IDENTIFIER)
        ltpk = sub.get(T.PUBLIC_KEY)
        signature = sub.get(T.SIGNATURE)
        if identifier is None or ltpk is None or signature is None:
            return PairSetupResult(_error(6, TlvErrorCode.UNKNOWN))
        if not _valid_identifier(identifier) or len(ltpk) != 32 or len(signature) != 64:
            return PairSetupResult(_error(6, TlvErrorCode.UNKNOWN))
        device_x = hkdf_sha512(
            key_material, b"Pair-Setup-Controller-Sign-Salt", b"Pair-Setup-Controller-Sign-Info"
        )
        try:
            Ed25519PublicKey.from_public_bytes(ltpk).verify(signature, device_x + identifier + ltpk)
        except (InvalidSignature, ValueError):
            return PairSetupResult(_error(6, TlvErrorCode.AUTHENTICATION))
        if len(self._state.pairings) >= MAX_PAIRINGS:
            return PairSetupResult(_error(6, TlvErrorCode.MAX_PEERS))
        pairing = Pairing(identifier, ltpk, admin=True)
        self._state.pairings[identifier] = pairing
        self._state.failed_attempts = 0

        accessory_x = hkdf_sha512(
            key_material, b"Pair-Setup-Accessory-Sign-Salt", b"Pair-Setup-Accessory-Sign-Info"
        )
        device_id = self._state.device_id.encode()
        accessory_ltpk = self._state.public_key
        acc_signature = self._state.signing_key.sign(accessory_x + device_id + accessory_ltpk)
        sub_out = tlv8.encode(
            [(T.IDENTIFIER, device_id), (T.PUBLIC_KEY, accessory_ltpk), (T.SIGNATURE, acc_signature)]
        )
        body = tlv8.encode([(T.STATE, 6), (T.ENCRYPTED_DATA, seal(enc_key, b"PS-Msg06", sub_out))])
        return PairSetupResult(body, new_pairing=pairing, state_dirty=True)
