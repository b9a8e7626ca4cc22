"""Runs inside a private network namespace (see tests/interop/test_homebridge_plugin.py).

Usage: ``homebridge_plugin.py NODE HOMEBRIDGE_JS STORAGE [child-bridge]``. Real Homebridge (``HOMEBRIDGE_JS``, its
``bin/homebridge`` script, run by ``NODE``) starts with ``STORAGE`` as its storage folder and loads
the plugins installed in ``STORAGE/node_modules`` only, the way hb-service runs it: the test has
installed our plugin there from its ``npm pack`` tarball. The config has one demo camera with a
motion switch; with ``child-bridge`` the plugin runs in a child bridge (its own Node process and
HAP bridge, Homebridge's ``_bridge`` setting). aiohomekit pairs with the camera's own HAP server
(the sidecar child) and with the bridge that holds the switch, flips the switch and waits for
MotionDetected on the camera.
Then the sidecar child is killed (the plugin must restart it after 7 s) and Homebridge is stopped
(nothing may be left behind). Prints one JSON line of findings; the test asserts on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from tests.hub.characteristics import HOMEKIT_CAMERA_ACTIVE, MOTION_DETECTED, RECORDING_ACTIVE  # noqa: E402
from tests.hub.database import iids_by_type, short  # noqa: E402
from tests.support.hap_client import aio_pair, watch  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

BRIDGE_PIN = "031-45-154"
CAMERA_PIN = "032-45-154"
CAMERA = "HB Camera"


class Log:
    """Homebridge's stdout, line by line, with waits on patterns."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self.stream = stream
        self._new = asyncio.Event()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while raw := await self.stream.readline():
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new.set()
        self._new.set()

    async def wait(self, pattern: str, timeout: float = 40.0, after: int = 0) -> re.Match[str]:
        regex = re.compile(pattern)
        seen = after
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines[seen:]:
                    if m := regex.search(line):
                        return m
                seen = len(self.lines)
                if self.task.done():
                    raise AssertionError(f"homebridge ended before {pattern!r}")
                self._new.clear()
                await self._new.wait()


def tree(pid: int) -> dict[int, tuple[psutil.Process, str]]:
    """Descendants of pid with their names, read while they are alive."""
    out: dict[int, tuple[psutil.Process, str]] = {}
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for p in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            out[p.pid] = (p, p.name())
    return out


def alive(procs: dict[int, tuple[psutil.Process, str]]) -> list[str]:
    out = []
    for p, name in procs.values():
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {name}")
        except psutil.NoSuchProcess:
            pass
    return out


async def run(node: str, homebridge: str, storage: Path, child_bridge: bool, result: dict[str, Any]) -> None:
    main_port = free_port()
    platform: dict[str, Any] = {
        "platform": "HksvSidecar", "name": "HKSV", "command": str(Path(sys.executable).parent / "hksv-sidecar"),
        "bind": "127.0.0.1", "mdns": False,
        "cameras": [{"name": CAMERA, "source": "demo", "profile": "libx264", "setupCode": CAMERA_PIN,
                     "motionSwitch": True}]}
    bridge_port = main_port
    if child_bridge:
        bridge_port = free_port()
        platform["_bridge"] = {"username": "0E:11:22:33:44:66", "port": bridge_port, "pin": BRIDGE_PIN}
    config = {
        "bridge": {"name": "HB Test", "username": "0E:11:22:33:44:55", "port": main_port, "pin": BRIDGE_PIN,
                   "advertiser": "ciao", "bind": ["lo"]},
        "platforms": [platform],
    }
    (storage / "config.json").write_text(json.dumps(config))
    hb = await asyncio.create_subprocess_exec(
        node, homebridge, "-U", str(storage), "-P", str(storage / "node_modules"), "--strict-plugin-resolution", "-T",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "FORCE_COLOR": "0"}, start_new_session=True)
    assert hb.stdout is not None
    log = Log(hb.stdout)
    result["log"] = log.lines
    everything: dict[int, tuple[psutil.Process, str]] = {}
    try:
        found = await log.wait(r"Homebridge v([\d.]+) \(HAP v([\d.]+)\)")
        result["homebridge"], result["hap"] = found.group(1), found.group(2)
        child_pid = int((await log.wait(r"hksv-sidecar started \(pid (\d+)\)")).group(1))
        result["child_is_ours"] = child_pid in tree(hb.pid)
        # the process that runs the plugin: Homebridge itself, or its child bridge process
        result["plugin_process"] = psutil.Process(child_pid).parent().name()
        port = int((await log.wait(rf"\[{CAMERA}\] Scan this code .*\(HAP port (\d+)\)")).group(1))
        await log.wait(rf"\[{CAMERA}\] └─")
        start = next(i for i, line in enumerate(log.lines) if "Scan this code" in line)
        end = next(i for i, line in enumerate(log.lines) if "Or enter this code" in line)
        result["qr_lines"] = end - start - 1
        result["setup_code_logged"] = any(f"│ {CAMERA_PIN} │" in line for line in log.lines)
        result["setup_payload"] = (await log.wait(rf"\[{CAMERA}\] Setup Payload: (X-HM://\S+)")).group(1)
        # the sidecar's own log lines, with the camera's name in brackets
        await log.wait(rf"\[HKSV\] \[{CAMERA}\] HAP server on 127\.0\.0\.1:{port} \(paired: False\)")
        await log.wait(rf"running on port {main_port}")
        await log.wait(rf"running on port {bridge_port}")

        camera = await aio_pair(port, CAMERA_PIN)
        bridge = await aio_pair(bridge_port, BRIDGE_PIN)
        try:
            ids = iids_by_type(await camera.list_accessories_and_characteristics())
            # recording on: the sidecar's ffmpeg starts, so "nothing left behind" means something
            await camera.put_characteristics([(1, ids[HOMEKIT_CAMERA_ACTIVE], 1), (1, ids[RECORDING_ACTIVE], 1)])
            motion = await watch(camera, ids[MOTION_DETECTED])

            bridged = await bridge.list_accessories_and_characteristics()
            result["bridged_services"] = sorted({short(s["type"]) for a in bridged for s in a["services"]})
            switch = next((a["aid"], c["iid"]) for a in bridged for s in a["services"] if short(s["type"]) == "49"
                          for c in s["characteristics"] if short(c["type"]) == "25")
            result["switch_name"] = next(c["value"] for a in bridged if a["aid"] == switch[0] for s in a["services"]
                                         for c in s["characteristics"] if short(c["type"]) == "23")
            flipped = time.monotonic()
            await bridge.put_characteristics([(switch[0], switch[1], True)])
            await asyncio.wait_for(motion.arrived.wait(), 15)
            result["motion_via_switch_s"] = round(time.monotonic() - flipped, 3)
            motion.arrived.clear()
            await bridge.put_characteristics([(switch[0], switch[1], False)])  # switch off: motion clears
            await asyncio.wait_for(motion.arrived.wait(), 15)
            result["motion_seen"] = motion.seen
            for _ in range(100):
                everything.update(tree(hb.pid))
                if any(name == "ffmpeg" for _, name in everything.values()):
                    break
                await asyncio.sleep(0.1)
        finally:
            await camera.shutdown()
            await bridge.shutdown()
        result["ffmpeg_running"] = sum(name == "ffmpeg" for _, name in everything.values())

        # The sidecar dies: the plugin restarts it 7 s later (and the camera is still paired).
        mark = len(log.lines)
        killed = time.monotonic()
        os.kill(child_pid, signal.SIGKILL)
        await log.wait(r"hksv-sidecar exited \(signal SIGKILL\); restarting in 7 s", after=mark)
        new_pid = int((await log.wait(r"hksv-sidecar started \(pid (\d+)\)", after=mark, timeout=30)).group(1))
        result["restart_after_s"] = round(time.monotonic() - killed, 2)
        result["restarted_new_pid"] = new_pid != child_pid
        await log.wait(rf"\[{CAMERA}\] paired with HomeKit", after=mark, timeout=30)
        everything.update(tree(hb.pid))

        # Homebridge stops: the plugin stops the child; nothing is left behind.
        stopped = time.monotonic()
        hb.send_signal(signal.SIGTERM)
        result["homebridge_exit"] = await asyncio.wait_for(hb.wait(), 15)
        left: list[str] = alive(everything)
        while left and time.monotonic() - stopped < 8:
            await asyncio.sleep(0.1)
            left = alive(everything)
        result["left_behind"] = left
        result["stop_s"] = round(time.monotonic() - stopped, 2)
        result["processes_seen"] = sorted({name for _, name in everything.values()})
    finally:
        if hb.returncode is None:
            hb.kill()
            await hb.wait()
        for p, _ in everything.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        await log.task


async def main() -> None:
    node, homebridge, storage = sys.argv[1:4]
    result: dict[str, Any] = {}
    try:
        await run(node, homebridge, Path(storage), sys.argv[4:] == ["child-bridge"], result)
    except BaseException as exc:  # report, never hang: the test prints the log on failure
        result["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
