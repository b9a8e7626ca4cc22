"""HAP server benchmark: the same aiohomekit client load against several HAP accessory servers.

Run ``python -m benchmarks.hap_bench --help``; ``benchmarks/README.md`` explains every figure.

Why the numbers look the way they do: on a 2-core machine the Python client (aiohomekit) shares the
cores with the server and is as slow per request as the servers are, so requests/s and latency say as
much about the *client* as about the server. The figure that compares servers is the **server's own
CPU time** (user+sys from psutil on the server process, read before and after each phase), expressed
per 1000 requests; the tables also show server and client CPU % of one core so it is visible who was
the bottleneck. Each server runs as its own subprocess (``benchmarks/servers/*``) so that this CPU time
is the server's and nothing else's.

Everything stays on 127.0.0.1: the servers are started with mDNS disabled and the client pairs by
address (``IpDiscovery`` with a hand-made ``HomeKitService``), never by discovery.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import psutil
from aiohomekit import Controller
from aiohomekit.controller.abstract import AbstractPairingData
from aiohomekit.controller.ip import IpDiscovery, IpPairing
from aiohomekit.model.categories import Categories
from aiohomekit.model.feature_flags import FeatureFlags
from aiohomekit.model.status_flags import StatusFlags
from aiohomekit.protocol import get_session_keys
from aiohomekit.protocol.tlv import TLV
from aiohomekit.zeroconf import HomeKitService

from benchmarks.kit.cpu import machine_busy_s, process_cpu_s, rss_mib
from benchmarks.kit.stats import percentile
from tests.support.ports import free_port

HOST = "127.0.0.1"
SETUP_CODE = "031-45-154"
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SERVERS_DIR = BENCH_DIR / "servers"
NODE_MODULES = REPO_ROOT / "tests" / "interop" / "node" / "node_modules"
BASELINE = "hap-python"  # every ratio is "this server / HAP-python", as in the targets
SUBSCRIBERS = 32

# HAP short UUIDs (upper-case hex) of what the harness touches; iids differ per server, types do not.
T_LIGHTBULB, T_BRIGHTNESS = "43", "8"
T_SWITCH, T_ON = "49", "25"
T_PROG_SWITCH, T_PSE = "89", "73"


# --------------------------------------------------------------------------------------------------
# Server table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """How to start one HAP server under the common contract (see benchmarks/README.md)."""

    name: str
    script: Path
    interpreter: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, port: int, state_dir: Path) -> list[str]:
        return [*self.interpreter, str(self.script), str(port), str(state_dir)]


SERVERS: dict[str, ServerSpec] = {
    # ---- SLOT FOR OUR SERVER -------------------------------------------------------------------
    # The lead adds benchmarks/servers/ours_server.py (sidecar/hap/); until it exists this row is
    # skipped with a note. Same contract as the two reference scripts below.
    "ours": ServerSpec("ours", SERVERS_DIR / "ours_server.py", (sys.executable,)),
    # ---- reference servers ----------------------------------------------------------------------
    "hap-python": ServerSpec("hap-python", SERVERS_DIR / "hap_python_server.py", (sys.executable,)),
    "hap-nodejs": ServerSpec(
        "hap-nodejs",
        SERVERS_DIR / "hap_nodejs_server.js",
        ("node",),
        {"NODE_PATH": str(NODE_MODULES)},
    ),
}

# Issue 2 targets, checked for every server other than the baseline.
TARGET_CPU_RATIO = 0.5
TARGET_PAIR_VERIFY_MS = 1.5
BACKGROUND_WARN_PCT = 10  # other programs' CPU (% of one core) above which a run is flagged as noisy


# --------------------------------------------------------------------------------------------------
# Load profile
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How much load each phase applies. ``--quick`` swaps in a small one for smoke runs."""

    pair_setups: int = 3
    pair_verifies: int = 300
    warmup: int = 200
    seq_requests: int = 5000
    per_session_requests: int = 250  # x 32 sessions = 8000 requests per concurrent phase
    immediate_events: int = 100
    coalesced_writes: int = 100  # Brightness 1..100, one distinct value per write
    coalesced_interval_s: float = 0.010
    event_wait_s: float = 1.0
    tail_wait_s: float = 3.0


QUICK = Profile(
    pair_setups=1,
    pair_verifies=20,
    warmup=20,
    seq_requests=200,
    per_session_requests=10,
    immediate_events=10,
    coalesced_writes=30,
)


# --------------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------------


class CpuMeter:
    """User+sys CPU seconds of one process (the server) and of ourselves (the client).

    Reading both around a phase shows which side was the bottleneck: a client near 100% of one core
    with a server well below means requests/s and latency describe the client, not the server.
    """

    def __init__(self, pid: int) -> None:
        self.server = psutil.Process(pid)
        self.client = psutil.Process()

    def snapshot(self) -> tuple[float, float, float]:
        return time.perf_counter(), process_cpu_s(self.server), process_cpu_s(self.client)

    machine_busy_s = staticmethod(machine_busy_s)

    def rss_mib(self) -> float:
        return rss_mib(self.server)


@dataclass
class PhaseTimer:
    """Collects wall time and server/client CPU around a block of work."""

    meter: CpuMeter
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __enter__(self) -> PhaseTimer:
        self._start = self.meter.snapshot()
        return self

    def __exit__(self, *_exc: object) -> None:
        end = self.meter.snapshot()
        self.wall_s = end[0] - self._start[0]
        self.server_cpu_s = end[1] - self._start[1]
        self.client_cpu_s = end[2] - self._start[2]


def request_figures(timer: PhaseTimer, latencies_s: list[float], errors: int) -> dict[str, float]:
    """The figures every request phase reports (see README: 'request phases')."""
    n = len(latencies_s)
    return {
        "requests": n,
        "errors": errors,
        "rps": n / timer.wall_s if timer.wall_s else math.nan,
        "p50_ms": percentile(latencies_s, 50) * 1e3,
        "p99_ms": percentile(latencies_s, 99) * 1e3,
        "server_cpu_s_per_1000": timer.server_cpu_s / n * 1000 if n else math.nan,
        "server_cpu_pct": 100 * timer.server_cpu_s / timer.wall_s if timer.wall_s else math.nan,
        "client_cpu_pct": 100 * timer.client_cpu_s / timer.wall_s if timer.wall_s else math.nan,
    }


# --------------------------------------------------------------------------------------------------
# Server process management
# --------------------------------------------------------------------------------------------------


_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def kill_all_servers() -> None:
    """Last-resort cleanup (Ctrl-C, crash): terminate every server we started, by PID."""
    for pid, proc in list(_LIVE.items()):
        stop_process(proc)
        _LIVE.pop(pid, None)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM (the contract), then SIGKILL if the server ignores it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=grace_s)
    _LIVE.pop(proc.pid, None)


class ServerProcess:
    """One server subprocess with a fresh state dir; usable as an async context manager."""

    def __init__(self, spec: ServerSpec, start_timeout_s: float = 30.0) -> None:
        self.spec = spec
        self.port = free_port()
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"hap-bench-{spec.name}-"))
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}.log"
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> ServerProcess:
        self._spawn()
        try:
            await self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        """Popen is quick (fork+exec), so doing it synchronously does not stall the loop."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.spec.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
        with self.log_path.open("wb") as log:
            # Own session: a Ctrl-C in the terminal reaches only us, and we stop the server by PID.
            self.proc = subprocess.Popen(
                self.spec.argv(self.port, self.state_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                env=env,
                start_new_session=True,
            )
        _LIVE[self.proc.pid] = self.proc

    async def _wait_listening(self) -> None:
        assert self.proc is not None
        want = f"LISTENING {HOST}:{self.port}"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if want in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.spec.name} did not print {want!r} (exit={self.proc.poll()}):\n{tail}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, keep_log: bool = False) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if keep_log:
            print(f"note: {self.spec.name}'s output is kept in {self.log_path}", flush=True)
        else:
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    async def __aexit__(self, exc_type: type[BaseException] | None, *_rest: object) -> None:
        # Keep the server's output when a phase failed: it usually says why.
        self.stop(keep_log=exc_type is not None and issubclass(exc_type, Exception))


# --------------------------------------------------------------------------------------------------
# Client helpers (aiohomekit, as in docs/testing.md §Driving the server with aiohomekit)
# --------------------------------------------------------------------------------------------------


def _description(port: int) -> HomeKitService:
    """What mDNS would have told us; with FeatureFlags(0) aiohomekit uses pair-setup Method 0."""
    return HomeKitService(
        name="bench",
        id="00:00:00:00:00:00",
        model="",
        feature_flags=FeatureFlags(0),
        status_flags=StatusFlags.UNPAIRED,
        config_num=1,
        state_num=1,
        category=Categories.OTHER,
        protocol_version="1.1",
        type="_hap._tcp.local.",
        address=HOST,
        addresses=[HOST],
        port=port,
    )


async def pair_setup(controller: Controller, port: int) -> IpPairing:
    """M1..M6 over a plaintext connection; returns a pairing whose session is not yet verified."""
    discovery = IpDiscovery(controller, _description(port))
    try:
        finish = await discovery.async_start_pairing("bench")
        return cast(IpPairing, await finish(SETUP_CODE))
    finally:
        await discovery.close()


class BenchPairing(IpPairing):
    """An IpPairing that also hands every raw EVENT body to ``sink``.

    aiohomekit folds an EVENT into a dict keyed by (aid, iid) before its listeners see it, which keeps
    one value per characteristic. HAP-NodeJS batches every queued value of a characteristic into one
    EVENT (newest first), so counting deliveries needs the list as it came off the wire.
    """

    sink: Callable[[float, list[dict[str, Any]]], None] | None = None

    def event_received(self, event: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink(time.perf_counter(), event.get("characteristics", []))
        super().event_received(event)


async def open_session(controller: Controller, pairing_data: AbstractPairingData) -> BenchPairing:
    """A new TCP connection + pair-verify (aiohomekit verifies lazily, so force it here)."""
    session = BenchPairing(controller, pairing_data)
    await session._ensure_connected()
    return session


async def close_sessions(sessions: Iterable[IpPairing]) -> None:
    await asyncio.gather(*(s.shutdown() for s in sessions), return_exceptions=True)


@dataclass(frozen=True)
class Iids:
    brightness: int
    trigger_on: int
    switch_event: int
    characteristics: int


def _short_type(t: str) -> str:
    t = t.upper()
    if t.endswith("-0000-1000-8000-0026BB765291"):
        t = t.split("-", 1)[0]
    return t.lstrip("0") or "0"


async def find_iids(session: IpPairing) -> Iids:
    """Look characteristics up by type: each server numbers its iids differently."""
    resp = await session.connection.get("/accessories")
    accessories = json.loads(bytes(resp.body))["accessories"]
    acc = next(a for a in accessories if a["aid"] == 1)
    found: dict[tuple[str, str], int] = {}
    count = 0
    for svc in acc["services"]:
        for ch in svc["characteristics"]:
            count += 1
            found.setdefault((_short_type(svc["type"]), _short_type(ch["type"])), int(ch["iid"]))
    return Iids(
        brightness=found[(T_LIGHTBULB, T_BRIGHTNESS)],
        trigger_on=found[(T_SWITCH, T_ON)],
        switch_event=found[(T_PROG_SWITCH, T_PSE)],
        characteristics=count,
    )


def put_body(iid: int, value: Any) -> bytes:
    return json.dumps({"characteristics": [{"aid": 1, "iid": iid, "value": value}]}).encode()


async def timed_get(session: IpPairing, target: str) -> tuple[float, bool]:
    t0 = time.perf_counter()
    try:
        resp = await session.connection.get(target)
        ok = resp.code == 200
    except Exception:
        ok = False
    return time.perf_counter() - t0, ok


async def timed_put(session: IpPairing, body: bytes) -> tuple[float, bool]:
    t0 = time.perf_counter()
    try:
        resp = await session.connection.put("/characteristics", body)
        ok = resp.code == 204
    except Exception:
        ok = False
    return time.perf_counter() - t0, ok


# --------------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------------

Result = dict[str, dict[str, float]]


async def phase_pair_setup(
    controller: Controller, port: int, meter: CpuMeter, runs: int
) -> tuple[IpPairing, dict[str, float]]:
    """Pair-setup time: each run starts from an unpaired server.

    The first run meets the fresh STATE_DIR; before each later run the previous pairing removes itself
    (POST /pairings RemovePairing of the only admin), which returns the server to the unpaired state.
    The removal is not timed. Time = M1..M6 on a new plaintext connection, as seen by the client.
    """
    times: list[float] = []
    cpu: list[float] = []
    pairing: IpPairing | None = None
    for _ in range(runs):
        if pairing is not None:
            await pairing.remove_pairing(pairing.pairing_data["iOSPairingId"])
            await pairing.shutdown()
            await asyncio.sleep(0.2)  # let the server finish persisting the removal
        with PhaseTimer(meter) as t:
            pairing = await pair_setup(controller, port)
        times.append(t.wall_s)
        cpu.append(t.server_cpu_s)
    assert pairing is not None
    return pairing, {
        "runs": len(times),
        "median_ms": statistics.median(times) * 1e3,
        "max_ms": max(times) * 1e3,
        "server_cpu_ms": statistics.median(cpu) * 1e3,
    }


async def _read_http_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Just enough HTTP/1.1 to read a pair-verify answer (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = bytearray()
    while True:  # chunked
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, bytes(body)
        body += chunk[:-2]


async def lean_pair_verify(port: int, pairing_data: AbstractPairingData) -> float:
    """One pair-verify on a new connection with aiohomekit's protocol code but no connection machinery.

    aiohomekit's IpPairing adds a connector task, happy-eyeballs and callbacks around the same two
    round trips (~0.3-0.5 ms here), which would blur a 1.5 ms target. Returns connect -> M4 parsed.
    """
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        machine = get_session_keys(cast(dict[str, Any], pairing_data))
        request, expected = machine.send(None)
        while True:
            body = bytes(TLV.encode_list(request))
            writer.write(
                b"POST /pair-verify HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
                b"Content-Type: application/pairing+tlv8\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            status, answer = await _read_http_response(reader)
            if status != 200:
                raise RuntimeError(f"pair-verify answered HTTP {status}")
            try:
                # aiohomekit annotates the generator's send type as None; it takes the decoded TLVs
                request, expected = cast(Any, machine).send(TLV.decode_bytes(answer, expected=expected))
            except StopIteration:
                return time.perf_counter() - t0
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def phase_pair_verify(
    controller: Controller, port: int, pairing_data: AbstractPairingData, meter: CpuMeter, n: int
) -> dict[str, float]:
    """N fresh connections, one after another, each doing pair-verify and then closing.

    Headline time (p50/p99) = TCP connect + both round trips with a lean client (``lean_pair_verify``);
    server CPU per pair-verify comes from that loop too. ``aiohomekit_p50_ms`` is the same thing
    through IpPairing (what Home Assistant pays), over n/4 connections.
    """
    latencies: list[float] = []
    with PhaseTimer(meter) as t:
        for _ in range(n):
            latencies.append(await lean_pair_verify(port, pairing_data))
    via_lib: list[float] = []
    for _ in range(max(1, n // 4)):
        session = IpPairing(controller, pairing_data)
        t0 = time.perf_counter()
        await session._ensure_connected()
        via_lib.append(time.perf_counter() - t0)
        await session.shutdown()
    return {
        "runs": n,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "server_cpu_ms": t.server_cpu_s / n * 1e3,
        "client_cpu_pct": 100 * t.client_cpu_s / t.wall_s,
        # The client's share of each p50: its X25519/Ed25519 work runs between the server's steps
        "client_cpu_ms": t.client_cpu_s / n * 1e3,
        "aiohomekit_p50_ms": percentile(via_lib, 50) * 1e3,
    }


async def run_sequential(
    session: IpPairing,
    meter: CpuMeter,
    n: int,
    warmup: int,
    call: Callable[[int], Awaitable[tuple[float, bool]]],
) -> dict[str, float]:
    for i in range(warmup):
        await call(i)
    latencies: list[float] = []
    errors = 0
    with PhaseTimer(meter) as t:
        for i in range(n):
            lat, ok = await call(i)
            latencies.append(lat)
            errors += not ok
    return request_figures(t, latencies, errors)


async def run_concurrent(
    sessions: Sequence[IpPairing],
    meter: CpuMeter,
    per_session: int,
    warmup: int,
    call: Callable[[IpPairing, int], Awaitable[tuple[float, bool]]],
) -> dict[str, float]:
    async def worker(session: IpPairing, count: int, sink: list[float] | None) -> int:
        errors = 0
        for i in range(count):
            lat, ok = await call(session, i)
            if sink is not None:
                sink.append(lat)
            errors += not ok
        return errors

    await asyncio.gather(*(worker(s, max(1, warmup // len(sessions)), None) for s in sessions))
    latencies: list[float] = []
    with PhaseTimer(meter) as t:
        errs = await asyncio.gather(*(worker(s, per_session, latencies) for s in sessions))
    return request_figures(t, latencies, sum(errs))


@dataclass
class Subscriber:
    """One subscribed session; records (receipt time, iid, value) for every event entry received.

    ``view`` is what aiohomekit's listeners end up believing: for each EVENT the *last* entry per
    characteristic wins, so a server that batches several values newest-first leaves a stale view.
    """

    session: BenchPairing
    receipts: list[tuple[float, int, Any]] = field(default_factory=list)
    view: dict[int, Any] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.session.sink = self.on_event

    def on_event(self, now: float, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if isinstance(entry, dict) and "iid" in entry and "value" in entry:
                self.receipts.append((now, int(entry["iid"]), entry["value"]))
                self.view[int(entry["iid"])] = entry["value"]
        self.changed.set()


async def wait_until(cond: Callable[[], bool], subs: Sequence[Subscriber], timeout_s: float) -> bool:
    """Wake on every delivery until ``cond`` holds or the timeout passes."""
    deadline = time.perf_counter() + timeout_s
    while not cond():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return False
        for s in subs:
            s.changed.clear()
        waits = [asyncio.ensure_future(s.changed.wait()) for s in subs]
        try:
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
    return True


def event_figures(
    timer: PhaseTimer,
    writes: int,
    expected: int,
    delivered: int,
    from_response: list[float],
    from_request: list[float],
) -> dict[str, float]:
    return {
        "expected": expected,
        "delivered": delivered,
        "delivered_pct": 100 * delivered / expected if expected else math.nan,
        "p50_ms": percentile(from_request, 50) * 1e3,
        "p99_ms": percentile(from_request, 99) * 1e3,
        "p50_after_response_ms": percentile(from_response, 50) * 1e3,
        "p99_after_response_ms": percentile(from_response, 99) * 1e3,
        # Per write (trigger or Brightness write), each fanned out to every subscriber: comparable across
        # servers whatever they coalesce. Per 1000 delivered entries is kept for the JSON.
        "server_cpu_ms_per_write": timer.server_cpu_s / writes * 1e3 if writes else math.nan,
        "server_cpu_s_per_1000": timer.server_cpu_s / delivered * 1000 if delivered else math.nan,
        "client_cpu_pct": 100 * timer.client_cpu_s / timer.wall_s if timer.wall_s else math.nan,
    }


async def phase_events_immediate(
    writer: IpPairing, subs: Sequence[Subscriber], iids: Iids, meter: CpuMeter, prof: Profile
) -> dict[str, float]:
    """Trigger -> ProgrammableSwitchEvent fan-out to every subscriber, one press at a time.

    Each press waits (up to ``event_wait_s``) until every subscriber has its event, so each receipt is
    attributed to exactly one press. Latency = subscriber receipt - the moment the writer sent the PUT;
    also reported from the writer's receipt of the PUT response, which is often slightly negative
    because servers push the events before (or with) the response and our single client loop may
    read a subscriber socket first.
    """
    body = put_body(iids.trigger_on, True)
    sent: list[tuple[float, float]] = []
    for s in subs:
        s.receipts.clear()

    def count(s: Subscriber) -> int:
        return sum(1 for _, iid, _v in s.receipts if iid == iids.switch_event)

    misses = 0
    with PhaseTimer(meter) as t:
        for k in range(prof.immediate_events):
            t0 = time.perf_counter()
            await writer.connection.put("/characteristics", body)
            sent.append((t0, time.perf_counter()))

            def pressed(k: int = k) -> bool:
                return all(count(s) >= k + 1 for s in subs)

            all_in = await wait_until(pressed, subs, prof.event_wait_s)
            misses = 0 if all_in else misses + 1
            if misses >= 3:  # a server that does not deliver would otherwise cost event_wait_s per press
                break
    # Attribute each receipt to the last press sent before it (presses are strictly sequential).
    starts = [t0 for t0, _ in sent]
    from_resp: list[float] = []
    from_req: list[float] = []
    for s in subs:
        for t_recv, iid, _v in s.receipts:
            k = bisect.bisect_right(starts, t_recv) - 1
            if iid == iids.switch_event and k >= 0:
                from_req.append(t_recv - sent[k][0])
                from_resp.append(t_recv - sent[k][1])
    return event_figures(t, len(sent), len(sent) * len(subs), len(from_resp), from_resp, from_req)


async def phase_events_coalesced(
    writer: IpPairing, subs: Sequence[Subscriber], iids: Iids, meter: CpuMeter, prof: Profile
) -> dict[str, float]:
    """Brightness writes 1, 2, ..., W every ``coalesced_interval_s`` from the writer session.

    Servers may legitimately coalesce ordinary events (HAP-python: 0.5 s window; HAP-NodeJS: 250 ms),
    so 'delivered' (event entries received) is below 'expected' (W x subscribers) by design; what must
    hold is that every subscriber receives the final value (``final_ok``) and that a client applying the
    entries in order ends on it (``final_view_ok``). Latency of a delivered value v = its receipt - the
    moment the write of v was sent (and, separately, - the writer's receipt of its response).

    Latency is *staleness*, not the age of whatever arrived: for every write v and every subscriber,
    the time from sending the write until that subscriber first holds v or a newer value. A coalescing
    server is charged for the values it folds away (write 1 waits for the batch that carries 7), which
    is what a user watching the value sees.
    """
    writes = min(prof.coalesced_writes, 100)
    sent: dict[int, tuple[float, float]] = {}
    for s in subs:
        s.receipts.clear()

    def has_final(s: Subscriber) -> bool:
        return any(iid == iids.brightness and v == writes for _, iid, v in s.receipts)

    with PhaseTimer(meter) as t:
        start = time.perf_counter()
        for value in range(1, writes + 1):
            t0 = time.perf_counter()
            await writer.connection.put("/characteristics", put_body(iids.brightness, value))
            sent[value] = (t0, time.perf_counter())
            delay = start + value * prof.coalesced_interval_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await wait_until(lambda: all(has_final(s) for s in subs), subs, prof.tail_wait_s)
    from_resp: list[float] = []
    from_req: list[float] = []
    delivered = 0
    for s in subs:
        got = sorted((t_recv, v) for t_recv, iid, v in s.receipts if iid == iids.brightness)
        delivered += len(got)
        # newest value known at each receipt (a batch may list values newest-first)
        known = list(itertools.accumulate((int(v) for _, v in got), max))
        for value, (t_req, t_resp) in sent.items():
            j = bisect.bisect_left(known, value)
            if j < len(got):
                from_req.append(got[j][0] - t_req)
                from_resp.append(got[j][0] - t_resp)
    figures = event_figures(t, writes, writes * len(subs), delivered, from_resp, from_req)
    figures["final_ok"] = sum(has_final(s) for s in subs)
    figures["final_view_ok"] = sum(s.view.get(iids.brightness) == writes for s in subs)
    return figures


# --------------------------------------------------------------------------------------------------
# One server, one run
# --------------------------------------------------------------------------------------------------


async def bench_server(spec: ServerSpec, prof: Profile, log: Callable[[str], None]) -> Result:
    """All phases against one freshly started server; the server is stopped whatever happens."""
    result: Result = {}
    sessions: list[IpPairing] = []
    async with ServerProcess(spec) as server:
        meter = CpuMeter(server.pid)
        await asyncio.sleep(0.5)  # let start-up work (state files, JIT) settle before the idle RSS
        result["memory"] = {"rss_idle_mib": meter.rss_mib()}
        busy0, (wall0, srv0, cli0) = meter.machine_busy_s(), meter.snapshot()
        controller = Controller()
        try:
            log("pair-setup")
            primary, result["pair_setup"] = await phase_pair_setup(controller, server.port, meter, prof.pair_setups)
            sessions.append(primary)
            await primary._ensure_connected()
            iids = await find_iids(primary)
            result["memory"]["characteristics"] = iids.characteristics
            data = primary.pairing_data

            log("pair-verify")
            result["pair_verify"] = await phase_pair_verify(controller, server.port, data, meter, prof.pair_verifies)

            get_target = f"/characteristics?id=1.{iids.brightness}"
            bodies = [put_body(iids.brightness, v) for v in range(101)]
            log("sequential GET/PUT")
            result["get_seq"] = await run_sequential(
                primary, meter, prof.seq_requests, prof.warmup, lambda i: timed_get(primary, get_target)
            )
            result["put_seq"] = await run_sequential(
                primary, meter, prof.seq_requests, prof.warmup, lambda i: timed_put(primary, bodies[i % 101])
            )

            log(f"{SUBSCRIBERS} sessions")
            with PhaseTimer(meter) as t:
                many = await asyncio.gather(*(open_session(controller, data) for _ in range(SUBSCRIBERS)))
            sessions.extend(many)
            result["pair_verify"]["parallel32_wall_ms"] = t.wall_s * 1e3
            result["get_32"] = await run_concurrent(
                many, meter, prof.per_session_requests, prof.warmup, lambda s, i: timed_get(s, get_target)
            )
            result["put_32"] = await run_concurrent(
                many,
                meter,
                prof.per_session_requests,
                prof.warmup,
                lambda s, i: timed_put(s, bodies[i % 101]),
            )

            log("events")
            await primary.connection.put("/characteristics", put_body(iids.brightness, 0))
            await asyncio.sleep(0.6)  # flush anything still queued by the PUT phases
            subs = [Subscriber(s) for s in many]
            await asyncio.gather(*(s.session.subscribe([(1, iids.switch_event), (1, iids.brightness)]) for s in subs))
            result["events_immediate"] = await phase_events_immediate(primary, subs, iids, meter, prof)
            result["events_coalesced"] = await phase_events_coalesced(primary, subs, iids, meter, prof)

            result["memory"]["rss_after_mib"] = meter.rss_mib()
            # CPU used by neither the server nor us during this run (other jobs on the machine): when it
            # is high, latency and req/s are unreliable and even CPU/request shifts a little.
            wall1, srv1, cli1 = meter.snapshot()
            other = meter.machine_busy_s() - busy0 - (srv1 - srv0) - (cli1 - cli0)
            result["memory"]["background_cpu_pct"] = max(0.0, 100 * other / (wall1 - wall0))
            result["memory"]["server_errors"] = sum(
                result[p]["errors"] for p in ("get_seq", "put_seq", "get_32", "put_32")
            )
        finally:
            await close_sessions(sessions)
    return result


# --------------------------------------------------------------------------------------------------
# Aggregation and output
# --------------------------------------------------------------------------------------------------


def median_results(runs: list[Result]) -> Result:
    """Median over runs of every figure (the issue's reference figures are medians of 7 runs)."""
    out: Result = {}
    for phase in {p for r in runs for p in r}:
        keys = {k for r in runs for k in r.get(phase, {})}
        out[phase] = {}
        for key in keys:
            vals = [r[phase][key] for r in runs if key in r.get(phase, {}) and not math.isnan(r[phase][key])]
            out[phase][key] = statistics.median(vals) if vals else math.nan
    return out


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str = "{:.2f}"


@dataclass(frozen=True)
class Table:
    phase: str
    title: str
    columns: tuple[Column, ...]
    ratio_keys: tuple[str, ...]  # a "x HAP-python" column for each


REQ_COLS = (
    Column("requests", "requests", "{:.0f}"),
    Column("rps", "req/s", "{:.0f}"),
    Column("p50_ms", "p50 ms"),
    Column("p99_ms", "p99 ms"),
    Column("server_cpu_s_per_1000", "srv CPU s/1000", "{:.3f}"),
    Column("server_cpu_pct", "srv CPU %", "{:.0f}"),
    Column("client_cpu_pct", "client CPU %", "{:.0f}"),
    Column("errors", "errors", "{:.0f}"),
)
EVENT_COLS = (
    Column("expected", "expected", "{:.0f}"),
    Column("delivered", "delivered", "{:.0f}"),
    Column("delivered_pct", "deliv %", "{:.0f}"),
    Column("p50_ms", "p50 ms"),
    Column("p99_ms", "p99 ms"),
    Column("p50_after_response_ms", "p50 after resp"),
    Column("p99_after_response_ms", "p99 after resp"),
    Column("server_cpu_ms_per_write", "srv CPU ms/write", "{:.2f}"),
)
TABLES = (
    Table(
        "pair_setup",
        "Pair-setup (M1-M6, fresh or after removing the pairing)",
        (
            Column("runs", "runs", "{:.0f}"),
            Column("median_ms", "median ms", "{:.1f}"),
            Column("max_ms", "max ms", "{:.1f}"),
            Column("server_cpu_ms", "srv CPU ms", "{:.1f}"),
        ),
        ("median_ms", "server_cpu_ms"),
    ),
    Table(
        "pair_verify",
        "Pair-verify (new TCP connection + M1-M4, sequential)",
        (
            Column("runs", "runs", "{:.0f}"),
            Column("p50_ms", "p50 ms"),
            Column("p99_ms", "p99 ms"),
            Column("server_cpu_ms", "srv CPU ms", "{:.3f}"),
            Column("client_cpu_ms", "client CPU ms", "{:.3f}"),
            Column("aiohomekit_p50_ms", "p50 via IpPairing"),
            Column("parallel32_wall_ms", "32 parallel ms", "{:.0f}"),
        ),
        ("p50_ms", "server_cpu_ms"),
    ),
    Table(
        "get_seq",
        "GET one characteristic, one session, sequential",
        REQ_COLS,
        ("server_cpu_s_per_1000", "p99_ms"),
    ),
    Table(
        "put_seq",
        "PUT one characteristic, one session, sequential",
        REQ_COLS,
        ("server_cpu_s_per_1000", "p99_ms"),
    ),
    Table(
        "get_32",
        f"GET across {SUBSCRIBERS} concurrent sessions",
        REQ_COLS,
        ("server_cpu_s_per_1000", "p99_ms"),
    ),
    Table(
        "put_32",
        f"PUT across {SUBSCRIBERS} concurrent sessions",
        REQ_COLS,
        ("server_cpu_s_per_1000", "p99_ms"),
    ),
    Table(
        "events_immediate",
        f"Immediate events (Trigger -> ProgrammableSwitchEvent) to {SUBSCRIBERS} subscribers",
        EVENT_COLS,
        ("server_cpu_ms_per_write",),
    ),
    Table(
        "events_coalesced",
        f"Coalescable events (Brightness writes) to {SUBSCRIBERS} subscribers",
        (
            *EVENT_COLS,
            Column("final_ok", "final rcvd", "{:.0f}"),
            Column("final_view_ok", "final in view", "{:.0f}"),
        ),
        ("server_cpu_ms_per_write",),
    ),
    Table(
        "memory",
        "Server memory",
        (
            Column("characteristics", "chars", "{:.0f}"),
            Column("rss_idle_mib", "RSS idle MiB", "{:.1f}"),
            Column("rss_after_mib", "RSS after load MiB", "{:.1f}"),
            Column("background_cpu_pct", "other procs CPU %", "{:.0f}"),
        ),
        ("rss_after_mib",),
    ),
)
SHORT = {
    "server_cpu_s_per_1000": "CPU",
    "server_cpu_ms": "CPU",
    "server_cpu_ms_per_write": "CPU",
    "p99_ms": "p99",
    "p50_ms": "p50",
    "median_ms": "time",
    "rss_after_mib": "RSS",
}


def _fmt(fmt: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def render_tables(medians: dict[str, Result], runs: int) -> str:
    """Plain-text tables (also valid Markdown), one per phase, rows = servers."""
    lines: list[str] = []
    names = list(medians)
    base = medians.get(BASELINE)
    for table in TABLES:
        header = ["server", *(c.header for c in table.columns)]
        if base is not None:
            header += [f"{SHORT.get(k, k)} x {BASELINE}" for k in table.ratio_keys]
        rows: list[list[str]] = []
        for name in names:
            figs = medians[name].get(table.phase, {})
            row = [name, *(_fmt(c.fmt, figs.get(c.key)) for c in table.columns)]
            if base is not None:
                for k in table.ratio_keys:
                    b = base.get(table.phase, {}).get(k)
                    v = figs.get(k)
                    row.append(_fmt("{:.2f}", v / b) if v is not None and b else "-")
            rows.append(row)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append(f"### {table.title} (median of {runs} run{'s' if runs != 1 else ''})")
        lines.append("")
        lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in rows:
            lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
        lines.append("")
    return "\n".join(lines)


def render_targets(medians: dict[str, Result]) -> str:
    """Issue 2's targets, checked for every non-baseline server (so the check itself is exercised now)."""
    base = medians.get(BASELINE)
    if base is None:
        return ""
    lines = ["### Issue 2 targets (vs HAP-python, medians)", ""]
    for name, res in medians.items():
        if name == BASELINE:
            continue
        checks: list[tuple[str, bool]] = []
        for phase in ("get_seq", "put_seq", "get_32", "put_32"):
            ratio = res.get(phase, {}).get("server_cpu_s_per_1000", math.nan) / base[phase]["server_cpu_s_per_1000"]
            checks.append(
                (f"{phase} server CPU/request {ratio:.2f}x <= {TARGET_CPU_RATIO}x", ratio <= TARGET_CPU_RATIO)
            )
            p99, bp99 = res.get(phase, {}).get("p99_ms", math.nan), base[phase]["p99_ms"]
            checks.append((f"{phase} p99 {p99:.2f} ms <= {bp99:.2f} ms", p99 <= bp99))
        pv = res.get("pair_verify", {}).get("p50_ms", math.nan)
        checks.append((f"pair-verify p50 {pv:.2f} ms <= {TARGET_PAIR_VERIFY_MS} ms", pv <= TARGET_PAIR_VERIFY_MS))
        rss, brss = res.get("memory", {}).get("rss_after_mib", math.nan), base["memory"]["rss_after_mib"]
        checks.append((f"RSS (1 accessory) {rss:.1f} MiB <= {brss:.1f} MiB", rss <= brss))
        passed = sum(ok for _, ok in checks)
        lines.append(f"{name}: {passed}/{len(checks)} targets met")
        lines += [f"  [{'PASS' if ok else 'FAIL'}] {text}" for text, ok in checks]
        lines.append("")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    node = shutil.which("node")
    node_version = ""
    if node:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            node_version = subprocess.run(
                [node, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in ("aiohomekit", "HAP-python", "psutil"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    with contextlib.suppress(OSError, ValueError, KeyError):
        pkg = json.loads((NODE_MODULES / "hap-nodejs" / "package.json").read_text())
        versions["hap-nodejs"] = pkg["version"]
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node_version,
        "versions": versions,
    }


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3, help="full repetitions per server; figures are medians (default 3)")
    p.add_argument("--quick", action="store_true", help="small load, 1 run: a smoke test of the harness")
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated subset of {', '.join(SERVERS)} (default: all; missing scripts are skipped)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write machine info, every run and the medians")
    p.add_argument(
        "--script",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="run server NAME from another script with the same contract (e.g. ours=/tmp/ours_server.py); "
        "a NAME not in the table adds a Python server to the run (e.g. before=/tmp/before_server.py), "
        "interleaved with the others, to compare two versions under the same load",
    )
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    unknown = [s for s in args.servers.split(",") if s and s not in SERVERS]
    if unknown:
        p.error(f"unknown server(s): {', '.join(unknown)}")
    args.overrides = {}
    args.added = []
    for item in args.script:
        name, sep, path = item.partition("=")
        if not sep or not name or "," in name:
            p.error(f"--script wants NAME=PATH: {item!r}")
        if name in SERVERS:
            args.overrides[name] = Path(path).resolve()
        elif path.endswith(".py"):
            args.added.append(ServerSpec(name, Path(path).resolve(), (sys.executable,)))
        else:
            p.error(f"--script: {name!r} is not in {', '.join(SERVERS)}, so PATH must be a Python script: {item!r}")
    return args


def select_servers(names: Iterable[str], overrides: dict[str, Path]) -> list[ServerSpec]:
    chosen: list[ServerSpec] = []
    for name in names:
        spec = SERVERS[name]
        if name in overrides:
            spec = dataclasses.replace(spec, script=overrides[name])
        if not spec.script.exists():
            print(f"note: skipping {name}: {spec.script} does not exist (yet)", flush=True)
            continue
        if spec.interpreter[0] == "node" and shutil.which("node") is None:
            print(f"note: skipping {name}: node is not on PATH", flush=True)
            continue
        chosen.append(spec)
    return chosen


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived: unwind through every ``finally`` so each server is stopped by PID."""


async def amain(args: argparse.Namespace) -> int:
    # Handle both signals ourselves: SIGINT may be ignored when started in the background, and the
    # default SIGTERM action would kill us without stopping the servers.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await _amain(args)
    except asyncio.CancelledError:
        raise Interrupted from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _amain(args: argparse.Namespace) -> int:
    prof = QUICK if args.quick else Profile()
    runs = 1 if args.quick else args.runs
    specs = select_servers((n for n in args.servers.split(",") if n), args.overrides)
    specs += [spec for spec in args.added if spec.script.exists()]
    if not specs:
        print("no server to benchmark", file=sys.stderr)
        return 1
    machine = machine_info()
    print(
        f"{machine['date']}  {machine['cpus']} CPUs, {machine['mem_gib']} GiB, {machine['platform']}, "
        f"Python {machine['python']}, node {machine['node'] or '-'}, {machine['versions']}",
        flush=True,
    )
    per_server: dict[str, list[Result]] = {s.name: [] for s in specs}
    failures: list[str] = []
    noisy: list[str] = []
    started = time.monotonic()
    for run in range(1, runs + 1):
        # Interleave servers within each run so slow drift of the machine hits all of them alike.
        for spec in specs:

            def log(phase: str, name: str = spec.name, run: int = run) -> None:
                print(f"[{time.monotonic() - started:6.1f}s] run {run}/{runs} {name}: {phase}", flush=True)

            try:
                res = await bench_server(spec, prof, log)
                per_server[spec.name].append(res)
                background = res["memory"].get("background_cpu_pct", 0.0)
                if background > BACKGROUND_WARN_PCT:
                    noisy.append(f"run {run} {spec.name}: {background:.0f}%")
            except Exception as exc:
                msg = f"run {run} {spec.name}: {type(exc).__name__}: {exc}"
                failures.append(msg)
                print(f"ERROR {msg}", flush=True)
    medians = {name: median_results(rs) for name, rs in per_server.items() if rs}
    print()
    print(render_tables(medians, runs))
    print(render_targets(medians))
    if noisy:
        print(
            f"WARNING: other programs used more than {BACKGROUND_WARN_PCT}% of a core during some runs; "
            "latency and req/s are unreliable there:\n  " + "\n  ".join(noisy)
        )
    if failures:
        print("Failed runs (excluded from the medians):\n  " + "\n  ".join(failures))
    print(f"total time {time.monotonic() - started:.0f} s")
    if args.json:
        payload = {
            "machine": machine,
            "profile": dataclasses.asdict(prof),
            "runs": per_server,
            "median": medians,
            "failures": failures,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(amain(args))
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        kill_all_servers()


if __name__ == "__main__":
    sys.exit(main())
