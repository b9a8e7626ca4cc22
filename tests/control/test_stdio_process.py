"""A parent process drives a real ``hksv-sidecar --stdio-json``: config, pairing, motion, shutdown.

The hub is aiohomekit (the hub simulator of tests/hub reads the database by type). Everything
the parent sees is on stdout as event lines; the test fails if anything else appears there.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from typing import Any

import psutil

from tests.hub.characteristics import MOTION_DETECTED
from tests.hub.database import iids_by_type
from tests.hub.recording import enable_recording
from tests.support.hap_client import pair_off_loop, second_session, watch
from tests.support.processes import ffmpeg_children

from .conftest import SIDECAR, StdioChild, demo_config

CATEGORY_IP_CAMERA = 17


def decode_setup_uri(uri: str) -> tuple[str, int, int, str]:
    """X-HM://<9 base-36 digits><setup id> -> (setup code, category, flags, setup id), by the spec's bit layout."""
    assert uri.startswith("X-HM://") and len(uri) == 7 + 9 + 4, uri
    payload = int(uri[7:16], 36)
    code = payload & 0x7FFFFFF
    flags = (payload >> 27) & 0xF
    category = (payload >> 31) & 0xFF
    assert payload >> 43 == 0  # version 0, reserved bits clear
    digits = f"{code:08d}"
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", category, flags, uri[16:]



def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE and proc.ppid() != 1
    except psutil.NoSuchProcess:
        return True


async def test_parent_configures_pairs_raises_motion_and_closes_stdin(stdio_child: Any) -> None:
    child: StdioChild = await stdio_child("--log-format", "json")
    ready = await child.wait_for("ready")
    assert ready["data"] == {"version": ready["data"]["version"], "pid": child.proc.pid, "protocol": 1}

    # Bad lines first: each gets exactly one error event, and the child carries on.
    child.send_raw(b"this is not json\n")
    child.send({"id": "reboot", "seq": 90})
    child.send({"id": "motion", "data": {"camera": "Front"}, "seq": 91})  # not started yet
    child.send({"id": "config", "seq": 92, "data": {"cameras": [{"name": "X", "source": "demo",
                                                                   "setup_code": "123"}]}})
    assert "unknown command 'reboot'" in (await child.reply(90))["data"]["message"]
    assert "not started" in (await child.reply(91))["data"]["message"]
    bad_config = await child.reply(92)
    assert bad_config["id"] == "error" and "cameras.0.setup_code" in bad_config["data"]["message"]
    assert bad_config["data"]["seq"] == 92

    config = demo_config("Front", "031-45-154")
    config["cameras"].append({"name": "Back", "source": "demo", "profile": "libx264", "setup_code": "032-45-154"})
    child.send({"id": "config", "data": config, "seq": 1})
    child.send({"id": "start", "seq": 2})
    assert (await child.reply(1))["id"] == "ok"
    assert (await child.reply(2, timeout=60))["data"]["cameras"] == ["Front", "Back"]
    statuses = [e for e in child.events if e["id"] == "status"]
    assert sorted(s["data"]["camera"] for s in statuses) == ["Back", "Front"]  # exactly one each
    codes = {"Front": "031-45-154", "Back": "032-45-154"}
    for status in statuses:
        data = status["data"]
        assert data["paired"] is False and data["setupCode"] == codes[data["camera"]] and data["port"] > 0
        code, category, flags, setup_id = decode_setup_uri(data["setupUri"])
        assert (code, category, flags) == (codes[data["camera"]], CATEGORY_IP_CAMERA, 2)
        assert len(setup_id) == 4 and setup_id.isalnum()
    errors = [e for e in child.events if e["id"] == "error"]
    assert len(errors) == 4 and "not JSON" in errors[0]["data"]["message"] and "seq" not in errors[0]
    front_port = next(s["data"]["port"] for s in statuses if s["data"]["camera"] == "Front")

    # A hub pairs with Front; then the user removes the camera elsewhere: unpair makes it
    # pairable again with the same code, and the old controller is forgotten.
    mark = child.mark()
    await pair_off_loop(front_port, "031-45-154")
    paired = await child.wait_for(lambda e: e["id"] == "status" and e["data"]["paired"], after=mark)
    assert paired["data"] == {"camera": "Front", "paired": True, "setupUri": None, "setupCode": None,
                              "port": front_port}
    mark = child.mark()
    child.send({"id": "unpair", "data": {"camera": "Front"}, "seq": 5})
    assert (await child.reply(5))["data"] == {"command": "unpair", "camera": "Front", "removed": True}
    after = [e for e in child.events[mark:] if e["id"] == "status"]
    assert len(after) == 1 and after[0]["seq"] == 5
    assert after[0]["data"]["paired"] is False and after[0]["data"]["setupCode"] == "031-45-154"

    # A hub pairs with Front, turns recording on (ffmpeg starts) and subscribes to motion.
    pairing = second_session(await pair_off_loop(front_port, "031-45-154"))
    try:
        ids = iids_by_type(await pairing.list_accessories_and_characteristics())
        await enable_recording(pairing, ids, None)
        await child.wait_log("prebuffer starting")
        # ffmpeg delivers media: the camera's pipeline event reaches the parent
        streaming = await child.wait_for(lambda e: e["id"] == "camera" and e["data"]["state"] == "streaming")
        assert streaming["data"] == {"camera": "Front", "state": "streaming"}
        motion = await watch(pairing, ids[MOTION_DETECTED])
        mark = child.mark()
        child.send({"id": "motion", "data": {"camera": "Front", "active": True}, "seq": 3})
        assert (await child.reply(3))["id"] == "ok"
        await asyncio.wait_for(motion.arrived.wait(), 10)
        assert motion.seen == [True]
        event = await child.wait_for("motion", after=mark)
        assert event["data"] == {"camera": "Front", "active": True, "source": "stdio"}

        child.send({"id": "status", "data": {"camera": "Front"}, "seq": 4})
        await child.reply(4)
        front = [e for e in child.events[mark:] if e["id"] == "status" and e.get("seq") == 4]
        assert len(front) == 1 and front[0]["data"]["paired"] is True
        assert front[0]["data"]["setupCode"] is None and front[0]["data"]["setupUri"] is None
    finally:
        await pairing.shutdown()

    ffmpegs = ffmpeg_children(child.proc.pid, recursive=True)
    assert ffmpegs, "the recording pipeline should be running"
    # The parent dies: its end of stdin closes. The child stops everything within 5 s.
    started = time.monotonic()
    child.close_stdin()
    assert await child.wait_exit(timeout=6) == 0
    assert time.monotonic() - started < 5.0
    assert all(gone(p) for p in ffmpegs)
    tail = [e["id"] for e in child.events[-3:]]
    assert tail == ["camera", "camera", "bye"]
    assert child.events[-1]["data"]["reason"] == "parent closed the channel"
    assert child.stdout_junk == []
    logs = "".join(child.stderr)
    assert "Traceback" not in logs and '"camera": "Front"' in logs  # JSON logs name the camera


async def test_sigterm_and_shutdown_end_with_bye(stdio_child: Any) -> None:
    first: StdioChild = await stdio_child()
    second: StdioChild = await stdio_child()
    for i, child in enumerate((first, second)):
        await child.wait_for("ready")
        child.send({"id": "config", "data": demo_config(f"Cam {i}", "031-45-154" if i else "032-45-154"), "seq": 1})
        child.send({"id": "start", "seq": 2})
    for child in (first, second):
        await child.reply(2, timeout=60)
    # a second config is refused, an unknown camera is named, an over-long line is one error
    first.send({"id": "config", "data": demo_config(), "seq": 3})
    first.send({"id": "doorbell", "data": {"camera": "Nope"}, "seq": 4})
    first.send_raw(b"x" * ((1 << 20) + 1) + b"\n")
    first.send({"id": "ping", "seq": 5})
    assert "already started" in (await first.reply(3))["data"]["message"]
    assert "no camera named 'Nope' (cameras: Cam 0)" in (await first.reply(4))["data"]["message"]
    assert (await first.reply(5))["id"] == "pong"
    assert sum("longer than" in e["data"]["message"] for e in first.events if e["id"] == "error") == 1

    started = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    second.send({"id": "shutdown", "seq": 9})
    assert await first.wait_exit(timeout=6) == 0
    assert await second.wait_exit(timeout=6) == 0
    assert time.monotonic() - started < 5.0
    assert first.events[-1] == {"id": "bye", "data": {"reason": "SIGTERM"}}
    assert second.events[-1] == {"id": "bye", "data": {"reason": "shutdown"}, "seq": 9}
    for child in (first, second):
        assert child.stdout_junk == [] and "Traceback" not in "".join(child.stderr)


def test_bad_command_lines_exit_2_with_a_message() -> None:
    for args, env, message in (
        (["--stdio-json", "--demo"], {}, "--stdio-json takes its cameras from the parent's config command"),
        (["--stdio-json", "--no-mdns"], {"NODE_CHANNEL_FD": "nope"}, "NODE_CHANNEL_FD='nope' is not an open socket"),
        (["--stdio-json", "--log-format", "xml"], {}, "invalid choice: 'xml'"),
    ):
        proc = subprocess.run([*SIDECAR, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.PIPE,
                              env={**os.environ, **env})
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stdout == ""


def test_config_messages_are_the_clis(tmp_path: Any) -> None:
    """The same bad setting gives the same words through the config command and the YAML file."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: Front\n    source: demo\n    prebuffer_ms: 100\n")
    cli = subprocess.run([*SIDECAR, "--config", str(bad)], capture_output=True, text=True, timeout=30)
    assert cli.returncode == 2
    cli_message = cli.stderr.strip().removeprefix("hksv-sidecar: ")
    child = subprocess.run(
        [*SIDECAR, "--stdio-json"], capture_output=True, text=True, timeout=30,
        input='{"id":"config","seq":1,"data":{"cameras":[{"name":"Front","source":"demo","prebuffer_ms":100}]}}\n')
    assert child.returncode == 0
    events = [json.loads(line) for line in child.stdout.splitlines()]
    assert [e["id"] for e in events] == ["ready", "error", "bye"]
    assert events[1]["data"]["message"] == f"config: {cli_message}"
    assert "cameras.0.prebuffer_ms" in cli_message


async def test_cli_json_logs_name_the_camera(tmp_path: Any) -> None:
    """``--log-format json`` without --stdio-json: one JSON object per stderr line, camera named."""
    proc = await asyncio.create_subprocess_exec(
        *SIDECAR, "--demo", "--bind", "127.0.0.1", "--no-mdns", "--state-dir", str(tmp_path), "--log-format", "json",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while True:
                line = await proc.stderr.readline()
                assert line, "the sidecar ended early"
                if line.startswith(b"{"):
                    entry = json.loads(line)
                    if "HAP server on" in entry["message"]:
                        break
        assert entry["camera"] == "Demo Camera" and entry["level"] == "info"
        assert entry["message"].startswith("HAP server on 127.0.0.1:") and entry["logger"] == "sidecar.hap.server"
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.communicate()
    assert proc.returncode == 0
