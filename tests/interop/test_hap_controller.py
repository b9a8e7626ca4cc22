"""npm hap-controller 0.10.2 (independent Node controller) against our server over 127.0.0.1.

Its subscriptions use a separate TCP connection with its own pair-verify, which exercises the
multi-session paths; it pairs with method 0, as an ff=0 accessory expects.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.hap_client import PIN

from .conftest import Running

pytestmark = pytest.mark.interop

NODE_DIR = Path(__file__).parent / "node"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by .ci/setup --test")
async def test_hap_controller_full_flow(hap_server: Running) -> None:
    t = hap_server.test
    cfg = {"port": hap_server.port, "pin": PIN, "ids": {
        "on": t.on.iid, "brightness": t.brightness.iid, "hue": t.hue.iid, "text": t.text.iid,
        "tlv": t.tlv.iid, "wr": t.write_response.iid, "motion": t.motion.iid}}
    proc = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / "hap_controller_flow.js"), json.dumps(cfg), cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    steps: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                break
            msg = json.loads(line)
            steps[msg["step"]] = msg["data"]
            if msg["step"] == "subscribed":
                t.motion.set_value(True)
        assert await asyncio.wait_for(proc.wait(), 10) == 0, steps.get("error")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert steps["identify-unpaired"] == "ok"
    # hap-controller reports ids as hex of their bytes
    assert bytes.fromhex(steps["paired"]["accessory"]).decode() == hap_server.server.state.device_id
    assert "0000003E-0000-1000-8000-0026BB765291" in steps["accessories"]
    read = {c["iid"]: c for c in steps["read"]["characteristics"]}
    assert read[t.brightness.iid]["maxValue"] == 100 and read[t.text.iid]["value"] == "hello"
    assert (t.on.value, t.brightness.value, t.hue.value, t.text.value, t.tlv.value) == (
        True, 33, 180.5, "from node", b"\x01\x01\x09")
    entry = steps["write-response"]["characteristics"][0]
    assert entry["status"] == 0 and base64.b64decode(entry["value"]) == b"\x03\x02\x01"
    assert steps["event"]["characteristics"] == [{"aid": 1, "iid": t.motion.iid, "value": True}]
    assert steps["listed"]["count"] == 2
    assert steps["unpaired"] == "ok"
    assert not hap_server.server.paired
