"""The HAP server's own work per request and per pair-verify, in memory: no sockets, no event loop.

``hap_bench.py`` measures whole servers over loopback, where the event loop and the kernel's
TCP work are most of a request's CPU and the machine's load moves every figure. This script
feeds the sans-IO core (``sidecar.hap.core.ServerCore``) the bytes a controller would send and
times only the server's side with this thread's CPU clock, so a change in our Python code shows
up even on a busy machine. The controller side (its X25519 and Ed25519 work, sealing the
requests) is done outside the timed regions.

    python -m benchmarks.hap_core_bench                    # medians of 5 rounds
    python -m benchmarks.hap_core_bench --profile          # plus cProfile's top functions
    python -m benchmarks.hap_core_bench --tree /tmp/other  # another checkout's sidecar, same script

The accessory is the one every ``hap_bench`` server serves (``benchmarks/servers/ours_server.py``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTROLLER_ID = b"bench-controller"
clock = time.thread_time


def post(path: bytes, body: bytes) -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/pairing+tlv8\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (path, len(body), body))


class Bench:
    """One paired ServerCore and a controller that drives it (imports from the chosen tree)."""

    def __init__(self, tree: Path) -> None:
        sys.path.insert(0, str(tree))
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        import sidecar
        from sidecar.hap.core import ServerCore
        from sidecar.hap.state import AccessoryState, Pairing

        self.tree = Path(sidecar.__file__).resolve().parent.parent
        build = runpy.run_path(str(tree / "benchmarks" / "servers" / "ours_server.py"), run_name="hap_core_bench")
        self.raw = (Encoding.Raw, PublicFormat.Raw)
        state = AccessoryState.create("031-45-154")
        self.key = Ed25519PrivateKey.generate()
        state.pairings[CONTROLLER_ID] = Pairing(CONTROLLER_ID, self.key.public_key().public_bytes(*self.raw), True)
        self.core = ServerCore(build["build"](), state, clock=time.monotonic)
        self.brightness = next(c for c in self.core.index.values() if c.type.upper().startswith("00000008-"))
        self.profiler: cProfile.Profile | None = None  # when set, it runs in the timed regions only

    def _start(self) -> float:
        if self.profiler is not None:
            self.profiler.enable()
        return clock()

    def _stop(self, t0: float) -> float:
        elapsed = clock() - t0
        if self.profiler is not None:
            self.profiler.disable()
        return elapsed

    def verify(self) -> tuple[Any, Any, float]:
        """One pair-verify on a new connection: (connection, controller channel, server CPU s)."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        from sidecar import tlv8
        from sidecar.hap.crypto import hkdf_sha512
        from sidecar.hap.secure_channel import SecureChannel

        ephemeral = X25519PrivateKey.generate()
        public = ephemeral.public_key().public_bytes(*self.raw)
        m1 = post(b"/pair-verify", tlv8.encode([(6, 1), (3, public)]))
        t0 = self._start()
        conn = self.core.open_connection(time.monotonic(), "127.0.0.1")
        conn.receive_data(m1, time.monotonic())
        m2 = conn.data_to_send()
        conn.sent()
        server = self._stop(t0)
        items = tlv8.decode_dict(m2.split(b"\r\n\r\n", 1)[1])
        accessory_public = items[3]
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(accessory_public))
        key = hkdf_sha512(shared, b"Pair-Verify-Encrypt-Salt", b"Pair-Verify-Encrypt-Info")
        proof = tlv8.encode([(1, CONTROLLER_ID), (10, self.key.sign(public + CONTROLLER_ID + accessory_public))])
        sealed = ChaCha20Poly1305(key).encrypt(b"\x00\x00\x00\x00PV-Msg03", proof, None)
        m3 = post(b"/pair-verify", tlv8.encode([(6, 3), (5, sealed)]))
        channel = SecureChannel(hkdf_sha512(shared, b"Control-Salt", b"Control-Write-Encryption-Key"),
                                hkdf_sha512(shared, b"Control-Salt", b"Control-Read-Encryption-Key"))
        t0 = self._start()
        conn.receive_data(m3, time.monotonic())
        conn.data_to_send()
        conn.sent()
        server += self._stop(t0)
        if conn.session is None:
            raise RuntimeError("pair-verify failed")
        return conn, channel, server

    def requests(self, conn: Any, sealed: list[bytes]) -> float:
        """Server CPU seconds per request for already sealed requests on a verified connection."""
        t0 = self._start()
        for frame in sealed:
            conn.receive_data(frame, 0.0)
            conn.data_to_send()
            conn.sent()
        return self._stop(t0) / len(sealed)


def get_request(iid: int) -> bytes:
    return b"GET /characteristics?id=1.%d HTTP/1.1\r\nHost: 127.0.0.1:51826\r\n\r\n" % iid


def put_request(iid: int, value: int) -> bytes:
    body = json.dumps({"characteristics": [{"aid": 1, "iid": iid, "value": value}]}).encode()
    return (b"PUT /characteristics HTTP/1.1\r\nHost: 127.0.0.1:51826\r\nContent-Type: application/hap+json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=5, help="rounds; figures are medians over them (default 5)")
    p.add_argument("--requests", type=int, default=10000, help="GETs and PUTs per round (default 10000)")
    p.add_argument("--verifies", type=int, default=200, help="pair-verifies per round (default 200)")
    p.add_argument("--profile", action="store_true", help="also print cProfile's top functions per path")
    p.add_argument("--tree", type=Path, default=REPO_ROOT, help="checkout whose sidecar/ to measure")
    args = p.parse_args(argv)
    bench = Bench(args.tree.resolve())
    print(f"sidecar from {bench.tree}; thread CPU time, medians of {args.rounds} rounds", flush=True)
    for _ in range(20):  # warm up the key caches and the parser's head table
        conn, channel, _ = bench.verify()
        conn.connection_lost()
    conn, channel, _ = bench.verify()
    iid = bench.brightness.iid

    def verify_round() -> float:
        times = []
        for _ in range(args.verifies):
            c, _, server = bench.verify()
            c.connection_lost()
            times.append(server)
        return statistics.median(times)

    paths: dict[str, Callable[[], float]] = {
        "pair-verify, server side": verify_round,
        "GET /characteristics, one value": lambda: bench.requests(
            conn, [channel.encrypt(get_request(iid)) for _ in range(args.requests)]),
        "PUT /characteristics, one value": lambda: bench.requests(
            conn, [channel.encrypt(put_request(iid, i % 101)) for i in range(args.requests)]),
    }
    for name, run in paths.items():
        figures = [run() for _ in range(args.rounds)]
        print(f"{name:34s} {statistics.median(figures) * 1e6:8.1f} us   (rounds: "
              + ", ".join(f"{f * 1e6:.1f}" for f in figures) + ")", flush=True)
    if args.profile:
        for name, run in paths.items():
            bench.profiler = cProfile.Profile(clock)
            run()
            print(f"\n### {name}: the server's side only (cProfile; its overhead inflates every Python call)")
            pstats.Stats(bench.profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
            bench.profiler = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
