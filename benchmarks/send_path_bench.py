"""The recording send path in memory: where its CPU goes per MB, against the AEAD in the same run.

What ``HDSConnection.send_fragment`` does to a fragment before the socket, step by step, on this
thread and measured with this thread's CPU clock (so other programs' load shifts the figures far
less than wall time would): the chunks' ``data`` event bodies, their OPACK (the general encoder
and the direct one the connection uses), the one copy of the media into the staging buffer, and
the sealing into a reused output buffer. The reference is ChaCha20-Poly1305 alone on the same
number of bytes in 256 KiB pieces, as ``recording_bench`` measures it. No socket: the kernel's
share of the send path is ``recording_bench``'s "loopback send" figure.

    .venv/bin/python -m benchmarks.send_path_bench [--fragments 300] [--rounds 5]

Fragments are 1.08 MB (a 4 s fragment of a 2 Mbps camera), eight different ones in turn so that
the media is not all in the processor's cache, as a camera's fragments are not. Each figure is
the best of ``--rounds`` rounds, the variants alternating within each round.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from benchmarks.kit.cpu import machine_busy_s, own_cpu_s
from sidecar.hds import frames, messages, opack
from sidecar.hds.datasend import MAX_CHUNK, DataSendStream

MB = 1_000_000
FRAGMENT = 1_080_000
KEY = bytes(range(32))


def run(fragments: int, rounds: int) -> None:
    media = [bytearray(os.urandom(FRAGMENT)) for _ in range(8)]
    piece = os.urandom(MAX_CHUNK)
    mb = fragments * FRAGMENT / MB

    def stream() -> DataSendStream:
        s = DataSendStream(1)
        list(s.init_segment(b"init"))
        return s

    def aead() -> None:
        box = ChaCha20Poly1305(KEY)
        for i in range(fragments * FRAGMENT // MAX_CHUNK):
            box.encrypt(frames.nonce(i), piece, b"h")

    def aead_cold() -> None:
        box, out = ChaCha20Poly1305(KEY), bytearray(MAX_CHUNK + 16)
        n = 0
        for i in range(fragments):
            view = memoryview(media[i % 8])
            for start in range(0, FRAGMENT, MAX_CHUNK):
                chunk = view[start : start + MAX_CHUNK]
                box.encrypt_into(frames.nonce(n), chunk, b"h", memoryview(out)[: chunk.nbytes + 16])
                n += 1

    def copy() -> None:
        staging = bytearray(FRAGMENT)
        for i in range(fragments):
            staging[:] = media[i % 8]

    def bodies() -> None:
        s = stream()
        for i in range(fragments):
            list(s.fragment(media[i % 8]))

    def opack_general() -> None:
        s = stream()
        for i in range(fragments):
            [messages.encode_event_parts("dataSend", "data", b) for b in s.fragment(media[i % 8])]

    def opack_direct() -> None:
        s = stream()
        for i in range(fragments):
            [messages.encode_data_event_parts(b) for b in s.fragment(media[i % 8])]

    def general(body: dict[str, opack.Value]) -> list[bytes | memoryview]:
        return messages.encode_event_parts("dataSend", "data", body)

    def path(encode: Callable[[dict[str, opack.Value]], list[bytes | memoryview]]) -> Callable[[], None]:
        def send() -> None:
            s, sealer = stream(), frames.FrameEncryptor(KEY)
            spare: bytearray | None = None
            for i in range(fragments):
                payloads = [encode(b) for b in s.fragment(media[i % 8])]
                sealed = sealer.seal_batch(payloads, into=spare)
                spare = sealed.obj if isinstance(sealed.obj, bytearray) else None
        return send

    variants: dict[str, Callable[[], None]] = {
        "AEAD seal alone, 256 KiB pieces in cache (the reference)": aead,
        "AEAD seal of the fragments' bytes into a reused buffer": aead_cold,
        "copy of the fragments' bytes (the staging copy)": copy,
        "data event bodies (chunking)": bodies,
        "bodies + OPACK, general encoder": opack_general,
        "bodies + OPACK, direct (what the connection uses)": opack_direct,
        "send path without the socket, general encoder": path(general),
        "send path without the socket (what the connection runs)": path(messages.encode_data_event_parts),
    }
    best = dict.fromkeys(variants, float("inf"))
    wall0, busy0, own0 = time.monotonic(), machine_busy_s(), own_cpu_s()
    for _ in range(rounds):
        for name, fn in variants.items():
            t0 = time.thread_time()
            fn()
            best[name] = min(best[name], time.thread_time() - t0)
    wall, other = time.monotonic() - wall0, (machine_busy_s() - busy0) - (own_cpu_s() - own0)
    reference = best[next(iter(variants))]
    print(f"{fragments} fragments of {FRAGMENT / MB:.2f} MB per round, best of {rounds} rounds; "
          f"other programs used {100 * other / wall:.0f}% of a core meanwhile; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| step | ms/MB | ratio to AEAD seal |")
    print("|---|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {1000 * seconds / mb:.3f} | {seconds / reference:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fragments", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(args.fragments, args.rounds)


if __name__ == "__main__":
    main()
