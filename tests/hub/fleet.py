"""Several simulated hubs in a process of their own, driven over stdin/stdout, so a test can
measure the sidecar's event loop without aiohomekit's pair-setup (its SRP runs in the hub's
loop) weighing on it::

    python -m tests.hub.fleet --pin 031-45-154 PORT [PORT ...]

One hub per accessory port. It prints ``PAIRED`` once every hub has paired, then ``ENABLED``
once each has selected a recording configuration (the camera's first advertised profile and
level) and switched recording on. On a ``RECORD`` line from stdin every hub records one clip
at once (init segment, prebuffer, one live fragment; tests/hub/recording.record), then it prints
``RECORDED`` and a JSON list of the clips' sizes in bytes, shuts the pairings down and exits.
A hub that fails prints ``ERROR`` and the exception, and the process exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.hub.hap_setup import DerivesByAccessory
from tests.hub.recording import advertised_video, enable_recording, record, recording_selection
from tests.support.hap_client import aio_pair

from .database import iids_by_type


def say(line: str) -> None:
    print(line, flush=True)


async def fleet(ports: list[int], pin: str) -> int:
    derives = DerivesByAccessory()
    restore = derives.install()
    pairings: list[Any] = []
    try:
        pairings = list(await asyncio.gather(*(aio_pair(port, pin) for port in ports)))
        say("PAIRED")
        all_ids = [iids_by_type(await p.list_accessories_and_characteristics()) for p in pairings]
        for pairing, ids in zip(pairings, all_ids, strict=True):
            profiles, levels = await advertised_video(pairing, ids)
            selection = recording_selection(bitrate_kbps=1000, profile=profiles[0], level=levels[0], audio_kbps=32)
            await enable_recording(pairing, ids, selection, homekit_active=True)
        say("ENABLED")
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if line.strip() != "RECORD":
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            clips = await asyncio.gather(*(
                record(p, derives.view(p), ids, n + 1, live_fragments=1, tmp=Path(tmp) / str(n))
                for n, (p, ids) in enumerate(zip(pairings, all_ids, strict=True))
                if (Path(tmp) / str(n)).mkdir() is None))
            sizes = [path.stat().st_size for _, path in clips]
        say("RECORDED")
        say(json.dumps(sizes))
        return 0
    except Exception as exc:
        say(f"ERROR {type(exc).__name__}: {exc}")
        return 1
    finally:
        for pairing in pairings:
            await pairing.shutdown()
        restore()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pin", required=True)
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args()
    sys.exit(asyncio.run(fleet(args.ports, args.pin)))


if __name__ == "__main__":
    main()
