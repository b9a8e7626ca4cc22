"""A read-only archive directory: one warning, and recordings to the hub go on untouched.

The sidecar runs in a private mount namespace (``unshare -m``) where the archive directory is a
read-only bind mount, so even root gets EROFS, exactly as on a full or read-only disk.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.hub.characteristics import DATA_STREAM_SETUP
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import enable_recording, recording_selection
from tests.support.hap_client import pair_off_loop, second_session
from tests.support.sidecar_process import SidecarProcess

pytestmark = pytest.mark.slow  # needs root and unshare(1), as CI has


async def test_read_only_archive_warns_once_and_recording_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    capture = DeriveCapture.install(monkeypatch)
    archive = tmp_path / "archive"
    archive.mkdir()
    sidecar = (f"mount --bind {archive} {archive} && mount -o remount,bind,ro {archive} && exec "
               f"{sys.executable} -m sidecar --bind 127.0.0.1 --no-mdns --state-dir {tmp_path / 'state'} "
               f"--demo --demo-motion-every 100000 --archive-dir {archive}")
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-m", "sh", "-c", sidecar, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sp = SidecarProcess(proc)
    try:
        port = int((await sp.wait_for_line(r"HAP port: (\d+)", timeout=40)).group(1))
        pin = (await sp.wait_for_line(r"enter setup code (\S+)")).group(1)
        pairing = second_session(await pair_off_loop(port, pin))
        try:
            ids = iids_by_type(await pairing.list_accessories_and_characteristics())
            selection = recording_selection()
            await enable_recording(pairing, ids, selection)
            await sp.wait_for_line(r"prebuffer ready", timeout=40)
            for stream_id in (1, 2):  # the second recording: archiving stays off, recording does not
                client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
                try:
                    await client.hello()
                    assert (await client.open(stream_id)).body == {"status": 0}
                    frags, closed = await client.collect(stream_id, fragments=3, within=30)
                    assert closed is None and frags[0].data_type == "mediaInitialization"
                    assert [f.sequence for f in frags] == [1, 2, 3]
                    await client.close_stream(stream_id, 0)
                    await sp.wait_for_line(rf"recording stream {stream_id} ended .*NORMAL by hub")
                finally:
                    await client.aclose()
        finally:
            await pairing.shutdown()
    finally:
        assert await sp.terminate() == 0
    log = "".join(sp.lines)
    warnings = re.findall(r"clip archive: .*archiving stopped, recordings to hubs go on", log)
    assert len(warnings) == 1 and "read-only" in warnings[0]
    assert "Traceback" not in log
    assert not any(archive.iterdir())
