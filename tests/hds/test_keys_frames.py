"""Key derivation and frames: the vectors of docs/protocol.md §Test vectors, counters, limits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.hds import frames, keys, messages
from sidecar.hds.errors import FrameError, SetupError

READ_KEY = "fc265ba8c83f642c8153fb71ce770e5cbcff453083dfb450b6aa487d52d6db12"
WRITE_KEY = "83c1a7e88f5b5e1282d36a1ef7a181cd9ddb485af4a32bc3fcdaa0a8d9b25874"
HELLO_FRAME = (
    "0100003fdb039b2a63580ff945d7e0eba5a55362acdfe77a44186353fc499cddfb343cba8d64e522cbf665c483eef3a3f31636"
    "7d168d1bf4de440aeb20d0a2404fec8849d8764873f673e143c38ffc5fe5dd54"
)
IKM = bytes(range(32))


def test_key_derivation_vector_both_sides() -> None:
    acc = keys.accessory_keys(IKM, b"\xaa" * 32, b"\xbb" * 32)
    ctl = keys.controller_keys(IKM, b"\xaa" * 32, b"\xbb" * 32)
    assert acc.encrypt_key.hex() == READ_KEY and acc.decrypt_key.hex() == WRITE_KEY
    assert ctl.encrypt_key.hex() == WRITE_KEY and ctl.decrypt_key.hex() == READ_KEY
    assert "fc26" not in repr(acc)


def test_salt_order_matters_and_lengths_are_checked() -> None:
    swapped = keys.accessory_keys(IKM, b"\xbb" * 32, b"\xaa" * 32)
    assert swapped.encrypt_key.hex() != READ_KEY
    with pytest.raises(SetupError):
        keys.accessory_keys(IKM, b"\xaa" * 31, b"\xbb" * 32)
    with pytest.raises(SetupError):
        keys.accessory_keys(b"", b"\xaa" * 32, b"\xbb" * 32)


def test_hello_response_frame_vector() -> None:
    acc = keys.accessory_keys(IKM, b"\xaa" * 32, b"\xbb" * 32)
    payload = messages.encode_response("control", "hello", 1, 0, {})
    assert len(payload) == 63
    frame = frames.FrameEncryptor(acc.encrypt_key).seal(payload)
    assert bytes(frame).hex() == HELLO_FRAME
    # and the controller reads it back
    reader = frames.FrameReader()
    reader.feed(frame)
    got = reader.next_frame()
    assert got is not None and got.header == bytes.fromhex("0100003f")
    ctl = keys.controller_keys(IKM, b"\xaa" * 32, b"\xbb" * 32)
    assert frames.FrameDecryptor(ctl.decrypt_key).open(got) == payload


def test_counters_advance_per_frame_and_nonce_layout() -> None:
    assert frames.nonce(1) == bytes(4) + (1).to_bytes(8, "little")
    key = bytes(32)
    enc = frames.FrameEncryptor(key)
    dec = frames.FrameDecryptor(key)
    reader = frames.FrameReader()
    for i in range(3):
        reader.feed(enc.seal(b"message %d" % i))
    assert enc.counter == 3
    opened = []
    while (frame := reader.next_frame()) is not None:
        opened.append(dec.open(frame))
    assert opened == [b"message 0", b"message 1", b"message 2"]
    assert dec.counter == 3


def test_out_of_order_or_replayed_frame_fails() -> None:
    key = bytes(32)
    enc = frames.FrameEncryptor(key)
    first, second = bytes(enc.seal(b"a")), bytes(enc.seal(b"b"))
    reader = frames.FrameReader()
    reader.feed(second + first)
    dec = frames.FrameDecryptor(key)
    frame = reader.next_frame()
    assert frame is not None
    with pytest.raises(FrameError):
        dec.open(frame)


def test_tampered_header_or_body_fails_authentication() -> None:
    key = bytes(32)
    sealed = bytearray(frames.FrameEncryptor(key).seal(b"hello"))
    for index in (0, 5, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[index] ^= 1
        reader = frames.FrameReader()
        reader.feed(bad)
        frame = reader.next_frame()
        assert frame is not None
        with pytest.raises(FrameError):
            frames.FrameDecryptor(key).open(frame)
        assert frames.try_open(key, frame) is None


def test_frames_split_across_reads() -> None:
    key = bytes(32)
    data = bytes(frames.FrameEncryptor(key).seal(b"x" * 1000))
    reader = frames.FrameReader()
    for i in range(len(data) - 1):
        reader.feed(data[i : i + 1])
        assert reader.next_frame() is None
    reader.feed(data[-1:])
    frame = reader.next_frame()
    assert frame is not None and frames.FrameDecryptor(key).open(frame) == b"x" * 1000
    assert reader.buffered == 0


def test_oversize_frame_is_refused_from_its_header() -> None:
    reader = frames.FrameReader()
    reader.feed(bytes([1, 0x10, 0x00, 0x00]))  # 2**20 > 2**20 - 1
    with pytest.raises(FrameError):
        reader.next_frame()
    reader = frames.FrameReader()
    reader.feed(bytes([1, 0x0F, 0xFF, 0xFF]))  # exactly the limit: wait for the body
    assert reader.next_frame() is None


def test_max_payload_on_send() -> None:
    enc = frames.FrameEncryptor(bytes(32))
    assert len(enc.seal(bytes(frames.MAX_PAYLOAD))) == frames.MAX_PAYLOAD + 20
    with pytest.raises(FrameError):
        enc.seal(bytes(frames.MAX_PAYLOAD + 1))
    assert enc.counter == 1


def test_try_open_ignores_other_frame_types() -> None:
    key = bytes(32)
    sealed = bytearray(frames.FrameEncryptor(key).seal(b"x"))
    sealed[0] = 3
    reader = frames.FrameReader()
    reader.feed(sealed)
    frame = reader.next_frame()
    assert frame is not None and frame.frame_type == 3
    assert frames.try_open(key, frame) is None


def test_seal_parts_equals_seal_of_the_joined_plaintext() -> None:
    big = bytearray(range(256)) * 40
    parts: list[bytes | memoryview] = [b"head", memoryview(big)[3:9000], b"", b"tail"]
    joined = b"".join(bytes(p) for p in parts)
    a, b = frames.FrameEncryptor(bytes(32)), frames.FrameEncryptor(bytes(32))
    assert a.seal_parts(parts) == b.seal(joined)
    assert a.seal_parts([b"x"]) == b.seal(b"x")  # counters advance alike
    with pytest.raises(FrameError):
        a.seal_parts([bytes(frames.MAX_PAYLOAD), b"!"])


def test_event_parts_do_not_copy_large_data_and_join_to_the_plain_encoding() -> None:
    chunk = bytearray(b"v" * 300_000)
    body = {"streamId": 1, "packets": [{"data": memoryview(chunk), "metadata": {"dataTotalSize": 300_000}}]}
    parts = messages.encode_event_parts("dataSend", "data", body)
    assert any(isinstance(p, memoryview) and p.obj is chunk for p in parts)
    assert b"".join(bytes(p) for p in parts) == messages.encode_event("dataSend", "data", body)


def test_seal_batch_equals_sealing_each_payload_in_turn() -> None:
    key = bytes(range(32))
    a, b = frames.FrameEncryptor(key), frames.FrameEncryptor(key)
    big = memoryview(bytes(range(256)) * 1200)
    payloads: list[list[bytes | memoryview]] = [[b"head", big[:100_000], b"tail"], [b"x"], [big, b""]]
    batch = a.seal_batch(payloads)
    assert batch == b"".join(b.seal_parts(p) for p in payloads)
    assert a.counter == b.counter == 3
    reader, decryptor = frames.FrameReader(), frames.FrameDecryptor(key)
    reader.feed(batch)
    opened = []
    while (frame := reader.next_frame()) is not None:
        opened.append(decryptor.open(frame))
    assert opened == [b"".join(bytes(x) for x in p) for p in payloads]
    with pytest.raises(FrameError):
        a.seal_batch([[b"ok"], [bytes(frames.MAX_PAYLOAD), b"!"]])
    assert a.counter == 3  # nothing sealed when one payload is too big


def _span(buffer: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Start and end address of a buffer's bytes (numpy reads read-only buffers too)."""
    view = memoryview(buffer)
    if view.nbytes == 0:
        return (0, 0)
    start = int(np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0])
    return start, start + view.nbytes


class _NoOverlapAEAD:
    """The real cipher, refusing what cryptography documents as unsupported: an output buffer
    that shares memory with the input (releases before 51 accepted it silently)."""

    calls = 0

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def encrypt_into(self, nonce: bytes, data: Any, associated_data: Any, buf: Any) -> int:
        (a0, a1), (b0, b1) = _span(data), _span(buf)
        assert a1 <= b0 or b1 <= a0, "encrypt_into called with overlapping input and output"
        type(self).calls += 1
        return self._aead.encrypt_into(nonce, data, associated_data, buf)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.lists(st.integers(0, 90_000), min_size=1, max_size=3), min_size=1, max_size=5),
    reuse=st.booleans(),
)
def test_sealing_never_reads_and_writes_the_same_memory(sizes: list[list[int]], reuse: bool) -> None:
    media = memoryview(bytes(range(256)) * 1100)
    payloads: list[list[bytes | memoryview]] = [[media[:n] for n in parts] for parts in sizes]
    expected = [b"".join(bytes(p) for p in parts) for parts in payloads]
    key = bytes(range(32))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(frames, "ChaCha20Poly1305", _NoOverlapAEAD)
        enc = frames.FrameEncryptor(key)
        into = bytearray(frames.sealed_bound(sum(map(len, expected))) + 65536) if reuse else None
        before = _NoOverlapAEAD.calls
        batch = bytes(enc.seal_batch(payloads, into=into))
        batch += enc.seal_parts([media[:10], b"x"]) + enc.seal(b"close")
        assert _NoOverlapAEAD.calls - before == len(payloads) + 2
    reader, decryptor = frames.FrameReader(), frames.FrameDecryptor(key)
    reader.feed(batch)
    opened = []
    while (frame := reader.next_frame()) is not None:
        opened.append(decryptor.open(frame))
    assert opened == [*expected, bytes(media[:10]) + b"x", b"close"]


def test_one_staging_buffer_serves_every_encryptor_of_a_thread() -> None:
    media = memoryview(bytes(300_000))
    first = frames.FrameEncryptor(bytes(32))
    first.seal_batch([[b"h", media[:262_144]], [b"h", media[:1000]]])
    staging = frames._staging_for(0)
    assert len(staging) >= 262_145
    frames.FrameEncryptor(bytes(range(32))).seal_batch([[b"h", media[:200_000]]])  # a new connection
    assert frames._staging_for(0) is staging  # no new memory for it
