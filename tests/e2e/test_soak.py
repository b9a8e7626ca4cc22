"""Soak: 200 recordings in a row against the real sidecar process (demo camera, real ffmpeg).

Each recording is what a hub does for one short motion event: a SetupDataStreamTransport write
over HAP, a new HDS connection, hello, open, the init segment and the prebuffer, a close by the
hub, the connection gone. The sidecar's fds, threads and RSS are printed at 0, 100 and 200 and
must stay flat.
"""

from __future__ import annotations

from typing import Any

import psutil
import pytest

from tests.hub.characteristics import DATA_STREAM_SETUP
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.hub.recording import enable_recording, paired
from tests.support.camera_rig import SELECTION

pytestmark = pytest.mark.slow

PIN = "031-45-154"
RECORDINGS = 200


def usage(pid: int) -> tuple[int, int, float, int]:
    proc = psutil.Process(pid)
    children = sum(1 for c in proc.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE)
    return proc.num_fds(), proc.num_threads(), proc.memory_info().rss / 2**20, children


async def test_200_recordings_in_a_row_keep_fds_threads_and_rss_flat(sidecar: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    capture = DeriveCapture.install(monkeypatch)
    proc = await sidecar("--demo", "--demo-motion-every", "100000", "--setup-code", PIN)
    port = int((await proc.wait_for_line(r"HAP port: (\d+)")).group(1))
    async with paired(port, PIN) as (pairing, ids):
        await enable_recording(pairing, ids, SELECTION)
        await proc.wait_for_line(r"prebuffer ready", timeout=60)
        marks: dict[int, tuple[int, int, float, int]] = {}
        total = 0
        for n in range(RECORDINGS + 1):
            if n in (0, RECORDINGS // 2, RECORDINGS):
                marks[n] = usage(proc.proc.pid)
            if n == RECORDINGS:
                break
            client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
            try:
                await client.hello()
                assert (await client.open(n + 1)).body == {"status": 0}
                fragments, closed = await client.collect(n + 1, fragments=2, within=20)
                assert closed is None and fragments[0].data_type == "mediaInitialization"
                total += sum(len(f.data) for f in fragments)
                await client.close_stream(n + 1, 0)
            finally:
                await client.aclose()
        for n, (fds, threads, rss, children) in marks.items():
            print(f"\nafter {n:3d} recordings: {fds} fds, {threads} threads, {rss:.1f} MiB RSS, "
                  f"{children} ffmpeg", end="")
        print(f"\n{total / 2**20:.1f} MiB recorded in {RECORDINGS} recordings")
        (fds0, threads0, rss0, kids0), (fds1, threads1, rss1, _), (fds2, threads2, rss2, kids2) = marks.values()
        assert kids2 == kids0 == 1  # the one recording ffmpeg
        assert fds2 <= fds1 + 2 and fds1 <= fds0 + 4
        assert threads2 <= threads1 <= threads0 + 2
        assert rss2 - rss1 <= 8.0  # MiB: the second hundred grows nothing real
        assert rss2 - rss0 <= 24.0
    assert await proc.terminate() == 0
