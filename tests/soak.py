"""The compressed-time soak: one sidecar, eight cameras, eight simulated hubs and a seeded
schedule of faults, for a given number of minutes of wall time. A separate command, not part of
the pytest run (it takes minutes of a whole machine)::

    python -m tests.soak --minutes 15 --seed 1

The sidecar runs in this process (``sidecar.App``, bound to 127.0.0.1, mDNS off), so its tasks
can be counted as well as its fds, threads, RSS and ffmpeg children. Its cameras: two demo
cameras, an RTSP camera recorded by copy (GStreamer, with a password), an RTSP camera that
drops every few minutes, a detector camera (motion comes only from the built-in detector, on a
clip where a box crosses the view every 12 s), and three looped H.264 files recorded by copy.

Each camera has its hub (aiohomekit for HAP, tests/hub for HDS): it pairs, selects a recording
configuration, switches recording on, watches MotionDetected and records every motion over HDS
until the motion clears. On the schedule (one ``random.Random(seed)``) hubs unpair and pair
again, change their selection, switch modes (recording off, camera off, back on), vanish in the
middle of a recording and stall one (stop reading, then drop the connection); ffmpeg processes
are SIGKILLed and cameras go away (the RTSP server killed, or stopped with SIGSTOP).

At the end it checks and prints: every motion that rose while its camera's source was up, its
hub was recording and no fault touched it produced a clip that decodes; fds, threads, tasks and
ffmpeg children are back at their counts after warm-up (listening sockets apart, at most a HAP
and an HDS listener per camera; the loop's default executor apart, at most its size); RSS grew
less than 10 % (printed every 5 minutes too); no log line holds a secret (the RTSP password, an
accessory's long-term key); the journal holds every recording a hub opened, each ended (but those
older than a camera's last 100 events, which the journal drops by design). Exit status 0 when
every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import json
import logging
import os
import random
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
from aiohomekit.controller.ip import connection as aio_connection

import sidecar
from sidecar import tlv8
from sidecar.camera.recording.configuration import SampleRate, encode_selection
from sidecar.malloc_tuning import giving_back_free_memory, keep_freed_memory
from sidecar.web import journal as journal_module
from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
    MOTION_DETECTED,
    SUPPORTED_AUDIO_RECORDING_CONFIGURATION,
    SUPPORTED_VIDEO_RECORDING_CONFIGURATION,
    Ids,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import controller_hds_keys, setup_write
from tests.hub.hds_client import HubDataStreamClient, build_setup_write, parse_setup_response
from tests.hub.recording import recording_selection, write
from tests.support.clips import advertised_codec, advertised_resolutions, decodes_cleanly
from tests.support.hap_client import aio_pair
from tests.support.motion_clip import make_motion_clip
from tests.support.ports import free_port
from tests.support.processes import ffmpeg_children
from tests.support.rtsp_camera import RtspCamera

PIN = "031-45-154"
RTSP_USER, RTSP_PASSWORD = "soak", "Soak-Secret-7Qx2"
DEMO, RTSP, DROPPER, DETECTOR, LOOP = "demo", "rtsp", "dropper", "detector", "loop"
CAMERAS = [("Demo A", DEMO), ("Demo B", DEMO), ("RTSP Copy", RTSP), ("Dropper", DROPPER),
           ("Detector", DETECTOR), ("Loop A", LOOP), ("Loop B", LOOP), ("Loop C", LOOP)]
WARMUP_S = 90.0  # cameras up, hubs paired and recording before the baseline is taken
QUIET_S = 60.0  # no new faults at the end: everything restarts and settles before the counts
DISTURB_S = 12.0  # a fault this close before a motion (or during its recording) excuses the clip


class Derives:
    """aiohomekit's pair-verify, wrapped to keep each accessory's latest HKDF closure (one hub
    per accessory, so the key is the accessory's pairing id)."""

    def __init__(self) -> None:
        self.by_accessory: dict[str, Any] = {}
        self.original: Any = vars(aio_connection)["get_session_keys"]

    def __call__(self, pairing_data: dict[str, Any]) -> Any:
        result = yield from self.original(pairing_data)
        self.by_accessory[pairing_data["AccessoryPairingID"]] = result[1]
        return result


@dataclass
class Clip:
    camera: str
    stream_id: int
    motion_at: float
    path: Path | None = None
    opened: bool = False
    error: str | None = None
    deliberate: str | None = None  # "vanish" / "stall": the hub broke it on purpose


@dataclass
class Tally:
    start: float = field(default_factory=time.monotonic)
    faults: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    disturbed: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # camera -> (from, to)
    clips: list[Clip] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # selections the camera refused
    motions: Counter[str] = field(default_factory=Counter)  # why a motion was not recorded (or "recorded")

    def disturb(self, camera: str, start: float, end: float) -> None:
        self.disturbed.setdefault(camera, []).append((start, end))

    def was_disturbed(self, camera: str, start: float, end: float) -> bool:
        return any(a - DISTURB_S <= end and start <= b + DISTURB_S for a, b in self.disturbed.get(camera, []))


class Hub:
    """One simulated home hub for one camera."""

    def __init__(self, name: str, camera: Any, derives: Derives, tally: Tally, rng: random.Random, out: Path) -> None:
        self.name, self.camera, self.derives, self.tally, self.rng, self.out = name, camera, derives, tally, rng, out
        self.pairing: Any = None
        self.ids: Ids = {}
        self.resolutions: list[tuple[int, int, int]] = []
        self.profiles: list[int] = []
        self.levels: list[int] = []
        self.channels = 1
        self.rates: list[int] = []
        self.recording = False  # in Stream & Allow Recording mode with a selection
        self.busy = asyncio.Lock()  # one HAP conversation at a time (actions vs the recorder)
        self.next_stream = 1
        self.mischief: str | None = None  # the next recording vanishes or stalls
        self.tasks: set[asyncio.Task[None]] = set()
        self.motion_down = asyncio.Event()
        self.in_flight = False
        self.over = False  # the soak is over: motion is no longer recorded
        self.first_selection: Any = None

    async def pair(self) -> None:
        port = self.camera.server.port
        self.pairing = await aio_pair(port, PIN)
        self.ids = iids_by_type(await self.pairing.list_accessories_and_characteristics())
        motion = (1, self.ids[MOTION_DETECTED])

        def on_event(ev: dict[Any, Any]) -> None:
            if motion in ev:
                if ev[motion]["value"]:
                    self.motion_down.clear()
                    self.on_motion()
                else:
                    self.motion_down.set()

        self.pairing.dispatcher_connect(on_event)
        await self.pairing.subscribe([motion])
        await self.select()
        self.recording = True

    async def select(self, selection: Any = None) -> None:
        """A selection among what the camera advertises, as a hub picks one (picture, bitrate,
        audio and prebuffer vary); ``selection`` to choose it."""
        for attempt in range(5):
            await self.read_supported()  # what the camera supports changes once it has probed its source
            choice = selection if selection is not None and attempt == 0 else self.choose()
            answer = await write(self.pairing, self.ids, selection=encode_selection(choice), homekit=1, recording=1)
            if answer == {}:
                self.first_selection = self.first_selection or choice
                return
            self.tally.refused.append(f"{self.name}: {choice}")
        raise AssertionError(f"{self.name}: every selection refused")

    async def read_supported(self) -> None:
        svc, asc = SUPPORTED_VIDEO_RECORDING_CONFIGURATION, SUPPORTED_AUDIO_RECORDING_CONFIGURATION
        raw = await self.pairing.get_characteristics([(1, self.ids[svc]), (1, self.ids[asc])])
        video = base64.b64decode(raw[(1, self.ids[svc])]["value"])
        self.resolutions = sorted(advertised_resolutions(video))
        self.profiles, self.levels = advertised_codec(video)
        audio = base64.b64decode(raw[(1, self.ids[asc])]["value"])
        params = tlv8.decode(tlv8.decode_dict(tlv8.decode_dict(audio)[1])[2])
        self.channels = next(v[0] for t, v in params if t == 1)
        self.rates = [v[0] for t, v in params if t == 3]

    def choose(self) -> Any:
        width, height, fps = self.rng.choice(self.resolutions)
        selection = replace(recording_selection(width=width, height=height, fps=fps,
                                                bitrate_kbps=self.rng.choice([600, 1000, 2000]),
                                                profile=self.rng.choice(self.profiles),
                                                level=self.rng.choice(self.levels),
                                                audio_kbps=self.rng.choice([32, 64])),
                            audio_channels=self.channels, sample_rate=SampleRate(self.rng.choice(self.rates)))
        return selection

    async def unpair(self) -> None:
        self.recording = False
        pairing, self.pairing = self.pairing, None
        with contextlib.suppress(Exception):
            await pairing.remove_pairing(pairing.pairing_data["iOSPairingId"])
        with contextlib.suppress(Exception):
            await pairing.shutdown()

    def on_motion(self) -> None:
        now = time.monotonic()
        if self.over:
            return
        if not self.recording:
            self.tally.motions["hub not recording (a hub move)"] += 1
            return
        if self.in_flight:
            self.tally.motions["rose again during its recording"] += 1
            return
        self.in_flight = True
        task = asyncio.ensure_future(self.record(now))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def record(self, motion_at: float) -> None:
        clip = Clip(self.name, self.next_stream, motion_at)
        self.next_stream += 1
        self.tally.clips.append(clip)
        mischief, self.mischief = self.mischief, None
        client: HubDataStreamClient | None = None
        try:
            async with self.busy:
                salt = os.urandom(32)
                entry = await setup_write(self.pairing, self.ids[DATA_STREAM_SETUP], build_setup_write(salt))
                assert entry.get("status", 0) == 0, entry
                response = parse_setup_response(base64.b64decode(entry["value"]))
                derive = self.derives.by_accessory[self.pairing.pairing_data["AccessoryPairingID"]]
                keys = controller_hds_keys(derive, salt, response.accessory_salt)
            reader, writer = await asyncio.open_connection("127.0.0.1", response.port)
            client = HubDataStreamClient(reader, writer, keys)
            await client.hello()
            opened = await client.open(clip.stream_id)
            assert (opened.header.status, opened.body) == (0, {"status": 0}), opened
            clip.opened = True
            frags, closed = await client.collect(clip.stream_id, fragments=2, within=30)  # init + prebuffer
            if mischief == "vanish":
                clip.deliberate = mischief
                writer.transport.abort()
                return
            if mischief == "stall":
                clip.deliberate = mischief
                await asyncio.sleep(20)  # read nothing: the sidecar's buffers fill, then it must give up
                writer.transport.abort()
                return
            while closed is None and not self.motion_down.is_set() and len(frags) < 12:
                more, closed = await client.collect(clip.stream_id, fragments=1, within=15)
                frags += more
            if closed is None:
                await client.close_stream(clip.stream_id, 0)
            assert frags and frags[0].data_type == "mediaInitialization"
            clip.path = self.out / f"{self.name.replace(' ', '_')}-{clip.stream_id}.mp4"
            clip.path.write_bytes(b"".join(f.data for f in frags))
            if closed is not None:
                clip.error = f"closed by the accessory: {closed.body}"
        except Exception as exc:
            clip.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.in_flight = False
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 5)

    async def act(self) -> None:
        """One of the hub's moves, chosen by the schedule."""
        move = self.rng.choices(["select", "mode", "unpair", "vanish", "stall"], [4, 3, 1, 1, 1])[0]
        self.tally.actions[move] += 1
        now = time.monotonic()
        if move in ("vanish", "stall"):
            self.mischief = move
            return
        async with self.busy:
            if self.pairing is None:
                return
            if move == "select":
                await self.select()
                self.tally.disturb(self.name, now, time.monotonic())  # a new selection restarts ffmpeg
            elif move == "mode":
                self.recording = False
                off = self.rng.choice([{"recording": 0}, {"homekit": 0}])
                await write(self.pairing, self.ids, **off)
                await asyncio.sleep(self.rng.uniform(10, 30))
                await write(self.pairing, self.ids, homekit=1, recording=1)
                self.recording = True
                self.tally.disturb(self.name, now, time.monotonic())
            elif move == "unpair":
                await self.unpair()
                await asyncio.sleep(self.rng.uniform(3, 10))
                await self.pair()
                self.tally.disturb(self.name, now, time.monotonic())

    async def close(self) -> None:
        for task in list(self.tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 40)
        if self.pairing is not None:
            await self.pairing.shutdown()


EXECUTOR_PREFIX = "soak-executor"
EXECUTOR_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # asyncio's own default size


def usage() -> dict[str, float]:
    """The counts compared. Listening sockets are counted apart from ``fds``: each camera binds
    its HDS listener on the first data stream a hub sets up and keeps it (one per camera), so
    how many there are depends on which cameras had recorded by the warm-up's end. The loop's
    default executor's threads are counted apart from ``threads`` too: the pool starts a thread
    when work finds none idle and keeps it, up to ``EXECUTOR_WORKERS`` (bounded by design), so
    a busier moment late in a long run adds one without anything leaking."""
    proc = psutil.Process()
    executor = sum(1 for t in threading.enumerate() if t.name.startswith(EXECUTOR_PREFIX))
    ffmpeg = len(ffmpeg_children(recursive=True, running=True))
    tasks = len([t for t in asyncio.all_tasks() if not t.done()])
    listening = sum(1 for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN)
    return {"fds": proc.num_fds() - listening, "listening": listening, "threads": proc.num_threads() - executor,
            "executor_threads": executor, "tasks": tasks, "ffmpeg": ffmpeg,
            "rss_mib": round(proc.memory_info().rss / 2**20, 1)}


class _Mallinfo2(ctypes.Structure):  # glibc's struct mallinfo2 (mallinfo(3)), every field a size_t
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap() -> dict[str, float]:
    """The C heap over every arena (glibc's ``mallinfo2``), in MiB: what the program holds
    (``in_use``) apart from what the allocator keeps free (``free``) and maps directly
    (``mmapped``). RSS growing while ``in_use`` stays flat is the allocator's fragmentation or
    high-water mark, not a leak. Empty where the C library has no ``mallinfo2``."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    info = fn()
    mib = 2**20
    return {"in_use": round((info.uordblks + info.hblkhd) / mib, 1), "free": round(info.fordblks / mib, 1),
            "mmapped": round(info.hblkhd / mib, 1)}


def inventory(hap_ports: set[int]) -> Counter[str]:
    """What the fds, connections and tasks are (for the diagnosis when a count grew)."""
    found: Counter[str] = Counter()
    for conn in psutil.Process().net_connections(kind="inet"):
        ports = {conn.laddr.port} | ({conn.raddr.port} if conn.raddr else set())
        side = "HAP" if ports & hap_ports else "other"
        found[f"connection {side} {conn.status}"] += 1
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            found["fd " + (target.split(":")[0] if ":" in target else "file " + Path(target).suffix)] += 1
    for task in asyncio.all_tasks():
        if not task.done():
            coro: Any = task.get_coro()
            found["task " + getattr(coro, "__qualname__", repr(coro))] += 1
    for thread in __import__("threading").enumerate():
        found["thread " + thread.name.rstrip("0123456789_-")] += 1
    return found


async def wait_for(condition: Any, timeout: float, step: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(step)
    return bool(condition())


async def soak(minutes: float, seed: int, work: Path, trace: bool = False) -> int:
    rng = random.Random(seed)
    # asyncio's default executor at its default size, with names the thread count can tell apart
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=EXECUTOR_WORKERS, thread_name_prefix=EXECUTOR_PREFIX))
    tally = Tally()
    log_path = work / "sidecar.log"
    logs = log_path.open("a", encoding="utf-8")
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    derives = Derives()
    aio_connection.get_session_keys = derives  # type: ignore[assignment]

    clip = await asyncio.to_thread(make_motion_clip, work / "yard.mp4")
    loop_clip = work / "loop.mp4"
    await asyncio.to_thread(
        __import__("subprocess").run,
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=32000", "-t", "12", "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "32000", "-ac", "1", str(loop_clip)])
    rtsp = {kind: RtspCamera(work / f"{kind}.log", width=640, height=360, gop=60, user=RTSP_USER,
                             password=RTSP_PASSWORD) for kind in (RTSP, DROPPER)}
    for cam in rtsp.values():
        await cam.start()

    def source(kind: str) -> dict[str, Any]:
        if kind == DEMO:
            return {"source": "demo", "profile": "libx264"}
        if kind in (RTSP, DROPPER):
            return {"source": rtsp[kind].url.replace("rtsp://", f"rtsp://{RTSP_USER}:{RTSP_PASSWORD}@"),
                    "profile": "copy"}
        if kind == DETECTOR:
            return {"source": f"loop:{clip}", "profile": "copy", "motion": ["detector"],
                    "detector": {"off_delay": 2}}
        return {"source": f"loop:{loop_clip}", "profile": "copy"}

    config = sidecar.build_config({
        "state_dir": str(work / "state"), "bind": "127.0.0.1", "mdns": False, "http_port": free_port(),
        "cameras": [{"name": name, "setup_code": PIN, **source(kind)} for name, kind in CAMERAS]})
    app = sidecar.App(config, out=logs)
    giving_back = contextlib.AsyncExitStack()  # the heap's give-back, as the command runs it (sidecar/cli.py)
    await giving_back.enter_async_context(giving_back_free_memory())
    await app.start()
    cameras = {c.name: c for c in app.cameras}
    hap_ports = {c.server.port for c in app.cameras}
    hubs = {name: Hub(name, cameras[name], derives, tally, random.Random(rng.random()), work)
            for name, _ in CAMERAS}
    failures: list[str] = []
    figures: dict[str, Any] = {"minutes": minutes, "seed": seed, "cameras": len(CAMERAS), "hubs": len(hubs)}
    try:
        await asyncio.gather(*(hub.pair() for hub in hubs.values()))
        end = tally.start + minutes * 60
        faults_end = end - QUIET_S
        await asyncio.sleep(max(0.0, tally.start + WARMUP_S - time.monotonic()))
        await wait_for(lambda: all(c.pipeline.pid for c in app.cameras), 60)
        baseline, before = usage(), inventory(hap_ports)
        print(f"baseline after warm-up: {baseline}; C heap {heap()}", flush=True)
        if trace:  # from here: what is allocated after the warm-up and still held at the end
            tracemalloc.start(8)
            traced_at_baseline = tracemalloc.take_snapshot()

        async def motions() -> None:  # the driver's motion on every camera but the detector's
            while time.monotonic() < faults_end:
                await asyncio.sleep(rng.uniform(5, 15))
                name = rng.choice([n for n, kind in CAMERAS if kind != DETECTOR])
                cameras[name].set_motion(True)
                asyncio.get_running_loop().call_later(rng.uniform(6, 14), cameras[name].set_motion, False)

        async def guarded(step: Any, what: str) -> None:
            try:
                await step
            except Exception as exc:
                failures.append(f"{what} failed: {type(exc).__name__}: {exc}")

        async def hub_moves() -> None:
            running: set[asyncio.Task[None]] = set()
            while time.monotonic() < faults_end - 30:
                await asyncio.sleep(rng.uniform(8, 20))
                hub = hubs[rng.choice(list(hubs))]
                task = asyncio.ensure_future(guarded(hub.act(), f"{hub.name}: a hub move"))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running, return_exceptions=True)

        async def kills() -> None:
            while time.monotonic() < faults_end:
                await asyncio.sleep(rng.uniform(30, 75))
                name = rng.choice(list(cameras))
                pid = cameras[name].pipeline.pid
                if pid:
                    now = time.monotonic()
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        tally.faults["ffmpeg SIGKILL"] += 1
                        tally.disturb(name, now, now + 10)

        async def dropper() -> None:  # the camera that drops every few minutes
            cam = rtsp[DROPPER]
            while time.monotonic() < faults_end - 60:
                await asyncio.sleep(rng.uniform(90, 180))
                down = time.monotonic()
                await cam.kill()
                tally.faults["camera gone (RTSP server killed)"] += 1
                await asyncio.sleep(rng.uniform(15, 40))
                await cam.start()
                tally.disturb("Dropper", down, time.monotonic() + 15)

        async def stalls() -> None:  # the RTSP camera freezes now and then (TCP up, nothing sent)
            cam = rtsp[RTSP]
            while time.monotonic() < faults_end - 60:
                await asyncio.sleep(rng.uniform(120, 240))
                down = time.monotonic()
                cam.pause()
                tally.faults["camera stalled (SIGSTOP)"] += 1
                await asyncio.sleep(rng.uniform(10, 30))
                cam.resume()
                tally.disturb("RTSP Copy", down, time.monotonic() + 15)

        rss_series: list[float] = []

        async def rss_every_5_minutes() -> None:  # the shape of the growth, not only its end
            while time.monotonic() < faults_end:
                await asyncio.sleep(min(300.0, max(0.0, faults_end - time.monotonic())))
                rss_series.append(usage()["rss_mib"])
                traced = (f", traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB (tracing itself "
                          f"{tracemalloc.get_tracemalloc_memory() / 2**20:.1f})" if trace else "")
                print(f"RSS at +{(time.monotonic() - tally.start) / 60:.0f} min: {rss_series[-1]} MiB; "
                      f"C heap {heap()}{traced}", flush=True)

        await asyncio.gather(motions(), hub_moves(), kills(), dropper(), stalls(), rss_every_5_minutes())
        figures["rss_mib_every_5_minutes"] = rss_series
        print("faults over; settling", flush=True)
        for hub in hubs.values():  # back to the selection of the warm-up, so the prebuffers compare
            async with hub.busy:
                if hub.pairing is not None:
                    await guarded(hub.select(hub.first_selection), f"{hub.name}: selecting again")
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        for hub in hubs.values():  # no new recordings; those in flight end
            hub.over = True
        for hub in hubs.values():
            await asyncio.gather(*hub.tasks, return_exceptions=True)
        await wait_for(lambda: all(c.pipeline.pid for c in app.cameras), 60)
        for camera in app.cameras:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(camera.pipeline.wait_ready(4000), 30)
        settled_at = time.monotonic()
        for _ in range(12):  # settled: the counts are back (or a minute has passed)
            await asyncio.sleep(5)
            final, after = usage(), inventory(hap_ports)
            if all(final[k] <= baseline[k] for k in ("fds", "threads", "tasks", "ffmpeg")):
                break
        figures["settled_after_s"] = round(time.monotonic() - settled_at, 1)
        print(f"at the end: {final}; C heap {heap()}", flush=True)
        if trace:
            held = tracemalloc.take_snapshot().compare_to(traced_at_baseline, "traceback")
            print("held since the warm-up, by where it was allocated (the 8 largest):", flush=True)
            for stat in held[:8]:
                print(f"  {stat.size_diff / 2**20:+.2f} MiB in {stat.count_diff:+d} blocks", flush=True)
                for line in stat.traceback.format()[-8:]:
                    print("   ", line, flush=True)
            tracemalloc.stop()
        figures.update(baseline=baseline, final=final)

        for key in ("fds", "threads", "tasks", "ffmpeg"):
            if final[key] > baseline[key]:
                failures.append(f"{key}: {baseline[key]} after warm-up, {final[key]} at the end")
        if final["executor_threads"] > EXECUTOR_WORKERS:
            failures.append(f"{final['executor_threads']} executor threads (at most {EXECUTOR_WORKERS})")
        if final["listening"] > 2 * len(CAMERAS) + 1:  # a HAP and an HDS listener per camera, the web server
            failures.append(f"{final['listening']} listening sockets for {len(CAMERAS)} cameras")
        grew = {k: after[k] - before[k] for k in after.keys() | before.keys() if after[k] != before[k]}
        if grew:
            print("what changed:", dict(sorted(grew.items())), flush=True)
        growth = (final["rss_mib"] - baseline["rss_mib"]) / baseline["rss_mib"]
        figures["rss_growth_pct"] = round(growth * 100, 1)
        if growth >= 0.10:
            failures.append(f"RSS grew {growth:.1%}")

        # The journal: every recording a hub opened is there, and has ended.
        assert app.web is not None
        journal = app.web.journal.dump(time.time())
        in_journal: dict[str, dict[int, Any]] = {}
        for name, entries in journal.items():
            in_journal[name] = {r["stream_id"]: r for e in entries for r in e["recordings"]}
        # The journal keeps each camera's last MAX_ENTRIES events (bounded by design): in a long
        # run the oldest recordings of a busy camera leave it. Those are the ones older than every
        # recording it still holds, and only once it is full; any other gap is a lost recording.
        full = {name for name, entries in journal.items() if len(entries) >= journal_module.MAX_ENTRIES}
        oldest = {name: min(ids) for name, ids in in_journal.items() if ids}
        rotated = [(c.camera, c.stream_id) for c in tally.clips if c.opened and c.stream_id not in in_journal[c.camera]
                   and c.camera in full and c.stream_id < oldest.get(c.camera, 0)]
        missing = [(c.camera, c.stream_id) for c in tally.clips if c.opened and c.stream_id not in in_journal[c.camera]
                   and (c.camera, c.stream_id) not in rotated]
        unended = [(c.camera, c.stream_id) for c in tally.clips
                   if c.opened and c.stream_id in in_journal[c.camera]
                   and in_journal[c.camera][c.stream_id]["ended"] is None]
        figures["journal"] = {"recordings opened": sum(c.opened for c in tally.clips), "missing": len(missing),
                              "not ended": len(unended),
                              f"older than the last {journal_module.MAX_ENTRIES} events of a camera": len(rotated)}
        if missing:
            failures.append(f"recordings missing from the journal: {missing}")
        if unended:
            failures.append(f"recordings the journal holds as not ended: {unended}")
    finally:
        for hub in hubs.values():
            with contextlib.suppress(Exception):
                await hub.close()
        await app.stop()
        await giving_back.aclose()
        for cam in rtsp.values():
            await cam.kill()
        logging.getLogger().removeHandler(handler)

    # Clips: every clean motion (source up, hub recording, no fault near it) decodes.
    clean = bad = excused = 0
    for c in tally.clips:
        disturbed = c.deliberate is not None or tally.was_disturbed(c.camera, c.motion_at, c.motion_at + 60)
        ok = c.path is not None and c.error is None and await decodes_cleanly(c.path)
        if disturbed:
            excused += 1
            tally.motions["recorded near a fault" if ok else "lost to a fault (excused)"] += 1
            continue
        clean += 1
        tally.motions["recorded, decodes" if ok else "LOST"] += 1
        if not ok:
            bad += 1
            failures.append(f"{c.camera} stream {c.stream_id}: no decodable clip ({c.error})")
    figures.update(selections_refused=tally.refused,
                   motions=dict(tally.motions), faults=dict(tally.faults), hub_moves=dict(tally.actions),
                   clean_motions=clean, clean_motions_without_clip=bad, excused_motions=excused)

    # Secrets: the RTSP password and the accessories' long-term keys appear in no log line.
    logs.close()
    text = log_path.read_text(encoding="utf-8")
    secrets = [RTSP_PASSWORD]
    for path in (work / "state").glob("*.json"):
        with contextlib.suppress(Exception):
            data = json.loads(path.read_text())
            ltsk = bytes.fromhex(data["signing_seed"])  # the accessory's long-term secret key
            secrets += [ltsk.hex(), base64.b64encode(ltsk).decode()]
    leaks = [s for s in secrets if s in text]
    figures["log"] = {"lines": text.count("\n"), "secrets checked": len(secrets), "secrets found": len(leaks)}
    if leaks:
        failures.append(f"{len(leaks)} secret(s) in the log")
    print(json.dumps(figures, indent=1))
    for failure in failures:
        print("FAIL:", failure)
    print("PASS" if not failures else f"{len(failures)} check(s) failed")
    return 0 if not failures else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep clips and the log in this directory")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace Python's allocations after the warm-up and print what is still held at the end")
    args = parser.parse_args()
    keep_freed_memory()  # the heap settings the hksv-sidecar command runs with (sidecar/malloc_tuning.py)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        sys.exit(asyncio.run(soak(args.minutes, args.seed, args.keep, args.tracemalloc)))
    with tempfile.TemporaryDirectory(prefix="hksv-soak-") as tmp:
        sys.exit(asyncio.run(soak(args.minutes, args.seed, Path(tmp), args.tracemalloc)))


if __name__ == "__main__":
    main()
