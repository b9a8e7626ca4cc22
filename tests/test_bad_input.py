"""Every bad input the README promises to handle, through the real ``hksv-sidecar`` command.

Each case starts the installed console script (not ``main()`` in-process), and asserts the
one-line message that names the setting, the exit code (2 for a setting that cannot work), and
that no traceback reached the user. Cases that skip one camera assert the other one runs.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import ifaddr
import pytest

from tests.support.command import BASE, STARTED, expect_refusal, run


async def test_unknown_profile(tmp_path: Path) -> None:
    out = await run(*BASE, "--state-dir", str(tmp_path), "--camera", "Porch=demo", "--profile", "h265-magic")
    expect_refusal(out, r"cameras\.0\.profile: unknown ffmpeg profile 'h265-magic' \(have .*libx264")
    assert not os.listdir(tmp_path)  # refused before anything was written


async def test_log_level_any_case_and_a_wrong_one(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("log_level: debug\ncameras: [{name: Porch, source: demo, profile: libx264}]\n")
    out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config), until=STARTED)
    out.assert_clean()
    assert out.code == 0
    assert " DEBUG " in out.output  # `debug` took effect
    config.write_text("log_level: chatty\ncameras: [{name: Porch, source: demo}]\n")
    out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config))
    expect_refusal(out, r"log_level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL \(any case\), not 'chatty'")


@pytest.mark.parametrize("flag", ["--trigger-http-port", "--http-port"])
async def test_http_port_in_use(tmp_path: Path, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = await run(*BASE, "--state-dir", str(tmp_path), "--demo", flag, str(port))
    setting = flag.removeprefix("--").replace("-", "_")
    expect_refusal(out, rf"{setting} {port}: cannot listen on 127\.0\.0\.1:{port}: the port is in use")


async def test_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    # Tests run as root, so a permission bit would not stop us: a file in the path does.
    (tmp_path / "a-file").write_text("x")
    out = await run(*BASE, "--state-dir", str(tmp_path / "a-file" / "state"), "--demo")
    expect_refusal(out, r"state_dir .*a-file/state: cannot create it: Not a directory")


async def test_mdns_interface_no_interface_has(tmp_path: Path) -> None:
    local = {ip.ip for a in ifaddr.get_adapters() for ip in a.ips if isinstance(ip.ip, str)}
    address = next(a for a in ("203.0.113.77", "198.51.100.77", "192.0.2.77") if a not in local)
    out = await run("--bind", "127.0.0.1", "--state-dir", str(tmp_path), "--demo", "--mdns-interface", address)
    expect_refusal(out, rf"mdns_interfaces: no interface has the address {re.escape(address)}")
    out = await run("--bind", "127.0.0.1", "--state-dir", str(tmp_path), "--demo", "--mdns-interface", "eth0")
    expect_refusal(out, r"mdns_interfaces: 'eth0' is not an IP address")


async def test_bind_address_no_interface_has(tmp_path: Path) -> None:
    local = {ip.ip for a in ifaddr.get_adapters() for ip in a.ips if isinstance(ip.ip, str)}
    address = next(a for a in ("203.0.113.78", "198.51.100.78", "192.0.2.78") if a not in local)
    out = await run("--bind", address, "--no-mdns", "--state-dir", str(tmp_path), "--demo")
    expect_refusal(out, rf"bind: no interface has the address {re.escape(address)}")
    out = await run("--bind", "camera.local", "--no-mdns", "--state-dir", str(tmp_path), "--demo")
    expect_refusal(out, r"bind: 'camera.local' is not an IP address")


async def test_duplicate_camera_names_name_both(tmp_path: Path) -> None:
    out = await run(*BASE, "--state-dir", str(tmp_path), "--camera", "Front Door=demo", "--camera",
                    "front-door=demo")
    expect_refusal(out, r"cameras\.0\.name 'Front Door' and cameras\.1\.name 'front-door' are the same camera name")


async def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("cameras:\n  - {name: Porch, source: demo\n  x: 1\n")
    out = await run(*BASE, "--config", str(config))
    expect_refusal(out, rf"{re.escape(str(config))} is not valid YAML: line \d+, column \d+: ")
    config.write_bytes(b"\xff\xfe\x00garbage\x81")
    expect_refusal(await run(*BASE, "--config", str(config)), rf"{re.escape(str(config))} is not a text file")
    config.write_text("- just\n- a list\n")
    expect_refusal(await run(*BASE, "--config", str(config)), r"broken\.yaml: the top level must be a mapping")
    expect_refusal(await run(*BASE, "--config", str(tmp_path / "missing.yaml")),
                   r"cannot read .*missing\.yaml: No such file")


async def test_an_mqtt_block_the_motion_list_leaves_out(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("cameras:\n  - {name: Porch, source: demo, motion: [detector],\n"
                      "     mqtt: {preset: frigate_motion}}\n")
    out = await run(*BASE, "--state-dir", str(tmp_path), "--config", str(config))
    expect_refusal(out, r"cameras\.0: .*mqtt: block but its motion: list has no mqtt; add mqtt to motion:")


async def test_advertising_hevc_without_hevc_recordings(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("cameras:\n  - {name: Porch, source: demo, advertise_hevc: true}\n")
    out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config))
    expect_refusal(out, r"cameras\.0: .*advertise_hevc: true but record_codec: h264 \(offering H\.265 needs "
                        r"record_codec: hevc or auto\)")


async def test_a_wrong_setting_is_named(tmp_path: Path) -> None:
    out = await run(*BASE, "--state-dir", str(tmp_path), "--camera", "Porch=demo", "--setup-code", "123-45-678")
    expect_refusal(out, r"cameras\.0\.setup_code: must look like 123-45-678")


async def test_damaged_state_skips_only_that_camera_and_keeps_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    garbage = bytes(range(256)) * 3  # not UTF-8: a UnicodeDecodeError stopped every camera before
    (state / "porch.json").write_bytes(garbage)
    out = await run(*BASE, "--state-dir", str(state), "--camera", "Porch=demo", "--profile", "libx264", "--demo",
                    until=r"Demo Camera: scan this code")
    out.assert_clean()
    assert out.code == 0
    line = next(x for x in out.output.splitlines() if "Porch: not started" in x)
    assert "porch.json is not valid JSON" in line
    assert "--reset-damaged-state" in line and "reset_damaged_state: true" in line
    assert (state / "porch.json").read_bytes() == garbage  # never overwritten
    assert not list(state.glob("porch.json.corrupt-*"))


@pytest.mark.parametrize("how", ["flag", "config"])
async def test_damaged_state_reset_when_asked(tmp_path: Path, how: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    garbage = b'{"format": 1, "device_id": 3}'  # valid JSON, not a state
    (state / "porch.json").write_bytes(garbage)
    (state / "porch.json.corrupt-20260101T000000Z").write_bytes(b"an older one")
    args = [*BASE, "--state-dir", str(state), "--camera", "Porch=demo", "--profile", "libx264"]
    if how == "flag":
        args.append("--reset-damaged-state")
    else:
        config = tmp_path / "c.yaml"
        config.write_text("reset_damaged_state: true\n")
        args += ["--config", str(config)]
    out = await run(*args, until=r"Porch: scan this code")
    out.assert_clean()
    assert out.code == 0
    assert re.search(r"Porch: damaged state file moved to porch\.json\.corrupt-\d{8}T\d{6}Z; starting unpaired",
                     out.output), out.output
    kept = sorted(state.glob("porch.json.corrupt-*"))
    assert len(kept) == 2
    assert {p.read_bytes() for p in kept} == {garbage, b"an older one"}
    assert b'"signing_seed"' in (state / "porch.json").read_bytes()  # a fresh identity


async def test_hap_port_in_use_skips_that_camera(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(f"cameras:\n  - {{name: Porch, source: demo, profile: libx264, hap_port: {port}}}\n")
        out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config), "--demo",
                        until=r"Demo Camera: scan this code")
    out.assert_clean()
    assert out.code == 0
    assert re.search(rf"Porch: not started: HAP port {port} is in use by another program "
                     r"\(set cameras\.0\.hap_port or --hap-port\)", out.output), out.output


async def test_no_camera_could_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "demo-camera.json").write_text("{")
    out = await run(*BASE, "--state-dir", str(state), "--demo")
    out.assert_clean()
    assert out.code == 1
    assert out.output.strip().splitlines()[-1] == "hksv-sidecar: no camera could be started"


async def test_stale_temp_state_files_are_removed_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    stale = [state / ".demo-camera.json.k3x_9qa1", state / ".demo-camera.json.00000000"]
    keep = [state / ".other.json.k3x_9qa1", state / "notes.txt", state / ".demo-camera.json.too-long-to-be-ours"]
    for path in stale + keep:
        path.write_text("{}")
    out = await run(*BASE, "--state-dir", str(state), "--demo", until=STARTED)
    assert out.code == 0
    out.assert_clean()
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
