"""The Homebridge plugin (integrations/homebridge) loaded by real Homebridge, in a private netns.

Homebridge advertises its bridge with mDNS on every interface, so the whole scenario runs in a
network namespace created here with only loopback: Homebridge, the sidecar child it spawns,
and the aiohomekit clients. See netns/homebridge_plugin.py for the steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.slow]

REPO = Path(__file__).parents[2]
SCRIPT = Path(__file__).parent / "netns" / "homebridge_plugin.py"
HOMEBRIDGE = REPO / "integrations" / "homebridge" / "node_modules" / ".bin" / "homebridge"


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -n (network namespaces)")
@pytest.mark.skipif(not HOMEBRIDGE.exists(), reason="npm ci in integrations/homebridge (.ci/setup --test)")
def test_real_homebridge_runs_the_plugin() -> None:
    cmd = f"ip link set lo up && ip link set lo multicast on && exec {sys.executable} {SCRIPT}"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, timeout=150, cwd=REPO)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    log = "\n".join(result.get("log", []))
    assert "error" not in result, result["error"] + "\n" + log[-6000:]
    assert result["homebridge"] == "1.11.4"
    assert result["child_is_ours"]
    # the setup code and a QR code, in Homebridge's log, prefixed with the camera name
    assert result["setup_code_logged"] and result["setup_payload"].startswith("X-HM://")
    assert 10 <= result["qr_lines"] <= 40
    # the camera is not bridged: the bridge only has the switch (and its own info/protocol)
    assert result["switch_name"] == "HB Camera Motion"
    assert "110" not in result["bridged_services"] and "204" not in result["bridged_services"]
    assert "49" in result["bridged_services"]
    # the switch on the bridge raised motion on the camera's own HAP server
    assert result["motion_seen"] == [True, False]  # on, then off again with the switch
    assert result["ffmpeg_running"] >= 1
    # crash -> restart after 7 s (not sooner), with a new process
    assert 7.0 <= result["restart_after_s"] < 20 and result["restarted_new_pid"]
    # Homebridge stops: it exits, and its children (sidecar, ffmpeg) are all gone
    assert result["homebridge_exit"] in (0, 143)
    assert result["left_behind"] == [], log[-3000:]
    assert {"hksv-sidecar", "ffmpeg"} <= set(result["processes_seen"])
    assert "Traceback" not in log


@pytest.mark.skipif(not HOMEBRIDGE.exists(), reason="npm ci in integrations/homebridge (.ci/setup --test)")
def test_plugin_against_homebridges_api_class() -> None:
    """integrations/homebridge/test: bad settings (missing program, bad setup code), config mapping."""
    proc = subprocess.run(["node", "--test", "test/"], cwd=REPO / "integrations" / "homebridge", capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "HKSV_SIDECAR": str(Path(sys.executable).parent / "hksv-sidecar")})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# pass 6" in proc.stdout and "# fail 0" in proc.stdout
