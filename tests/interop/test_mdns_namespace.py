"""Full mDNS round trip in a private network namespace: multicast never leaves it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "netns" / "mdns_roundtrip.py"


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -n (network namespaces)")
def test_discover_pair_and_txt_update_over_real_mdns() -> None:
    cmd = f"ip link set lo up && ip link set lo multicast on && exec {sys.executable} {SCRIPT}"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, timeout=90,
                          cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert result["found"]["sf"] == 1 and result["found"]["c#"] >= 1
    assert result["found"]["name"].startswith("Netns Camera")
    txt = result["after_pairing"]
    assert txt["sf"] == "0" and set(txt) >= {"c#", "ff", "id", "md", "pv", "s#", "sf", "ci", "sh"}
