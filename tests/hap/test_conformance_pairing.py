"""docs/hap-server.md checklist items 1-9: pair-setup, pair-verify and pre-verify gating."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid

import pytest
from aiohomekit.crypto.srp import SrpClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sidecar import tlv8
from sidecar.hap import srp as srp_module
from sidecar.hap.crypto import hkdf_sha512, seal
from sidecar.hap.pair_setup import PairSetup
from sidecar.hap.pairing_tlv import T
from sidecar.hap.srp import KEY_LENGTH, N, SrpServer
from sidecar.hap.status import TlvErrorCode

from .memory import PIN, Harness, Peer, make_harness

M1 = tlv8.encode([(T.STATE, 1), (T.METHOD, 0)])


def error_of(body: bytes) -> int | None:
    items = tlv8.decode_dict(body)
    return items[T.ERROR][0] if T.ERROR in items else None


def state_of(body: bytes) -> int:
    return tlv8.decode_dict(body)[T.STATE][0]


def srp_m3(peer: Peer, pin: str = PIN) -> tuple[SrpClient, bytes]:
    """M1/M2 then M3 with aiohomekit's SRP client; returns the client and the M4 body."""
    m2 = tlv8.decode_dict(peer.tlv("/pair-setup", M1))
    client = SrpClient("Pair-Setup", pin)
    client.set_salt(bytearray(m2[T.SALT]))
    client.set_server_public_key(bytearray(m2[T.PUBLIC_KEY]))
    m3 = tlv8.encode([(T.STATE, 3), (T.PUBLIC_KEY, client.get_public_key_bytes()),
                      (T.PROOF, client.get_proof_bytes())])
    return client, peer.tlv("/pair-setup", m3)


def m5_body(client: SrpClient, *, identifier: bytes | None = None, sign_with: Ed25519PrivateKey | None = None,
            drop: int | None = None, corrupt_tag: bool = False) -> bytes:
    key = hkdf_sha512(client.get_session_key_bytes(), b"Pair-Setup-Encrypt-Salt", b"Pair-Setup-Encrypt-Info")
    ltsk = Ed25519PrivateKey.generate()
    ltpk = ltsk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ident = identifier if identifier is not None else str(uuid.uuid4()).encode()
    x = hkdf_sha512(client.get_session_key_bytes(), b"Pair-Setup-Controller-Sign-Salt",
                    b"Pair-Setup-Controller-Sign-Info")
    signature = (sign_with or ltsk).sign(x + ident + ltpk)
    items = [(T.IDENTIFIER, ident), (T.PUBLIC_KEY, ltpk), (T.SIGNATURE, signature)]
    if drop is not None:
        items = [i for i in items if i[0] != drop]
    sealed = seal(key, b"PS-Msg05", tlv8.encode(items))
    if corrupt_tag:
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    return tlv8.encode([(T.STATE, 5), (T.ENCRYPTED_DATA, sealed)])


# -- 1 ------------------------------------------------------------------------------------------
def test_01_paired_accessory_answers_m1_unavailable_without_srp_work() -> None:
    h = make_harness()
    h.paired_peer()
    calls = []

    def counting(pin: str) -> SrpServer:
        calls.append(pin)
        return SrpServer(pin)

    h.core.pair_setup = PairSetup(h.state, srp_factory=counting)
    body = h.peer().tlv("/pair-setup", M1)
    assert (state_of(body), error_of(body)) == (2, TlvErrorCode.UNAVAILABLE)
    assert calls == []


# -- 2 ------------------------------------------------------------------------------------------
def _zero_key_attack(public: bytes, salt: bytes, server_public: bytes) -> bytes:
    """The proof an attacker computes when it forces the premaster secret S to 0."""
    key = hashlib.sha512(bytes(KEY_LENGTH)).digest()
    h = hashlib.sha512
    n_bytes = N.to_bytes(KEY_LENGTH, "big")
    group = bytes(a ^ b for a, b in zip(h(n_bytes).digest(), h(b"\x05").digest(), strict=True))
    padded_a = int.from_bytes(public, "big").to_bytes(max(KEY_LENGTH, len(public)), "big")
    return h(group + h(b"Pair-Setup").digest() + salt + padded_a + server_public + key).digest()


@pytest.mark.parametrize(
    "public",
    [
        bytes(KEY_LENGTH),  # A = 0, full width with leading zero bytes
        b"\x00",  # A = 0, short
        N.to_bytes(KEY_LENGTH, "big"),  # A = N
        (2 * N).to_bytes(KEY_LENGTH + 1, "big"),  # A = 2N (also too long)
        b"\x00" + N.to_bytes(KEY_LENGTH, "big"),  # A = N with a leading zero byte
        (N + 1).to_bytes(KEY_LENGTH, "big"),  # A >= N
        b"\x02" * (KEY_LENGTH + 1),  # wrong length
    ],
)
def test_02_srp_zero_key_attack_is_refused(public: bytes) -> None:
    h = make_harness()
    peer = h.peer()
    m2 = tlv8.decode_dict(peer.tlv("/pair-setup", M1))
    proof = _zero_key_attack(public, m2[T.SALT], m2[T.PUBLIC_KEY])
    body = peer.tlv("/pair-setup", tlv8.encode([(T.STATE, 3), (T.PUBLIC_KEY, public), (T.PROOF, proof)]))
    assert (state_of(body), error_of(body)) == (4, TlvErrorCode.AUTHENTICATION)
    assert h.state.failed_attempts == 1
    assert not h.state.paired


# -- 2b -----------------------------------------------------------------------------------------
def _search(predicate: object, tries: int = 5000) -> int:
    for _ in range(tries):
        candidate = secrets.randbits(256)
        if predicate(candidate):  # type: ignore[operator]
            return candidate
    raise AssertionError("no candidate found")


@pytest.mark.parametrize("which", ["B", "A", "S"])
def test_02b_values_with_leading_zero_bytes_still_pair(which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Force B, A or S to start with a zero byte; aiohomekit pads them, so must we."""
    salt = secrets.token_bytes(16)
    fixed_a = secrets.randbits(256)
    if which == "A":
        fixed_a = _search(lambda a: pow(5, a, N) < 1 << (8 * KEY_LENGTH - 8))
    monkeypatch.setattr(SrpClient, "generate_private_key", staticmethod(lambda: fixed_a))
    private_b = secrets.randbits(256)
    if which == "B":
        verifier_b = SrpServer(PIN, salt=salt)._verifier
        private_b = _search(lambda b: (srp_module._K * verifier_b + pow(5, b, N)) % N < 1 << (8 * KEY_LENGTH - 8))
    if which == "S":
        client_a = pow(5, fixed_a, N).to_bytes(KEY_LENGTH, "big")
        a_int = int.from_bytes(client_a, "big")
        template = SrpServer(PIN, salt=salt)  # the verifier depends only on salt and PIN
        verifier, k = template._verifier, srp_module._K

        def s_has_leading_zero(b: int) -> bool:
            big_b = ((k * verifier + pow(5, b, N)) % N).to_bytes(KEY_LENGTH, "big")
            u = int.from_bytes(hashlib.sha512(client_a + big_b).digest(), "big")
            s = pow(a_int * pow(verifier, u, N), b, N)
            return s < 1 << (8 * KEY_LENGTH - 8)

        private_b = _search(s_has_leading_zero, tries=4000)
    h = make_harness()
    h.core.pair_setup = PairSetup(h.state, srp_factory=lambda pin: SrpServer(pin, salt=salt, private=private_b))
    data = h.peer().pair()
    assert data["AccessoryPairingID"] == h.state.device_id


# -- 3 ------------------------------------------------------------------------------------------
def test_03_wrong_pin_constant_time_counted_persisted_max_tries_and_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared = []
    real = srp_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(True)
        return real(a, b)

    monkeypatch.setattr(srp_module.hmac, "compare_digest", spy)
    h = make_harness()
    _client, body = srp_m3(h.peer(), pin="111-22-333")
    assert (state_of(body), error_of(body)) == (4, TlvErrorCode.AUTHENTICATION)
    assert compared, "proof must be compared with hmac.compare_digest"
    assert h.state.failed_attempts == 1 and h.dirty >= 1  # the caller persists it
    h.state.failed_attempts = 100
    body = h.peer().tlv("/pair-setup", M1)
    assert (state_of(body), error_of(body)) == (2, TlvErrorCode.MAX_TRIES)

    # Rate limit: M1 is expensive, so a burst of M1s gets Backoff with a retry delay.
    h2 = make_harness()
    answers = []
    for _ in range(PairSetup.BURST + 1):
        peer = h2.peer()
        answers.append(tlv8.decode_dict(peer.tlv("/pair-setup", M1)))
        peer.close()
    assert answers[-1][T.ERROR][0] == TlvErrorCode.BACKOFF and answers[-1][T.RETRY_DELAY][0] >= 1
    h2.clock.advance(PairSetup.REFILL_S * 2)
    assert T.ERROR not in tlv8.decode_dict(h2.peer().tlv("/pair-setup", M1))


# -- 4 ------------------------------------------------------------------------------------------
def test_04_busy_binding_order_and_timeout() -> None:
    h = make_harness()
    first, second = h.peer(), h.peer()
    m2 = tlv8.decode_dict(first.tlv("/pair-setup", M1))
    body = second.tlv("/pair-setup", M1)
    assert error_of(body) == TlvErrorCode.BUSY
    # M3 from the wrong connection is refused and does not disturb the first exchange.
    client = SrpClient("Pair-Setup", PIN)
    client.set_salt(bytearray(m2[T.SALT]))
    client.set_server_public_key(bytearray(m2[T.PUBLIC_KEY]))
    m3 = tlv8.encode([(T.STATE, 3), (T.PUBLIC_KEY, client.get_public_key_bytes()),
                      (T.PROOF, client.get_proof_bytes())])
    assert error_of(second.tlv("/pair-setup", m3)) == TlvErrorCode.UNKNOWN
    assert T.PROOF in tlv8.decode_dict(first.tlv("/pair-setup", m3))
    assert error_of(first.tlv("/pair-setup", m5_body(client))) is None
    assert h.state.paired

    # Out of order: M3 before M1, M5 before M4, M1 repeated mid-flow.
    h = make_harness()
    peer = h.peer()
    assert error_of(peer.tlv("/pair-setup", m3)) == TlvErrorCode.UNKNOWN
    assert error_of(peer.tlv("/pair-setup", m5_body(client))) == TlvErrorCode.UNKNOWN
    peer.tlv("/pair-setup", M1)
    assert error_of(peer.tlv("/pair-setup", m5_body(client))) == TlvErrorCode.UNKNOWN
    peer.tlv("/pair-setup", M1)
    assert error_of(peer.tlv("/pair-setup", M1)) == TlvErrorCode.UNKNOWN

    # A stalled exchange times out, after which another connection may start.
    h = make_harness()
    h.peer().tlv("/pair-setup", M1)
    other = h.peer()
    assert error_of(other.tlv("/pair-setup", M1)) == TlvErrorCode.BUSY
    h.clock.advance(PairSetup.TIMEOUT + 1)
    assert error_of(other.tlv("/pair-setup", M1)) is None


# -- 5 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ({"corrupt_tag": True}, TlvErrorCode.AUTHENTICATION),
        ({"sign_with": Ed25519PrivateKey.generate()}, TlvErrorCode.AUTHENTICATION),
        ({"identifier": b"not-a-uuid-\xff\xfe"}, TlvErrorCode.UNKNOWN),
        ({"identifier": b"x" * 37}, TlvErrorCode.UNKNOWN),
        ({"drop": T.SIGNATURE}, TlvErrorCode.UNKNOWN),
        ({"drop": T.PUBLIC_KEY}, TlvErrorCode.UNKNOWN),
    ],
)
def test_05_bad_m5_gets_error_tlv(variant: dict[str, object], expected: int) -> None:
    h = make_harness()
    peer = h.peer()
    client, _ = srp_m3(peer)
    body = peer.tlv("/pair-setup", m5_body(client, **variant))  # type: ignore[arg-type]
    assert (state_of(body), error_of(body)) == (6, expected)
    assert not h.state.paired


def test_05_fragmented_tlv_items_parse() -> None:
    h = make_harness()
    peer = h.peer()
    client, m4 = srp_m3(peer)
    # The 384-byte A in M3 travelled as two fragments; the M4 proof shows it was reassembled.
    encoded = tlv8.item(T.PUBLIC_KEY, client.get_public_key_bytes())
    assert encoded[0] == T.PUBLIC_KEY and encoded[257] == T.PUBLIC_KEY
    assert client.verify_servers_proof_bytes(tlv8.decode_dict(m4)[T.PROOF])


# -- 6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [0, 1])
def test_06_methods_flags_and_sf_after_m6(method: int) -> None:
    h = make_harness()
    peer = h.peer()
    m1 = tlv8.encode([(T.STATE, 1), (T.METHOD, method), (T.FLAGS, tlv8.uint_le(0x10, 4))])
    m2 = tlv8.decode_dict(peer.tlv("/pair-setup", m1))
    assert T.ERROR not in m2  # Transient flag: accepted and ignored (a normal pairing follows)
    client = SrpClient("Pair-Setup", PIN)
    client.set_salt(bytearray(m2[T.SALT]))
    client.set_server_public_key(bytearray(m2[T.PUBLIC_KEY]))
    peer.tlv("/pair-setup", tlv8.encode([(T.STATE, 3), (T.PUBLIC_KEY, client.get_public_key_bytes()),
                                          (T.PROOF, client.get_proof_bytes())]))
    assert h.core.txt_record()["sf"] == "1"
    peer.conn.receive_data(peer.encode_request("POST", "/pair-setup", m5_body(client),
                                               "application/pairing+tlv8"), h.clock())
    out = peer.conn.data_to_send()
    assert h.adverts == 0, "sf must not change before the M6 response is sent"
    assert state_of(out.split(b"\r\n\r\n", 1)[1]) == 6
    peer.conn.sent()
    assert h.adverts == 1 and h.core.txt_record()["sf"] == "0"

    # Flags longer than 4 bytes are malformed.
    h2 = make_harness()
    bad = tlv8.encode([(T.STATE, 1), (T.METHOD, 0), (T.FLAGS, b"\x00" * 5)])
    assert error_of(h2.peer().tlv("/pair-setup", bad)) == TlvErrorCode.UNKNOWN


# -- 7 ------------------------------------------------------------------------------------------
def _verify_m3(peer: Peer, *, identifier: bytes, signer: Ed25519PrivateKey, corrupt: bool = False) -> bytes:
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    m2 = tlv8.decode_dict(peer.tlv("/pair-verify", tlv8.encode([(T.STATE, 1), (T.PUBLIC_KEY, eph_pub)])))
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    shared = eph.exchange(X25519PublicKey.from_public_bytes(m2[T.PUBLIC_KEY]))
    key = hkdf_sha512(shared, b"Pair-Verify-Encrypt-Salt", b"Pair-Verify-Encrypt-Info")
    sig = signer.sign(eph_pub + identifier + m2[T.PUBLIC_KEY])
    sealed = seal(key, b"PV-Msg03", tlv8.encode([(T.IDENTIFIER, identifier), (T.SIGNATURE, sig)]))
    if corrupt:
        sealed = bytes([sealed[0] ^ 1]) + sealed[1:]
    return peer.tlv("/pair-verify", tlv8.encode([(T.STATE, 3), (T.ENCRYPTED_DATA, sealed)]))


def test_07_pair_verify_failures() -> None:
    h = make_harness()
    _, data = h.paired_peer()
    known = data["iOSPairingId"].encode()
    controller_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data["iOSDeviceLTSK"]))
    cases = [
        (b"unknown-controller", controller_key, False),
        (known, Ed25519PrivateKey.generate(), False),  # wrong signature
        (known, controller_key, True),  # bad tag
    ]
    for identifier, signer, corrupt in cases:
        peer = h.peer()
        body = _verify_m3(peer, identifier=identifier, signer=signer, corrupt=corrupt)
        assert (state_of(body), error_of(body)) == (4, TlvErrorCode.AUTHENTICATION)
        assert peer.conn.session is None
        assert peer.get_json("/accessories").status == 470
    # The genuine controller still verifies.
    peer = h.peer()
    assert error_of(_verify_m3(peer, identifier=known, signer=controller_key)) is None
    # Not paired: M1 is refused.
    fresh = make_harness()
    eph_pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body = fresh.peer().tlv("/pair-verify", tlv8.encode([(T.STATE, 1), (T.PUBLIC_KEY, eph_pub)]))
    assert error_of(body) == TlvErrorCode.AUTHENTICATION


# -- 8 ------------------------------------------------------------------------------------------
PROTECTED = [
    ("GET", "/accessories", b""),
    ("GET", "/characteristics?id=1.2", b""),
    ("PUT", "/characteristics", b'{"characteristics":[{"aid":1,"iid":2,"value":true}]}'),
    ("PUT", "/prepare", b'{"ttl":1000,"pid":1}'),
    ("POST", "/pairings", tlv8.encode([(T.STATE, 1), (T.METHOD, 5)])),
    ("POST", "/resource", b'{"resource-type":"image","image-width":640,"image-height":360}'),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_08_every_endpoint_needs_pair_verify(method: str, path: str, body: bytes) -> None:
    h = make_harness()
    h.core.callbacks.has_resource = True
    _, data = h.paired_peer()
    fresh = h.peer()
    msg = fresh.request(method, path, body)
    assert (msg.status, json.loads(msg.body)) == (470, {"status": -70401})
    # Mid-verify: after M2, before M4.
    mid = h.peer()
    eph_pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    mid.tlv("/pair-verify", tlv8.encode([(T.STATE, 1), (T.PUBLIC_KEY, eph_pub)]))
    msg = mid.request(method, path, body)
    assert (msg.status, json.loads(msg.body)) == (470, {"status": -70401})
    assert h.test.on.value is False  # the PUT did nothing
    assert data


# -- 9 ------------------------------------------------------------------------------------------
def test_09_pair_verify_inside_an_encrypted_session_is_refused(harness: Harness | None = None) -> None:
    h = make_harness()
    peer, _ = h.paired_peer()
    eph_pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    msg = peer.request("POST", "/pair-verify", tlv8.encode([(T.STATE, 1), (T.PUBLIC_KEY, eph_pub)]),
                       "application/pairing+tlv8")
    assert msg.status == 470
    assert peer.get_json("/accessories").status == 200  # the session is unharmed
