"""HDS relay benchmark: fragments in -> dataSend frames on a loopback socket -> read by a hub.

Measures the whole accessory-side hot path as the camera layer drives it (``RecordingStream.
send_fragment`` -> chunking -> OPACK message -> one ChaCha20-Poly1305 frame per chunk -> asyncio
transport with backpressure) against a hub-side reader in a *separate process* that decrypts
and decodes every frame (so it runs on the other core instead of stealing ours). The reference,
measured in the same run on the same bytes, is raw ChaCha20-Poly1305 encryption of the payload
in 256 KiB pieces: the relay cannot beat it, since it encrypts every byte exactly once.

Figures: relay MB/s (wall time from the first ``send_init`` until the hub has decrypted the
last frame), server CPU seconds per MB (user+sys of this process over the same interval),
hub CPU per MB, raw AEAD MB/s, and relay/raw ratio (target >= 0.5).

    .venv/bin/python -m benchmarks.hds_bench [--mib 1024] [--fragment-kib 1024] [--runs 3]

Loopback only (127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from benchmarks.kit import REPO
from benchmarks.kit.cpu import own_cpu_s
from sidecar.hds import HDSConfig, HDSServer, RecordingStream, StreamClosedError, frames, keys, messages
from sidecar.hds.datasend import MAX_CHUNK
from tests.hub.hds_client import build_setup_write, parse_setup_response

HOST = "127.0.0.1"
MB = 1_000_000


class OpenGate:
    def recording_active(self) -> bool:
        return True

    def camera_active(self) -> bool:
        return True

    def has_selected_configuration(self) -> bool:
        return True


# --------------------------------------------------------------------------------------------
# hub side (child process): blocking socket, decrypt + decode everything, report when done


def hub_main(port: int, secret: bytes, controller_salt: bytes, accessory_salt: bytes, total: int = 0) -> None:
    """A lean hub: frames are decrypted from the receive buffer into a second one, then decoded."""
    session = keys.controller_keys(secret, controller_salt, accessory_salt)
    enc = frames.FrameEncryptor(session.encrypt_key)
    aead = ChaCha20Poly1305(session.decrypt_key)
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(enc.seal(messages.encode_request("control", "hello", 1, {})))
    sock.sendall(
        enc.seal(
            messages.encode_request(
                "dataSend", "open", 2, {"target": "controller", "type": "ipcamera.recording", "streamId": 1}
            )
        )
    )
    payload_bytes = 0
    counter = 0
    cpu0 = own_cpu_s()
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    scratch = memoryview(bytearray(frames.MAX_PAYLOAD))  # AEAD output may not overlap its input
    filled = 0
    while True:
        n = sock.recv_into(view[filled:])
        if not n:
            print("eof", flush=True)
            return
        if total:  # --hub-reads-only: count bytes, decrypt nothing (shows the accessory's ceiling)
            payload_bytes += n
            if payload_bytes >= total:
                print(f"done {payload_bytes} {own_cpu_s() - cpu0:.6f}", flush=True)
                return
            continue
        filled += n
        pos = 0
        while filled - pos >= frames.HEADER_LENGTH:
            length = int.from_bytes(view[pos + 1 : pos + 4], "big")
            end = pos + frames.HEADER_LENGTH + length + frames.TAG_LENGTH
            if end > filled:
                break
            body = view[pos + frames.HEADER_LENGTH : end]
            plain = scratch[:length]
            aead.decrypt_into(frames.nonce(counter), body, view[pos : pos + frames.HEADER_LENGTH], plain)
            counter += 1
            message = messages.parse_message(plain)
            pos = end
            if message.header.topic != "data":
                continue
            msg = message.body
            assert isinstance(msg, dict)
            payload_bytes += len(msg["packets"][0]["data"])  # type: ignore[index, arg-type]
            if msg.get("endOfStream") is True:
                print(f"done {payload_bytes} {own_cpu_s() - cpu0:.6f}", flush=True)
                sock.close()
                return
        view[: filled - pos] = view[pos:filled]  # keep the partial frame (< 1 frame)
        filled -= pos


# --------------------------------------------------------------------------------------------
# accessory side


@dataclass
class RunResult:
    payload_bytes: int
    wall: float
    server_cpu: float
    hub_cpu: float

    @property
    def mb_s(self) -> float:
        return self.payload_bytes / MB / self.wall


async def relay_once(total: int, pool: list[bytes], high_water: int = 1 << 20, reads_only: bool = False) -> RunResult:
    fragment_size = len(pool[0])
    count = max(1, total // fragment_size)
    started: dict[str, float] = {}
    producers: list[asyncio.Task[None]] = []

    async def produce(stream: RecordingStream) -> None:
        started["wall"], started["cpu"] = time.perf_counter(), own_cpu_s()
        try:
            await stream.send_init(b"\x00\x00\x00\x18ftypiso5" + bytes(12))
            for i in range(count):
                await stream.send_fragment(pool[i % len(pool)], end_of_stream=i == count - 1)
        except StreamClosedError:
            pass

    server = HDSServer(
        OpenGate(), lambda s: producers.append(asyncio.create_task(produce(s))), host=HOST,
        config=HDSConfig(high_water=high_water),
    )
    secret, controller_salt = os.urandom(32), os.urandom(32)
    response = parse_setup_response(server.setup(build_setup_write(controller_salt), shared_secret=secret))
    hub = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.hds_bench",
        "--hub",
        str(response.port),
        secret.hex(),
        controller_salt.hex(),
        response.accessory_salt.hex(),
        str(count * fragment_size if reads_only else 0),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert hub.stdout is not None
        line = (await hub.stdout.readline()).decode().split()
        end_wall, end_cpu = time.perf_counter(), own_cpu_s()
        await hub.wait()
    finally:
        if hub.returncode is None:
            hub.kill()
            await hub.wait()
        for task in producers:
            task.cancel()
        await asyncio.gather(*producers, return_exceptions=True)
        await server.aclose()
    if not line or line[0] != "done":
        raise RuntimeError(f"hub did not finish: {line}")
    return RunResult(int(line[1]), end_wall - started["wall"], end_cpu - started["cpu"], float(line[2]))


def fragment_pool(fragment_size: int) -> list[bytes]:
    """The fragments both measurements work on (4 distinct buffers, cycled)."""
    return [os.urandom(fragment_size) for _ in range(4)]


def raw_aead(total: int, pool: list[bytes], chunk: int = MAX_CHUNK) -> float:
    """MB/s of ChaCha20-Poly1305 encryption alone over the same bytes the relay sends: the same
    fragments, cut into the same 256 KiB pieces, in the same order."""
    aead = ChaCha20Poly1305(os.urandom(32))
    header = b"\x01\x04\x00\x00"
    views = [memoryview(f)[i : i + chunk] for f in pool for i in range(0, len(f), chunk)]
    done = 0
    counter = 0
    t0 = time.perf_counter()
    while done < total:
        piece = views[counter % len(views)]
        aead.encrypt(counter.to_bytes(12, "little"), piece, header)
        done += len(piece)
        counter += 1
    return done / MB / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="payload per run (MiB)")
    parser.add_argument("--fragment-kib", type=int, default=1024, help="fragment size (KiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--high-water", type=int, default=1 << 20, help="HDSServer high_water (bytes)")
    parser.add_argument("--hub-reads-only", action="store_true", help="hub counts bytes without decrypting")
    parser.add_argument("--hub", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hub:
        port, secret, csalt, asalt, reads_only_total = args.hub
        hub_main(int(port), bytes.fromhex(secret), bytes.fromhex(csalt), bytes.fromhex(asalt), int(reads_only_total))
        return
    total, fragment = args.mib << 20, args.fragment_kib << 10
    relay: list[RunResult] = []
    raw: list[float] = []
    pool = fragment_pool(fragment)
    for _ in range(args.runs):  # interleaved, so both see the same machine state
        raw.append(raw_aead(total, pool))
        relay.append(asyncio.run(relay_once(total, pool, args.high_water, args.hub_reads_only)))
    best_relay = max(relay, key=lambda r: r.mb_s)
    best_raw = max(raw)
    med_relay = statistics.median(r.mb_s for r in relay)
    med_raw = statistics.median(raw)
    server_cpu_mb = statistics.median(r.server_cpu / (r.payload_bytes / MB) * 1000 for r in relay)
    hub_cpu_mb = statistics.median(r.hub_cpu / (r.payload_bytes / MB) * 1000 for r in relay)
    raw_cpu_mb = 1000 / med_raw
    print(
        f"HDS relay, {args.mib} MiB per run in {args.fragment_kib} KiB fragments, {args.runs} runs "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores)"
    )
    print()
    print("| figure | relay (ours) | raw ChaCha20-Poly1305 | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| throughput, median (MB/s) | {med_relay:.0f} | {med_raw:.0f} | {med_relay / med_raw:.2f} |")
    print(f"| throughput, best (MB/s) | {best_relay.mb_s:.0f} | {best_raw:.0f} | {best_relay.mb_s / best_raw:.2f} |")
    print(f"| accessory CPU per MB (ms) | {server_cpu_mb:.2f} | {raw_cpu_mb:.2f} | {server_cpu_mb / raw_cpu_mb:.2f} |")
    print(f"| hub-side reader CPU per MB (ms, other process) | {hub_cpu_mb:.2f} | | |")
    print()
    target = "met" if med_relay / med_raw >= 0.5 else "NOT met"
    print(f"target relay >= 0.5 x raw AEAD: {target}")


if __name__ == "__main__":
    main()
