"""HKSV recording benchmark (issue 5): N cameras recording at once to simulated home hubs.

Each camera is a real :class:`sidecar.camera.Camera` (own HAP server, HDS listener, copy-mode
ffmpeg on a looping 2 Mbps 720p30 H.264 + AAC file, keyframe every 4 s), all in this process and
event loop as in the sidecar. Each hub pairs with aiohomekit, selects a recording configuration
at the clip's own size (copy mode advertises only that), turns recording on, sets up HDS over its
verified HAP session and opens a dataSend stream; then it reads init, prebuffer and live
fragments for ``--seconds`` and closes. All N streams are opened at the same instant (or spread
over ``--open-spread`` seconds), ``--rounds`` times.

Figures, all on one monotonic clock:

* **open -> init + prebuffer received**: from the hub writing dataSend ``open`` to the hub having
  read the last chunk of the last prebuffer fragment. How many prebuffer fragments the camera
  queued is taken from the prebuffer's own ``subscribe`` (wrapped), so the boundary is exact.
* **fragment complete -> last byte read by the hub**: for live fragments, from the media pipeline
  completing the fragment (``prebuffer.push``, wrapped) to the hub having decrypted and parsed
  the fragment's last chunk.
* The hubs' HDS readers run in **another process** (``--hub-worker``, started by this script),
  so this process's CPU is the accessory's alone: **accessory CPU per MB sent** is this
  process's CPU while recording, less its idle rate, over the MB the hubs received. The HAP side
  of each hub (pairing, HDS setup write, key derivation) stays here; only the derived keys and
  the port go to the worker. Both processes read the same system-wide monotonic clock.
* CPU (this process; the hub process; the ffmpeg children; everything else on the machine) over
  the recording windows, with an idle window (prebuffers running, nobody recording) as the
  reference; RSS.

* The open burst, per round: from the hubs' shared open instant to the last prebuffer handed to a
  socket, and how much of that the event loop's thread ran (its CPU time; the rest it waited for
  a CPU).

References measured in the same run: ChaCha20-Poly1305 seal (the accessory's floor per MB) and
seal + open of the same bytes in 256 KiB pieces, for one stream alone and for all N streams'
bytes serialized; and the kernel's cost of sending the same bytes over loopback with the HDS
socket's buffer size (the floor of the socket half). ``--pin-hubs`` runs the hub process on the
last CPU and this process, with its ffmpeg children, on the others: real hubs are other machines.

``--hevc N`` makes N of the cameras (spread among the others) H.265 cameras recorded as H.265
(``record_codec: hevc``, copy mode) from the same clip made with libx265 (same size, bitrate and
GOP, AAC audio): each fragment then goes out as a rewritten ``prft`` + ``moof`` and a view of
the prebuffer's ``mdat``. The send path's CPU and minor page faults per MB are then printed for
the H.264 and the H.265 recordings apart, with the rewrite's own CPU per MB (it runs in the
recording core, before ``send_fragment``). Without it (the default) every camera is H.264.

It prints tables; it never passes or fails (the PASS/FAIL column only compares with the issue's
targets). Loopback only, no mDNS. Usage::

    .venv/bin/python -m benchmarks.recording_bench [--cameras 16] [--seconds 25] [--rounds 3]
                                                   [--open-spread 0] [--pin-hubs] [--hevc 0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from aiohomekit.controller.ip import IpPairing
from aiohomekit.controller.ip import connection as aio_connection
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from benchmarks.kit import REPO
from benchmarks.kit.clips import test_pattern_clip
from benchmarks.kit.cpu import machine_busy_s, process_cpu_s
from benchmarks.kit.stats import percentile as pct
from sidecar import tlv8
from sidecar.camera import Camera, CameraSpec
from sidecar.hds import RecordingStream, SessionKeys, frames, messages
from sidecar.hds.connection import HDSConnection
from sidecar.hds.datasend import MAX_CHUNK
from sidecar.hds.hub_connection import HubConnection
from sidecar.hds.messages import Kind, Message
from sidecar.hds.outbox import Outbox
from sidecar.hds.sealing_pool import SealingPool
from sidecar.hds.socket_transport import SocketTransport
from sidecar.media import Fragment, HevcRecording
from sidecar.media.hevc_recording import PRFT_SIZE, RewrittenFragment
from sidecar.media.prebuffer import Subscription
from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
    SUPPORTED_VIDEO_RECORDING_CONFIGURATION,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, controller_hds_keys, setup_write
from tests.hub.hds_client import HubDataStreamClient, build_setup_write, parse_setup_response
from tests.hub.recording import enable_recording, recording_selection
from tests.support.hap_client import aio_pair

PIN = "031-45-154"
PREBUFFER_MS = 4000
OPEN_TARGET_MS = 20.0  # issue 5: dataSend open -> init + prebuffer sent, p99
LIVE_TARGET_MS = 5.0  # issue 5: fragment complete -> last byte on the socket, p99
BACKGROUND_WARN_PCT = 10.0  # other programs' CPU (% of one core) above which figures are flagged
COINCIDENT_S = 0.020  # two cameras' fragments completing this close together compete for the loop
MB = 1_000_000
CLIP = {"width": 1280, "height": 720, "fps": 30, "kbps": 2000, "seconds": 12}

log = logging.getLogger("recording_bench")


# --------------------------------------------------------------------------------------------
# source clip


def make_clip(directory: Path, codec: str = "libx264") -> Path:
    """12 s of 720p30 H.264 at 2 Mbps, keyframe every 4 s exactly (3 GOPs), with AAC audio
    (``codec="libx265"``: the same in H.265).

    Copy mode relays it as it is, so 16 cameras cost 16 cheap ffmpeg copies (the recording path,
    not the encoder, is what this benchmark is about).
    """
    c = CLIP
    name = "clip-720p30-2mbps-aac.mp4" if codec == "libx264" else f"clip-720p30-2mbps-aac-{codec}.mp4"
    return test_pattern_clip(directory / name, width=c["width"], height=c["height"], fps=c["fps"],
                             seconds=c["seconds"], kbps=c["kbps"], gop_s=4, audio=True, codec=codec)


def segment_size(data: bytes | bytearray | memoryview | tuple[bytes | memoryview, ...]) -> int:
    """Bytes of a segment handed to the send path (one buffer, or an H.265 fragment's pieces)."""
    if isinstance(data, tuple):
        return sum(memoryview(p).nbytes for p in data)
    return memoryview(data).nbytes


class RewriteMeter:
    """This thread's CPU inside ``HevcRecording.rewrite`` (the H.265 fragments' ``prft`` +
    ``moof`` rewrite, which the recording core runs before ``send_fragment``) and the bytes it
    returned; wraps the class's method for the run (only H.265 recordings call it)."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.bytes = 0
        self.calls = 0
        self._original = HevcRecording.rewrite

    def install(self) -> None:
        original, meter = self._original, self

        def timed_rewrite(recording: HevcRecording, fragment: Fragment) -> RewrittenFragment:
            t0 = time.thread_time()
            out = original(recording, fragment)
            meter.cpu_s += time.thread_time() - t0
            meter.bytes += out.size
            meter.calls += 1
            return out

        HevcRecording.rewrite = timed_rewrite  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        HevcRecording.rewrite = self._original  # type: ignore[method-assign]


class StepMeter:
    """This thread's CPU in each step of the send path, wherever the step runs, so the send
    path's ratio to the AEAD can be read whole and as parts.

    A recording's segment is queued as plaintext inside ``send_fragment`` and sealed a batch at
    a time as the socket drains, mostly from the writer's callback, outside ``send_fragment``
    (docs/hds.md). So the send path is the sum of its steps' own CPU (each step's time less the
    wrapped steps it calls): the cipher (``FrameEncryptor._seal_one``: ``encrypt_into``), the
    staging copy (``_gather``), the chunks' OPACK (``messages.encode_data_event_parts``), the
    connection core's queueing (``HDSConnection.send_init``/``send_fragment``), the batching
    (``Outbox.take``), the adapter (``HubConnection.flush`` and ``sent``), the socket's sends
    from a write (``SocketTransport.write``) and from the writer's callback (``_write_ready``).
    Wraps the classes' methods for the run; each wrapper costs about a microsecond per call, a
    few dozen calls per MB."""

    STEPS = (("cipher", frames.FrameEncryptor, "_seal_one"), ("gather", frames.FrameEncryptor, "_gather"),
             ("opack", messages, "encode_data_event_parts"),
             ("queue", HDSConnection, "send_fragment"), ("queue", HDSConnection, "send_init"),
             ("batch", Outbox, "take"), ("adapter", HubConnection, "flush"), ("adapter", HubConnection, "sent"),
             ("write", SocketTransport, "write"), ("write_ready", SocketTransport, "_write_ready"))

    def __init__(self) -> None:
        self.cpu_s = dict.fromkeys((name for name, _, _ in self.STEPS), 0.0)
        self._originals = [(owner, attr, getattr(owner, attr)) for _, owner, attr in self.STEPS]
        self._stack: list[list[float]] = []  # per running step: [thread CPU at entry, CPU of wrapped callees]

    def install(self) -> None:
        for (name, owner, attr), (_, _, original) in zip(self.STEPS, self._originals, strict=True):
            setattr(owner, attr, self._timed(name, original))

    def _timed(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        totals, stack = self.cpu_s, self._stack

        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.thread_time(), 0.0]
            stack.append(frame)
            try:
                return original(*args, **kwargs)
            finally:
                stack.pop()
                elapsed = time.thread_time() - frame[0]
                totals[name] += elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed

        return timed

    def uninstall(self) -> None:
        for owner, attr, original in self._originals:
            setattr(owner, attr, original)

    def snapshot(self) -> dict[str, float]:
        return dict(self.cpu_s)


class DrainWatch:
    """When everything a recording has queued is in the kernel: a segment is queued as plaintext
    and sealed batch by batch as the socket drains (docs/hds.md), so ``send_fragment`` returning
    no longer means its bytes are on the socket. :meth:`when_drained` calls back once the
    connection's backlog (unsealed in the core, sealed in the transport) is empty, checked after
    each buffer the transport reports sent (``HubConnection.sent``, wrapped for the run)."""

    def __init__(self) -> None:
        self._waiting: dict[int, list[Callable[[], None]]] = {}
        self._original = HubConnection.sent

    def install(self) -> None:
        original, waiting = self._original, self._waiting

        def sent(protocol: HubConnection, owner: object) -> None:
            original(protocol, owner)
            calls = waiting.get(id(protocol))
            if calls and protocol._backlog() == 0:
                del waiting[id(protocol)]
                for call in calls:
                    call()

        HubConnection.sent = sent  # type: ignore[method-assign]

    def uninstall(self) -> None:
        HubConnection.sent = self._original  # type: ignore[method-assign]

    def when_drained(self, protocol: HubConnection, call: Callable[[], None]) -> None:
        if protocol.transport is None or protocol._backlog() == 0:
            call()
        else:
            self._waiting.setdefault(id(protocol), []).append(call)


DRAINS = DrainWatch()


# --------------------------------------------------------------------------------------------
# instrumentation


@dataclass
class SubscribeMark:
    """What a camera's prebuffer had when a recording subscribed: where live fragments start."""

    at: float
    push_index: int  # index into the camera's push log of the first live fragment
    prebuffer_fragments: int


@dataclass
class CameraRig:
    """One camera with its hub: pairing, the HKDF of its verified HAP session, the hooks' logs."""

    index: int
    camera: Camera
    hevc: bool = False  # an H.265 camera recorded as H.265 (each fragment gains a prft box)
    pairing: IpPairing | None = None
    derive: Callable[[bytes, bytes], bytes] | None = None
    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    pushes: list[tuple[float, int]] = field(default_factory=list)  # (completed at, size): no fragment kept
    subscribes: list[SubscribeMark] = field(default_factory=list)
    sends: dict[int, list[list[float]]] = field(default_factory=dict)  # stream -> [entered, returned, buffered, cpu]
    size: tuple[int, int, int] = (0, 0, 0)
    send_cpu: list[tuple[float, int]] = field(default_factory=list)  # (thread CPU s inside a send, bytes)
    send_split: list[tuple[float, float, int]] = field(default_factory=list)  # (user s, system s, minor faults)

    def note_split(self, before: resource.struct_rusage) -> None:
        """User and system CPU and minor page faults of this thread since ``before`` (where the
        send path's CPU goes: Python and AEAD, or the kernel: socket sends and page faults)."""
        after = resource.getrusage(resource.RUSAGE_THREAD)
        self.send_split.append((after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
                                after.ru_minflt - before.ru_minflt))

    def instrument(self) -> None:
        """Wrap the prebuffer's ``push`` and ``subscribe`` (instance attributes shadow the methods).

        ``push`` is where the pipeline hands over a completed fragment: the start of the live
        figure. ``subscribe`` is what a recording stream starts with: how many prebuffer
        fragments the hub will get before the live ones.
        """
        prebuffer = self.camera.pipeline.prebuffer
        push, subscribe = prebuffer.push, prebuffer.subscribe

        def timed_push(fragment: Fragment, now: float) -> None:
            self.pushes.append((time.monotonic(), fragment.size))
            push(fragment, now)

        def marked_subscribe(ms: int, now: float, **kwargs: Any) -> Subscription:
            sub = subscribe(ms, now, **kwargs)
            self.subscribes.append(SubscribeMark(time.monotonic(), len(self.pushes), sub.pending))
            return sub

        prebuffer.push = timed_push  # type: ignore[method-assign]
        prebuffer.subscribe = marked_subscribe  # type: ignore[method-assign]

        hds = self.camera.hds
        on_stream = hds.on_stream

        def timed_on_stream(handle: RecordingStream) -> None:
            """Time each ``send_init``/``send_fragment`` of the stream: when the camera's pump
            starts it and when its last byte is in the kernel (:class:`DrainWatch`; the loop
            thread's CPU then), and how many bytes were queued and not yet in the kernel when
            the call returned (0 = all sent by then)."""
            sends = self.sends.setdefault(handle.stream_id, [])
            send_init, send_fragment = handle.send_init, handle.send_fragment
            protocol = handle._protocol

            def buffered() -> float:
                return float(protocol._backlog()) if protocol.transport is not None else math.nan

            def stamp(entry: list[float]) -> None:
                entry[2] = buffered()

                def drained() -> None:
                    entry[1], entry[3] = time.monotonic(), time.thread_time()

                DRAINS.when_drained(protocol, drained)

            async def timed_init(data: bytes | bytearray | memoryview | tuple[bytes | memoryview, ...]) -> None:
                entry = [time.monotonic(), math.nan, math.nan, math.nan]
                sends.append(entry)
                cpu, ru = time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD)
                await send_init(data)
                self.send_cpu.append((time.thread_time() - cpu, segment_size(data)))
                self.note_split(ru)
                stamp(entry)

            async def timed_fragment(data: bytes | bytearray | memoryview | tuple[bytes | memoryview, ...], *,
                                     end_of_stream: bool = False) -> None:
                entry = [time.monotonic(), math.nan, math.nan, math.nan]
                sends.append(entry)
                cpu, ru = time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD)
                await send_fragment(data, end_of_stream=end_of_stream)
                self.send_cpu.append((time.thread_time() - cpu, segment_size(data)))
                self.note_split(ru)
                stamp(entry)

            handle.send_init = timed_init  # type: ignore[method-assign]
            handle.send_fragment = timed_fragment  # type: ignore[method-assign]
            on_stream(handle)

        hds.on_stream = timed_on_stream


class TimedHub(HubDataStreamClient):
    """The tests' hub-side HDS client, timestamping each message as it is decoded.

    Same reading logic as :meth:`HubDataStreamClient._read_message`, plus the monotonic time at
    which each message became readable to the hub and the time spent decrypting and parsing (the
    hub's share of this process's CPU, since it runs on the same loop as the cameras).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: dict[int, float] = {}
        self.busy_s = 0.0

    async def _read_message(self) -> Message:
        while True:
            frame = self._frames.next_frame()
            if frame is not None:
                t0 = time.perf_counter()
                message = messages.parse_message(self._decryptor.open(frame))
                self.busy_s += time.perf_counter() - t0
                self.stamps[id(message)] = time.monotonic()
                return message
            data = await self.reader.read(1 << 18)
            if not data:
                self.eof = True
                raise EOFError("accessory closed the connection")
            self._frames.feed(data)


async def hds_job(rig: CameraRig, stream_id: int, delay: float, seconds: float) -> dict[str, Any]:
    """The HAP half of ``tests.hub.hap_setup.open_hds`` with this pairing's own HKDF
    (DeriveCapture.latest is whichever of the N pairings verified last): what the hub process
    needs to connect, say hello and record."""
    assert rig.pairing is not None and rig.derive is not None
    controller_salt = os.urandom(32)
    entry = await setup_write(rig.pairing, rig.ids[DATA_STREAM_SETUP], build_setup_write(controller_salt))
    if entry.get("status", 0) != 0:
        raise RuntimeError(f"{rig.camera.name}: HDS setup refused: {entry}")
    response = parse_setup_response(base64.b64decode(entry["value"]))
    session = controller_hds_keys(rig.derive, controller_salt, response.accessory_salt)
    return {"camera": rig.index, "port": response.port, "encrypt_key": session.encrypt_key.hex(),
            "decrypt_key": session.decrypt_key.hex(), "stream_id": stream_id, "delay": delay, "seconds": seconds}


# --------------------------------------------------------------------------------------------
# hub setup


def advertised(video_tlv: bytes) -> tuple[list[tuple[int, int, int]], list[int], list[int]]:
    """Sizes (width, height, fps), H.264 profiles and levels of a SupportedVideoRecordingConfiguration
    (copy mode advertises only the camera's own size, profile and level bucket)."""
    codec = dict(tlv8.decode(video_tlv))[1]
    sizes = []
    params: list[tuple[int, bytes]] = []
    for t, v in tlv8.decode(codec):
        if t == 3:
            a = tlv8.decode_dict(v)
            sizes.append((int.from_bytes(a[1], "little"), int.from_bytes(a[2], "little"), a[3][0]))
        elif t == 2:
            params = tlv8.decode(v)
    return sizes, [v[0] for t, v in params if t == 1], [v[0] for t, v in params if t == 2]


async def select_and_enable(rig: CameraRig) -> None:
    """What a hub does before any recording: read 0x206, select, recording Active = 1."""
    assert rig.pairing is not None
    key = (1, rig.ids[SUPPORTED_VIDEO_RECORDING_CONFIGURATION])
    values = await rig.pairing.get_characteristics([key])
    sizes, profiles, levels = advertised(base64.b64decode(values[key]["value"]))
    rig.size = max(sizes)
    width, height, fps = rig.size
    selection = recording_selection(width=width, height=height, fps=fps, bitrate_kbps=CLIP["kbps"],
                                    profile=max(profiles), level=max(levels), audio_kbps=32, prebuffer_ms=PREBUFFER_MS)
    await enable_recording(rig.pairing, rig.ids, selection)


async def pair(rig: CameraRig, capture: DeriveCapture) -> None:
    """Pair, verify one HAP session and keep *its* HKDF (pairings are made one at a time)."""
    rig.pairing = await aio_pair(rig.camera.server.port, PIN)
    before = len(capture.derives)
    await rig.pairing._ensure_connected()  # type: ignore[no-untyped-call]
    rig.ids = iids_by_type(await rig.pairing.list_accessories_and_characteristics())
    if len(capture.derives) != before + 1:
        raise RuntimeError(f"{rig.camera.name}: expected one pair-verify, saw {len(capture.derives) - before}")
    rig.derive = capture.latest


async def wait_probed(camera: Camera, timeout_s: float = 60.0) -> None:
    """Copy mode advertises the source's own size only once its probe has run."""
    deadline = time.monotonic() + timeout_s
    while camera.state.app.get("probe") is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{camera.name}: source not probed")
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------------------------
# one recording per camera


@dataclass
class StreamResult:
    """What one hub saw during one recording: when it opened and when each fragment completed."""

    camera: int
    stream_id: int
    opened_at: float = 0.0
    response_at: float = 0.0
    completed: list[tuple[int, int, float]] = field(default_factory=list)  # (sequence, size, read at)
    hub_busy_s: float = 0.0
    error: str | None = None
    sample_entry: str = ""  # of the init segment the hub received: "avc1", "hvc1"...


async def connect_hub(job: dict[str, Any]) -> TimedHub:
    reader, writer = await asyncio.open_connection("127.0.0.1", job["port"])
    client = TimedHub(reader, writer, SessionKeys(encrypt_key=bytes.fromhex(job["encrypt_key"]),
                                                  decrypt_key=bytes.fromhex(job["decrypt_key"])))
    await client.hello()
    return client


async def record(client: TimedHub, job: dict[str, Any], start_at: float) -> StreamResult:
    """One hub's recording (in the hub process): open at the shared start (+ its delay), read
    everything for ``seconds``, close the stream and the connection."""
    stream_id = job["stream_id"]
    result = StreamResult(job["camera"], stream_id)
    try:
        await asyncio.sleep(max(0.0, start_at + job["delay"] - time.monotonic()))
        result.opened_at = time.monotonic()
        opened = await client.open(stream_id)
        result.response_at = time.monotonic()
        if (opened.header.status, opened.body) != (0, {"status": 0}):
            result.error = f"open refused: {opened.header.status} {opened.body!r}"
            return result
        end = result.opened_at + job["seconds"]
        while (remaining := end - time.monotonic()) > 0:
            try:
                message = await client.next_message(remaining)
            except TimeoutError:
                break
            read_at = client.stamps.pop(id(message), time.monotonic())
            header, body = message.header, message.body
            if header.kind is Kind.EVENT and header.topic == "close":
                result.error = f"accessory closed the stream: {body!r}"
                break
            if header.kind is not Kind.EVENT or header.topic != "data" or not isinstance(body, dict):
                continue
            packet: Any = body["packets"]
            meta = packet[0]["metadata"]
            if meta["dataSequenceNumber"] == 1 and meta["dataChunkSequenceNumber"] == 1:
                init = bytes(packet[0]["data"])  # the codec is whatever the init says, not assumed
                result.sample_entry = next((e for e in ("avc1", "avc3", "hvc1", "hev1") if e.encode() in init), "?")
            if meta["isLastDataChunk"]:
                size = (meta["dataChunkSequenceNumber"] - 1) * MAX_CHUNK + len(packet[0]["data"])
                result.completed.append((meta["dataSequenceNumber"], size, read_at))
        await client.close_stream(stream_id, 0)
    except (EOFError, ConnectionError, TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.hub_busy_s = client.busy_s
        await client.aclose()
    return result


async def hub_worker() -> None:
    """``--hub-worker``: the hubs' HDS side in its own process. JSON lines on stdin:
    ``{"connect": [job, ...]}`` (answers ``{"ready": n}`` once every hub said hello), then
    ``{"start_at": t}`` (answers ``{"results": [...]}``); EOF ends it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[TimedHub] = []
    jobs: list[dict[str, Any]] = []
    while line := await reader.readline():
        command = json.loads(line)
        if "connect" in command:
            jobs = command["connect"]
            clients = list(await asyncio.gather(*(connect_hub(job) for job in jobs)))
            print(json.dumps({"ready": len(clients)}), flush=True)
        elif "start_at" in command:
            results = await asyncio.gather(*(record(c, j, command["start_at"]) for c, j in zip(clients, jobs,
                                                                                                 strict=True)))
            print(json.dumps({"results": [dataclasses.asdict(r) for r in results]}), flush=True)
            clients, jobs = [], []


class HubProcess:
    """This benchmark again, as ``--hub-worker``: the hubs' side of every recording."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, cpu: int | None = None) -> None:
        pin = [] if cpu is None else ["--pin-cpu", str(cpu)]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.recording_bench", "--hub-worker", *pin, cwd=REPO,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24)

    async def ask(self, command: dict[str, Any], within: float) -> dict[str, Any]:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(command).encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), within)
        if not line:
            raise RuntimeError("the hub process exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu_s(self) -> float:
        if self.proc is None:
            return 0.0
        with contextlib.suppress(psutil.Error):
            return process_cpu_s(psutil.Process(self.proc.pid))
        return 0.0

    async def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class Samples:
    """Latencies (ms) and what they are made of, gathered over all rounds."""

    open_ms: list[float] = field(default_factory=list)
    response_ms: list[float] = field(default_factory=list)
    open_bytes: list[int] = field(default_factory=list)
    prebuffer_fragments: list[int] = field(default_factory=list)
    live_ms: list[float] = field(default_factory=list)
    live_alone_ms: list[float] = field(default_factory=list)
    live_coincident_ms: list[float] = field(default_factory=list)
    live_bytes: list[int] = field(default_factory=list)
    # where the time goes (accessory-side timestamps from the wrapped send_init/send_fragment)
    open_subscribed_ms: list[float] = field(default_factory=list)  # open -> prebuffer subscribed
    open_sent_ms: list[float] = field(default_factory=list)  # open -> last prebuffer send returned
    live_wake_ms: list[float] = field(default_factory=list)  # push -> camera pump calls send_fragment
    live_send_ms: list[float] = field(default_factory=list)  # send_fragment call -> last byte in the kernel
    burst: list[tuple[float, float]] = field(default_factory=list)  # per round: (wall s, loop CPU s)
    live_sent_ms: list[float] = field(default_factory=list)  # push -> last byte in the kernel
    live_tail_ms: list[float] = field(default_factory=list)  # last byte in the kernel -> hub read it
    live_left_in_transport: int = 0  # fragments whose last bytes were still in asyncio's buffer
    mismatches: int = 0
    errors: list[str] = field(default_factory=list)


def account(rig: CameraRig, result: StreamResult, all_pushes: list[float], samples: Samples,
            ) -> tuple[float, float] | None:
    """Map the hub's fragments to the camera's: sequence 1 is init, 2..P+1 the prebuffer, then
    the fragments pushed after the subscription, in order (sizes are checked)."""
    if result.error:
        samples.errors.append(f"{rig.camera.name}: {result.error}")
    mark = next((m for m in reversed(rig.subscribes) if m.at >= result.opened_at), None)
    if mark is None or not result.completed:
        samples.errors.append(f"{rig.camera.name}: no subscription or no fragment for this stream")
        return None
    burst_end: tuple[float, float] | None = None
    samples.response_ms.append(1000 * (result.response_at - result.opened_at))
    by_seq = {seq: (size, at) for seq, size, at in result.completed}
    sends = rig.sends.get(result.stream_id, [])  # sends[k] carried dataSequenceNumber k + 1
    last_pre = 1 + mark.prebuffer_fragments
    if last_pre in by_seq:
        samples.open_ms.append(1000 * (by_seq[last_pre][1] - result.opened_at))
        samples.open_bytes.append(sum(by_seq[s][0] for s in range(1, last_pre + 1) if s in by_seq))
        samples.prebuffer_fragments.append(mark.prebuffer_fragments)
        samples.open_subscribed_ms.append(1000 * (mark.at - result.opened_at))
        if len(sends) >= last_pre:
            samples.open_sent_ms.append(1000 * (sends[last_pre - 1][1] - result.opened_at))
            burst_end = (sends[last_pre - 1][1], sends[last_pre - 1][3])
    for seq, size, at in result.completed:
        if seq <= last_pre:
            continue
        index = mark.push_index + seq - last_pre - 1
        if index >= len(rig.pushes):
            samples.mismatches += 1
            continue
        pushed_at, pushed_size = rig.pushes[index]
        if pushed_size + (PRFT_SIZE if rig.hevc else 0) != size:  # H.265: a prft box before the moof
            samples.mismatches += 1
            continue
        ms = 1000 * (at - pushed_at)
        samples.live_ms.append(ms)
        samples.live_bytes.append(size)
        if len(sends) >= seq:
            entered, returned, buffered, _ = sends[seq - 1]
            samples.live_wake_ms.append(1000 * (entered - pushed_at))
            samples.live_send_ms.append(1000 * (returned - entered))
            samples.live_sent_ms.append(1000 * (returned - pushed_at))
            samples.live_tail_ms.append(1000 * (at - returned))
            samples.live_left_in_transport += buffered > 0
        others = sum(1 for t in all_pushes if abs(t - pushed_at) <= COINCIDENT_S) - 1
        (samples.live_coincident_ms if others else samples.live_alone_ms).append(ms)
    return burst_end


# --------------------------------------------------------------------------------------------
# CPU and memory


class Meter:
    """CPU seconds of this process, of the cameras' ffmpeg children, and of the whole machine."""

    def __init__(self, rigs: list[CameraRig]) -> None:
        self.me = psutil.Process()
        self.rigs = rigs

    def children(self) -> list[psutil.Process]:
        procs = []
        for rig in self.rigs:
            pid = rig.camera.pipeline.pid
            if pid is not None:
                with contextlib.suppress(psutil.Error):
                    procs.append(psutil.Process(pid))
        return procs

    def snapshot(self) -> tuple[float, float, float, float, dict[int, float]]:
        """(wall, own CPU, children CPU, machine busy, per-child CPU) — per child so that an
        ffmpeg restarted in between is counted from its own start, not double-counted."""
        kids: dict[int, float] = {}
        for proc in self.children():
            with contextlib.suppress(psutil.Error):
                kids[proc.pid] = process_cpu_s(proc)
        return time.monotonic(), process_cpu_s(self.me), sum(kids.values()), machine_busy_s(), kids

    @staticmethod
    def delta(a: tuple[float, float, float, float, dict[int, float]],
              b: tuple[float, float, float, float, dict[int, float]], hub_cpu: float = 0.0,
              ) -> tuple[float, float, float, float]:
        """(wall, own, children, others) seconds between two snapshots (others excludes the hub
        process's ``hub_cpu``)."""
        wall, own = b[0] - a[0], b[1] - a[1]
        kids = sum(cpu - a[4].get(pid, 0.0) for pid, cpu in b[4].items())
        others = max(0.0, (b[3] - a[3]) - own - kids - hub_cpu)
        return wall, own, kids, others

    async def sample_rss(self, peak: list[float]) -> None:
        """Keep ``peak[0]`` at this process's highest RSS (MiB), sampled every 0.5 s until cancelled:
        the memory that recordings need while they run, not what is left after they end."""
        while True:
            peak[0] = max(peak[0], self.me.memory_info().rss / 2**20)
            await asyncio.sleep(0.5)

    def rss_mib(self) -> tuple[float, float]:
        kids = 0
        for proc in self.children():
            with contextlib.suppress(psutil.Error):
                kids += proc.memory_info().rss
        return self.me.memory_info().rss / 2**20, kids / 2**20


# --------------------------------------------------------------------------------------------
# reference: the AEAD work the relay and the hub cannot avoid


def aead_ms_per_mb(total: int = 16 * MB, rounds: int = 3) -> tuple[float, float]:
    """Best-of-3 ChaCha20-Poly1305 (seal, open) of ``total`` bytes in MAX_CHUNK pieces, ms per MB.

    Each fragment byte is sealed once by the accessory and opened once by the hub, on this one
    thread: seal is the accessory's floor, seal + open the floor of camera -> hub here.
    """
    aead = ChaCha20Poly1305(ChaCha20Poly1305.generate_key())
    piece = os.urandom(MAX_CHUNK)
    pieces = max(1, total // MAX_CHUNK)
    nonces = [frames.nonce(i) for i in range(pieces)]
    best_seal = best_open = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        sealed = [aead.encrypt(nonce, piece, b"h") for nonce in nonces]
        t1 = time.perf_counter()
        for nonce, box in zip(nonces, sealed, strict=True):
            aead.decrypt(nonce, box, b"h")
        t2 = time.perf_counter()
        best_seal, best_open = min(best_seal, t1 - t0), min(best_open, t2 - t1)
    mb = pieces * MAX_CHUNK / MB
    return 1000 * best_seal / mb, 1000 * best_open / mb


_DRAIN = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
buf = bytearray(1 << 20)
while sock.recv_into(buf):
    pass
"""


def loopback_send_ms_per_mb(total: int = 16 * MB, segment: int = 1_080_000, rounds: int = 3) -> float:
    """Best-of-3 kernel cost of sending ``total`` bytes in ``segment``-sized writes over loopback
    to a reader in another process, with the HDS socket's 128 KiB SO_SNDBUF: this thread's CPU
    (user + kernel) per MB. On loopback the sender's system call also runs the receiver's TCP
    processing, so this is the floor of the socket half of the send path here (a NIC costs less).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    best = math.inf
    data = os.urandom(segment)
    try:
        for _ in range(rounds):
            reader = subprocess.Popen([sys.executable, "-c", _DRAIN, str(listener.getsockname()[1])])
            conn, _ = listener.accept()
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 128 * 1024)
                before = resource.getrusage(resource.RUSAGE_THREAD)
                for _ in range(max(1, total // segment)):
                    conn.sendall(data)
                after = resource.getrusage(resource.RUSAGE_THREAD)
            finally:
                conn.close()
                reader.wait(10)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            best = min(best, cpu)
    finally:
        listener.close()
    return 1000 * best / (max(1, total // segment) * segment / MB)


# --------------------------------------------------------------------------------------------
# the run


@dataclass
class Outcome:
    samples: Samples
    idle: tuple[float, float, float, float]
    busy: tuple[float, float, float, float]
    hub_busy_s: float  # the hub process's decrypt + parse
    hub_cpu_s: float  # the hub process's CPU while recording
    received: int  # bytes the hubs received (init + fragments)
    rss_idle: tuple[float, float]
    rss_busy: tuple[float, float]
    restarts: int
    size: tuple[int, int, int]
    aead_ms_mb: tuple[float, float]  # seal, open
    send_floor_ms_mb: float  # kernel send over loopback, this thread
    phases_ms: list[float]
    send_cpu: tuple[float, int]  # thread CPU s spent inside send_init/send_fragment calls, bytes they carried
    send_split: tuple[float, float, int]  # of which user s, system s; minor page faults
    # --hevc: the same two figures per codec ("H.264", "H.265"), the H.265 rewrite's CPU s and bytes,
    # and the sample entries of the init segments the hubs received (count per entry)
    by_codec: dict[str, tuple[tuple[float, int], tuple[float, float, int]]] = field(default_factory=dict)
    per_send: dict[str, list[float]] = field(default_factory=dict)  # per codec: each fragment send's ms/MB
    rewrite: tuple[float, int] = (0.0, 0)
    sample_entries: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # StepMeter: thread CPU s per step over the rounds


def is_hevc_camera(i: int, cameras: int, hevc: int) -> bool:
    """Camera ``i`` of ``cameras`` is one of the ``hevc`` H.265 ones (spread evenly among the others,
    so their fragment phases are spread too)."""
    return (i * hevc) // cameras != ((i + 1) * hevc) // cameras


def send_figures(rigs: list[CameraRig]) -> tuple[tuple[float, int], tuple[float, float, int]]:
    """The rigs' send path: (thread CPU s, bytes) and (user s, system s, minor faults)."""
    send_cpu = (sum(c for r in rigs for c, _ in r.send_cpu), sum(n for r in rigs for _, n in r.send_cpu))
    splits = [x for r in rigs for x in r.send_split]
    return send_cpu, (sum(u for u, _, _ in splits), sum(k for _, k, _ in splits), sum(f for _, _, f in splits))


async def run(clips: dict[str, Path], state: Path, args: argparse.Namespace) -> Outcome:
    capture = DeriveCapture()
    original = vars(aio_connection)["get_session_keys"]
    aio_connection.get_session_keys = capture  # type: ignore[attr-defined, assignment]
    rigs: list[CameraRig] = []
    hubs = HubProcess()
    rewrites = RewriteMeter()
    rewrites.install()
    steps = StepMeter()
    steps.install()
    DRAINS.install()
    sample_entries: dict[str, int] = {}
    try:
        await hubs.start(args.hub_cpu)
        pool = SealingPool()  # shared by every camera, as App does
        for i in range(args.cameras):
            # keep_warm "recording": ffmpeg starts when the hub turns recording on, so the fragment
            # phases can be spread (or aligned) below.
            hevc = is_hevc_camera(i, args.cameras, args.hevc)
            if hevc:
                config = CameraSpec(name=f"Bench Cam {i + 1:02d} H265", source=f"loop:{clips['libx265']}",
                                    profile="copy", setup_code=PIN, keep_warm="recording", record_codec="hevc")
            else:
                config = CameraSpec(name=f"Bench Cam {i + 1:02d}", source=f"loop:{clips['libx264']}", profile="copy",
                                    setup_code=PIN, keep_warm="recording")
            directory = state / f"cam{i + 1:02d}"
            directory.mkdir()
            camera = Camera(config, directory, host="127.0.0.1", port=0, advertiser=None, sealing_pool=pool)
            rig = CameraRig(i, camera, hevc=hevc)
            rig.instrument()
            rigs.append(rig)
            await camera.start()
        await asyncio.gather(*(wait_probed(r.camera) for r in rigs))
        for rig in rigs:  # one at a time, so each pairing's HKDF is the one captured
            await pair(rig, capture)
        began = time.monotonic()
        for i, rig in enumerate(rigs):
            if not args.aligned:  # ffmpeg starts when recording turns on: spread the 4 s fragment phases
                await asyncio.sleep(max(0.0, began + i * 4.0 / len(rigs) - time.monotonic()))
            await select_and_enable(rig)
        await asyncio.gather(*(r.camera.pipeline.wait_ready(PREBUFFER_MS, timeout_s=90) for r in rigs))
        await asyncio.sleep(2.0)  # the camera re-probes its own output once ready; let that settle
        for rig in rigs:
            if rig.camera.core.selection is None:  # the re-probe changed what is advertised: select again
                await select_and_enable(rig)
                await rig.camera.pipeline.wait_ready(PREBUFFER_MS, timeout_s=60)
        print(f"# {len(rigs)} cameras paired, selected {rigs[0].size[0]}x{rigs[0].size[1]}@{rigs[0].size[2]}, "
              f"prebuffers ready", flush=True)

        meter = Meter(rigs)
        restarts0 = sum(r.camera.pipeline.restarts for r in rigs)
        a, hub_a = meter.snapshot(), hubs.cpu_s()
        await asyncio.sleep(args.idle)
        idle = Meter.delta(a, meter.snapshot(), hubs.cpu_s() - hub_a)
        rss_idle = meter.rss_mib()

        samples = Samples()
        steps_before = steps.snapshot()
        busy = (0.0, 0.0, 0.0, 0.0)
        hub_busy = hub_cpu = 0.0
        received = 0
        rss_busy = (0.0, 0.0)
        rss_peak = [0.0]
        for round_no in range(args.rounds):
            spread = args.open_spread / max(1, len(rigs))
            jobs = [await hds_job(r, round_no + 1, i * spread, args.seconds) for i, r in enumerate(rigs)]
            await hubs.ask({"connect": jobs}, within=30)  # every hub has connected and said hello
            a, hub_a = meter.snapshot(), hubs.cpu_s()
            rss_peak[0] = 0.0  # per round (printed), the maximum over rounds goes in the table
            sampler = asyncio.ensure_future(meter.sample_rss(rss_peak))
            start_at = time.monotonic() + 0.2
            started: list[float] = []  # the loop thread's CPU time when the hubs open
            asyncio.get_running_loop().call_at(start_at, lambda s=started: s.append(time.thread_time()))
            try:
                answer = await hubs.ask({"start_at": start_at}, within=args.seconds + 60)
            finally:
                sampler.cancel()
            b, hub_cpu_round = meter.snapshot(), hubs.cpu_s() - hub_a
            hub_cpu += hub_cpu_round
            results = [StreamResult(**{**r, "completed": [tuple(c) for c in r["completed"]]})
                       for r in answer["results"]]
            received += sum(size for r in results for _, size, _ in r.completed)
            rss_busy = max(rss_busy, (rss_peak[0], meter.rss_mib()[1]))
            busy = tuple(x + y for x, y in zip(busy, Meter.delta(a, b, hub_cpu_round),  # type: ignore[assignment]
                                                strict=True))
            all_pushes = sorted(t for r in rigs for t, _ in r.pushes)
            ends = []
            for rig, result in zip(rigs, results, strict=True):
                hub_busy += result.hub_busy_s
                if result.sample_entry:
                    entry = f"{'H.265' if rig.hevc else 'H.264'} camera: {result.sample_entry}"
                    sample_entries[entry] = sample_entries.get(entry, 0) + 1
                end = account(rig, result, all_pushes, samples)
                if end is not None:
                    ends.append(end)
            if ends and started:
                last_at, last_cpu = max(ends)
                samples.burst.append((last_at - start_at, last_cpu - started[0]))
            # the next round starts once every camera's recording task has ended
            recordings = [r.camera._stream_task for r in rigs if r.camera._stream_task is not None]
            if recordings:
                await asyncio.wait(recordings, timeout=15)
            print(f"# round {round_no + 1}/{args.rounds}: {sum(1 for r in results if not r.error)} streams ok, "
                  f"{len(samples.live_ms)} live fragments so far, peak RSS {rss_peak[0]:.0f} MiB, "
                  f"RSS after the round {meter.rss_mib()[0]:.0f} MiB", flush=True)
            await asyncio.sleep(1.0)
        restarts = sum(r.camera.pipeline.restarts for r in rigs) - restarts0
        step_cpu = {k: v - steps_before[k] for k, v in steps.snapshot().items()}

        # phase of each camera's fragment boundaries (ms within the 4 s GOP), for the report
        phases = sorted(1000 * (r.pushes[-1][0] % 4.0) for r in rigs if r.pushes)
        send_cpu, send_split = send_figures(rigs)
        by_codec = {}
        per_send: dict[str, list[float]] = {}
        if args.hevc:
            by_codec = {"H.264": send_figures([r for r in rigs if not r.hevc]),
                        "H.265": send_figures([r for r in rigs if r.hevc])}
            for codec, hevc in (("H.264", False), ("H.265", True)):  # fragments only (the init is a few hundred bytes)
                per_send[codec] = [1000 * c / (n / MB) for r in rigs if r.hevc == hevc for c, n in r.send_cpu
                                   if n >= 100_000]
        return Outcome(samples, idle, busy, hub_busy, hub_cpu, received, rss_idle, rss_busy, restarts,
                       rigs[0].size, aead_ms_per_mb(), loopback_send_ms_per_mb(), phases, send_cpu, send_split,
                       by_codec, per_send, (rewrites.cpu_s, rewrites.bytes), sample_entries, step_cpu)
    finally:
        rewrites.uninstall()
        DRAINS.uninstall()
        steps.uninstall()
        await hubs.stop()
        for rig in rigs:
            if rig.pairing is not None:
                with contextlib.suppress(Exception):
                    await rig.pairing.shutdown()
        await asyncio.gather(*(r.camera.stop() for r in rigs), return_exceptions=True)
        aio_connection.get_session_keys = original  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# report


def header() -> str:
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split()[2]
    versions = {}
    for dist in ("aiohomekit", "cryptography", "psutil"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return (f"# recording_bench {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}: {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}, Python "
            f"{platform.python_version()}, ffmpeg {ffmpeg}, "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + "; load average (1, 5, 15 min) " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def report(o: Outcome, args: argparse.Namespace) -> None:
    s = o.samples
    n = args.cameras
    seal, unseal = o.aead_ms_mb
    rate = seal + unseal
    open_mb = (sum(s.open_bytes) / len(s.open_bytes) / MB) if s.open_bytes else math.nan
    live_mb = (sum(s.live_bytes) / len(s.live_bytes) / MB) if s.live_bytes else math.nan
    open_p99, live_p99 = pct(s.open_ms, 99), pct(s.live_ms, 99)

    def check(value: float, target: float) -> str:
        return "n/a" if math.isnan(value) else ("PASS" if value <= target else "FAIL")

    print()
    mix = f" ({args.hevc} of them H.265, recorded as H.265)" if args.hevc else ""
    print(f"{n} cameras{mix}, {args.rounds} rounds of {args.seconds:.0f} s, opens "
          + ("all at once" if not args.open_spread else f"spread over {args.open_spread:.1f} s")
          + (", fragment boundaries aligned" if args.aligned else ", fragment boundaries spread over 4 s")
          + f"; {o.size[0]}x{o.size[1]}@{o.size[2]} copy, {CLIP['kbps']} kbps, 4 s fragments, "
          f"prebuffer {PREBUFFER_MS} ms")
    print("Latencies end when the hub (in its own process) has decrypted and parsed the last chunk.")
    print()
    print("| figure | samples | p50 ms | p99 ms | max ms | reference, same run (AEAD seal+open floor) | "
          "target | check |")
    print("|---|---:|---:|---:|---:|---|---|---|")
    print(f"| dataSend open → init + prebuffer read by hub ({open_mb:.2f} MB, "
          f"{pct([float(x) for x in s.prebuffer_fragments], 50):.0f} prebuffer fragment(s)) | {len(s.open_ms)} | "
          f"{pct(s.open_ms, 50):.1f} | {open_p99:.1f} | {max(s.open_ms, default=math.nan):.1f} | "
          f"{open_mb * rate:.1f} ms one stream alone; {n * open_mb * rate:.1f} ms for all {n} serialized | "
          f"≤ {OPEN_TARGET_MS:.0f} ms p99 | {check(open_p99, OPEN_TARGET_MS)} |")
    print(f"| fragment complete → last chunk read by hub ({live_mb:.2f} MB) | {len(s.live_ms)} | "
          f"{pct(s.live_ms, 50):.2f} | {live_p99:.2f} | {max(s.live_ms, default=math.nan):.2f} | "
          f"{live_mb * rate:.2f} ms | ≤ {LIVE_TARGET_MS:.0f} ms p99 | {check(live_p99, LIVE_TARGET_MS)} |")
    print(f"| ... completing alone (no other camera's within {COINCIDENT_S * 1000:.0f} ms) | "
          f"{len(s.live_alone_ms)} | {pct(s.live_alone_ms, 50):.2f} | {pct(s.live_alone_ms, 99):.2f} | "
          f"{max(s.live_alone_ms, default=math.nan):.2f} | | | |")
    print(f"| ... completing with another camera's | {len(s.live_coincident_ms)} | "
          f"{pct(s.live_coincident_ms, 50):.2f} | {pct(s.live_coincident_ms, 99):.2f} | "
          f"{max(s.live_coincident_ms, default=math.nan):.2f} | | | |")
    sent_open_p99, sent_live_p99 = pct(s.open_sent_ms, 99), pct(s.live_sent_ms, 99)
    print(f"| accessory side only: open → last prebuffer fragment handed to the socket | {len(s.open_sent_ms)} | "
          f"{pct(s.open_sent_ms, 50):.1f} | {sent_open_p99:.1f} | {max(s.open_sent_ms, default=math.nan):.1f} | "
          f"seal only: {open_mb * seal:.1f} ms alone; {n * open_mb * seal:.1f} ms for all {n} serialized; seal "
          f"+ loopback send: {n * open_mb * (seal + o.send_floor_ms_mb):.1f} ms for all {n} | "
          f"≤ {OPEN_TARGET_MS:.0f} ms p99 | {check(sent_open_p99, OPEN_TARGET_MS)} |")
    print(f"| accessory side only: fragment complete → handed to the socket | {len(s.live_sent_ms)} | "
          f"{pct(s.live_sent_ms, 50):.2f} | {sent_live_p99:.2f} | {max(s.live_sent_ms, default=math.nan):.2f} | "
          f"seal only: {live_mb * seal:.2f} ms | "
          f"≤ {LIVE_TARGET_MS:.0f} ms p99 | {check(sent_live_p99, LIVE_TARGET_MS)} |")
    print()
    print("Where the time goes (accessory-side timestamps: the recording stream's send_init/send_fragment, wrapped):")
    print()
    print("| step | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|")
    steps = [
        ("open → open response read by hub", s.response_ms),
        ("open → camera subscribed to the prebuffer", s.open_subscribed_ms),
        ("open → last prebuffer byte in the kernel", s.open_sent_ms),
        ("live: fragment complete → camera's pump calls send_fragment (wake-up)", s.live_wake_ms),
        ("live: send_fragment call → last byte in the kernel (OPACK, seal and send, batch by batch)", s.live_send_ms),
        ("live: last byte in the kernel → hub has read the last chunk (loopback + hub reader)", s.live_tail_ms),
    ]
    for name, values in steps:
        print(f"| {name} | {pct(values, 50):.2f} | {pct(values, 99):.2f} | {max(values, default=math.nan):.2f} |")
    for i, (wall, cpu) in enumerate(s.burst):
        print(f"# round {i + 1}: the hubs' opens -> every prebuffer handed to the socket: {1000 * wall:.1f} ms, "
              f"of which the event loop's thread ran {1000 * cpu:.1f} ms ({100 * cpu / wall:.0f} %)")
    print(f"\n# live fragments with bytes still queued in the process (unsealed or in the transport) when "
          f"send_fragment returned: {s.live_left_in_transport} of {len(s.live_sent_ms)}")
    print()

    def pct_core(cpu: float, wall: float) -> str:
        return f"{100 * cpu / wall:.1f}" if wall else "n/a"

    iw, iown, ikids, iother = o.idle
    bw, bown, bkids, bother = o.busy
    print("| figure | while recording | reference: idle (prebuffers running, no recording) |")
    print("|---|---:|---:|")
    print(f"| this process CPU, % of a core (the accessory: cameras, HAP, HDS) | {pct_core(bown, bw)} | "
          f"{pct_core(iown, iw)} |")
    print(f"| hub process CPU, % of a core (of which decrypt + parse) | {pct_core(o.hub_cpu_s, bw)} "
          f"({pct_core(o.hub_busy_s, bw)}) | 0 |")
    print(f"| ffmpeg children CPU, % of a core | {pct_core(bkids, bw)} | {pct_core(ikids, iw)} |")
    print(f"| other programs on the machine, % of a core | {pct_core(bother, bw)} | {pct_core(iother, iw)} |")
    print(f"| this process RSS, MiB (peak while recording, sampled every 0.5 s) | {o.rss_busy[0]:.0f} | "
          f"{o.rss_idle[0]:.0f} |")
    print(f"| ffmpeg children RSS, MiB (sum) | {o.rss_busy[1]:.0f} | {o.rss_idle[1]:.0f} |")
    print()
    mb = o.received / MB
    extra = bown - (iown / iw * bw if iw else 0.0)
    print(f"# accessory CPU per MB sent: {1000 * extra / mb:.2f} ms/MB ({extra:.2f} s above idle for {mb:.1f} MB); "
          f"reference, AEAD seal alone: {seal:.2f} ms/MB; ratio {1000 * extra / mb / seal:.2f}")
    send_s, send_bytes = o.send_cpu
    print(f"# CPU inside send_init/send_fragment (queueing, and the batches sealed and sent while the socket "
          f"takes them at once; the rest is sealed as the socket drains, counted in the steps below): "
          f"{1000 * send_s / (send_bytes / MB):.2f} ms/MB over {send_bytes / MB:.1f} MB; "
          f"AEAD seal alone {seal:.2f} ms/MB; ratio {1000 * send_s / (send_bytes / MB) / seal:.2f}")
    user_s, sys_s, faults = o.send_split
    per_mb = send_bytes / MB
    print(f"# ... of which user {1000 * user_s / per_mb:.2f} and kernel {1000 * sys_s / per_mb:.2f} ms/MB "
          f"(thread getrusage); minor page faults inside the sends: {faults / per_mb:.0f} per MB")
    if o.steps and per_mb:
        step = {k: 1000 * v / per_mb for k, v in o.steps.items()}
        whole = sum(step.values())
        print(f"# the send path by step, each step's own CPU wherever it ran, ms/MB: the cipher (encrypt_into) "
              f"{step['cipher']:.2f} ({step['cipher'] / seal:.2f}x the AEAD reference), the staging copy "
              f"{step['gather']:.2f}, the chunks' OPACK {step['opack']:.2f}, queueing {step['queue']:.2f}, batching "
              f"{step['batch']:.2f}, the adapter {step['adapter']:.2f}, the socket's sends from a write "
              f"{step['write']:.2f} and from the writer's callback {step['write_ready']:.2f}; "
              f"the whole send path {whole:.2f} ms/MB, {whole / seal:.2f}x the AEAD seal")
    for codec, ((c_s, c_bytes), (c_user, c_sys, c_faults)) in o.by_codec.items():
        c_mb = c_bytes / MB
        if not c_mb:
            print(f"# {codec} recordings: nothing sent")
            continue
        print(f"# {codec} recordings' send path: {1000 * c_s / c_mb:.2f} ms/MB over {c_mb:.1f} MB (ratio to AEAD seal "
              f"{1000 * c_s / c_mb / seal:.2f}); user {1000 * c_user / c_mb:.2f}, kernel {1000 * c_sys / c_mb:.2f} "
              f"ms/MB; minor page faults {c_faults / c_mb:.0f} per MB")
        spread = o.per_send.get(codec, [])
        print(f"#   ... fragment by fragment ({len(spread)} sends): p25 {pct(spread, 25):.2f}, "
              f"p50 {pct(spread, 50):.2f}, p75 {pct(spread, 75):.2f} ms/MB")
    if o.by_codec:
        r_s, r_bytes = o.rewrite
        r_mb = r_bytes / MB
        h265_s, h265_bytes = o.by_codec["H.265"][0]
        if r_mb and h265_bytes:
            print(f"# H.265 rewrite (prft + moof copy, in the recording core before send_fragment): "
                  f"{1000 * r_s / r_mb:.3f} ms/MB over {r_mb:.1f} MB; H.265 send path + rewrite "
                  f"{1000 * (h265_s + r_s) / (h265_bytes / MB):.2f} ms/MB")
        print("# init segments the hubs received, by sample entry: "
              + ", ".join(f"{k} {v}" for k, v in sorted(o.sample_entries.items())))
    print(f"# floor of the send path on this machine: AEAD seal {seal:.2f} + kernel send over loopback "
          f"{o.send_floor_ms_mb:.2f} = {seal + o.send_floor_ms_mb:.2f} ms/MB (both measured in this run)")
    print(f"# AEAD on this thread: seal {seal:.2f} + open {unseal:.2f} ms/MB; "
          f"ffmpeg restarts during the rounds: {o.restarts}; "
          f"fragment-boundary phases (ms within 4 s): {', '.join(f'{p:.0f}' for p in o.phases_ms)}")
    if s.mismatches:
        print(f"# {s.mismatches} live fragments could not be matched to a push (size mismatch or missing)")
    for error in s.errors[:10]:
        print(f"# stream problem: {error}")
    background = max(100 * iother / iw if iw else 0.0, 100 * bother / bw if bw else 0.0)
    if background > BACKGROUND_WARN_PCT:
        print(f"WARNING: other programs used {background:.0f}% of a core (> {BACKGROUND_WARN_PCT:.0f}%) during "
              "the run: latencies and p99 are unreliable; re-run on a quiet machine.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=25.0, help="recording length per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--open-spread", type=float, default=0.0,
                        help="spread the N opens evenly over this many seconds (0: all at once)")
    parser.add_argument("--aligned", action="store_true",
                        help="start all ffmpegs together, so fragments complete at the same moments (worst case); "
                        "default: fragment boundaries spread evenly over the 4 s GOP, as independent cameras")
    parser.add_argument("--idle", type=float, default=8.0, help="idle reference window, seconds")
    parser.add_argument("--pin-hubs", action="store_true",
                        help="run the hub process on the last CPU and this process (with its ffmpeg children) on the "
                        "others, so that the simulated hubs, which would be other machines, do not take the "
                        "accessory's CPU")
    parser.add_argument("--hevc", type=int, default=0,
                        help="this many of the cameras are H.265 cameras recorded as H.265 (record_codec: hevc, "
                        "copy mode, the same clip made with libx265); default 0: every camera H.264")
    parser.add_argument("--hub-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pin-cpu", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 <= args.hevc <= args.cameras:
        parser.error("--hevc must be between 0 and --cameras")
    if args.hub_worker:
        if args.pin_cpu is not None:
            os.sched_setaffinity(0, {args.pin_cpu})
        asyncio.run(hub_worker())
        return
    cpus = sorted(os.sched_getaffinity(0))
    args.hub_cpu = None
    if args.pin_hubs and len(cpus) >= 2:
        args.hub_cpu = cpus[-1]
        os.sched_setaffinity(0, set(cpus[:-1]))  # inherited by the ffmpeg children
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(header(), flush=True)
    if args.hub_cpu is not None:
        print(f"# hubs pinned to CPU {args.hub_cpu}; this process and its ffmpeg children to CPU(s) "
              f"{', '.join(map(str, sorted(os.sched_getaffinity(0))))}", flush=True)
    with tempfile.TemporaryDirectory(prefix="recording-bench-") as tmp:
        directory = Path(tmp)
        clips = {}
        for codec in ("libx264", "libx265") if args.hevc else ("libx264",):
            t0 = time.monotonic()
            clips[codec] = clip = make_clip(directory, codec)
            print(f"# clip{'' if codec == 'libx264' else ' (' + codec + ')'}: {clip.stat().st_size / 1e6:.1f} MB, "
                  f"generated in {time.monotonic() - t0:.1f} s", flush=True)
        state = directory / "state"
        state.mkdir()
        try:
            outcome = asyncio.run(run(clips, state, args))
        except KeyboardInterrupt:
            print("# interrupted; cameras and hubs stopped", file=sys.stderr)
            sys.exit(130)
    report(outcome, args)
    print("# load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
