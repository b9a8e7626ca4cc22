"""Run hksv-sidecar inside your own asyncio program (the in-process API for Python parents).

    python docs/examples/embed.py /tmp/garage-state

builds a config in code, starts one demo camera, prints how to pair it, follows its events,
raises motion once, and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from sidecar import App, CameraEvent, ConfigError, build_config


async def run(state_dir: Path, stop: asyncio.Event, on_event: Callable[[CameraEvent], None] = print) -> None:
    # The same schema as the YAML file; build_config raises ConfigError with the CLI's words.
    config = build_config({
        "state_dir": str(state_dir),
        "bind": "127.0.0.1",  # your LAN address (or leave out: all interfaces) for real hubs
        "mdns": False,  # True (the default) to be found by the Home app
        "cameras": [{"name": "Garage", "source": "demo", "profile": "libx264"}],
    })
    app = App(config, out=sys.stderr)  # `out` gets the human-readable pairing text and QR code
    await app.start()  # every camera: its HAP server, its ffmpeg when recording is on
    try:
        garage = next(c for c in app.cameras if c.name == "Garage")
        unsubscribe = garage.events.subscribe(on_event)  # MotionChanged, RecordingOpened/Ended, ...
        server = garage.server
        print(f"pair with code {server.setup_code} ({server.setup_uri}) on port {server.port}; "
              f"paired: {server.paired}", file=sys.stderr)
        garage.trigger_motion(source="my-app")  # clears itself after motion_timeout_s
        await stop.wait()
        unsubscribe()
    finally:
        await app.stop()  # bounded: at most 5 s, every ffmpeg reaped


def main() -> int:
    state_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "garage-state")
    stop = asyncio.Event()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(state_dir, stop)

    try:
        asyncio.run(go())
    except ConfigError as exc:
        print(f"bad config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
