"""``hksv-sidecar``: a flag per camera, or a YAML file, or both (flags win)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .app import App
from .config import LOG_LEVELS, Config, ConfigError, build_config, check_profiles, load_config, parse_camera_flag
from .control import JsonFormatter, configure_logging, run_stdio_json
from .malloc_tuning import giving_back_free_memory, keep_freed_memory
from .redact import redact

__all__ = ["main", "parse_args"]

DEMO_SOURCE = "demo"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hksv-sidecar",
        description="Make IP cameras HomeKit Secure Video cameras.",
    )
    p.add_argument("--camera", action="append", default=[], metavar="NAME=URL",
                   help='a camera, e.g. --camera "Front Door=rtsp://user:pass@cam/stream" (repeatable)')
    p.add_argument("--demo", action="store_true", help="add the built-in demo camera (no camera needed)")
    p.add_argument("--demo-motion-every", type=float, default=30.0, metavar="S",
                   help="demo camera: toggle motion every S seconds (default 30)")
    p.add_argument("--config", type=Path, help="YAML configuration file")
    p.add_argument("--state-dir", type=Path, help="where pairings and settings live (default ./hksv-state)")
    p.add_argument("--bind", help="address the HAP servers listen on (default: all interfaces)")
    p.add_argument("--hap-port", type=int, help="first HAP port; camera N gets PORT+N (default: any free port)")
    p.add_argument("--setup-code", help="setup code for the first camera (default: random, printed at start)")
    p.add_argument("--mdns-interface", action="append", metavar="IP",
                   help="advertise only on this interface address (repeatable; default: all)")
    p.add_argument("--no-mdns", action="store_true", help="do not advertise (pair by address)")
    p.add_argument("--http-port", type=int, metavar="PORT",
                   help="status page, /healthz, /metrics, /api and the triggers /motion?<camera>, "
                        "/motion/reset?<camera>, /doorbell?<camera> (0: any free port)")
    p.add_argument("--trigger-http-port", type=int, metavar="PORT", help="the old name of --http-port")
    p.add_argument("--archive-dir", type=Path, help="keep a local MP4 of every recording sent to a hub here")
    p.add_argument("--profile", help="ffmpeg profile for --camera cameras (copy, libx264, vaapi, ...)")
    p.add_argument("--log-level", default=None, type=str.upper, choices=LOG_LEVELS)
    p.add_argument("--reset-damaged-state", action="store_true",
                   help="a camera whose state file is damaged starts unpaired (the file is moved aside, not lost)")
    p.add_argument("--stdio-json", action="store_true",
                   help="run as a child of a parent process: JSON-lines commands on stdin (or NODE_CHANNEL_FD), "
                        "events on stdout; see docs/child-process.md")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="log lines on stderr as text (default) or one JSON object each")
    p.add_argument("--version", action="version", version=f"hksv-sidecar {__version__}")
    return p


def parse_args(argv: Sequence[str] | None) -> Config:
    args = _parser().parse_args(argv)
    data: dict[str, Any] = load_config(args.config) if args.config else {}
    cameras = list(data.get("cameras") or [])
    flagged = [parse_camera_flag(text) for text in args.camera]
    if args.profile:
        flagged = [{**c, "profile": args.profile} for c in flagged]
    cameras += flagged
    if args.demo:
        cameras.append({"name": "Demo Camera", "source": DEMO_SOURCE, "motion_every": args.demo_motion_every,
                        "profile": "libx264"})
    if args.setup_code and cameras:
        cameras[0] = {**cameras[0], "setup_code": args.setup_code}
    data["cameras"] = cameras
    for key, value in (("state_dir", args.state_dir), ("bind", args.bind), ("hap_base_port", args.hap_port),
                       ("mdns_interfaces", args.mdns_interface), ("log_level", args.log_level),
                       ("http_port", args.http_port),
                       ("trigger_http_port", args.trigger_http_port), ("archive_dir", args.archive_dir)):
        if value is not None:
            data[key] = value
    if args.no_mdns:
        data["mdns"] = False
    if args.reset_damaged_state:
        data["reset_damaged_state"] = True
    if os.environ.get("HKSV_WEB_PASSWORD"):  # kept off the command line, where `ps` would show it
        data["web_password"] = os.environ["HKSV_WEB_PASSWORD"]
    if "copy_ffmpeg" not in data and os.environ.get("HKSV_COPY_FFMPEG"):
        # The Docker image's default: its ffmpeg built for copying (docs/scaling.md); a copy_ffmpeg
        # in the configuration file wins (`copy_ffmpeg: ffmpeg` for the full one on PATH).
        data["copy_ffmpeg"] = os.environ["HKSV_COPY_FFMPEG"]
    config = build_config(data)
    if not config.cameras:
        raise ConfigError("no cameras: add --camera NAME=URL, --demo, or a config file with cameras")
    check_profiles(config)
    return config


def _stdio_json(args: argparse.Namespace) -> int:
    """``--stdio-json``: cameras come from the parent's ``config`` command; these flags win over it."""
    if args.camera or args.demo or args.config or args.setup_code or args.profile:
        print("hksv-sidecar: --stdio-json takes its cameras from the parent's config command; "
              "drop --camera/--demo/--config/--setup-code/--profile", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    for key, value in (("state_dir", args.state_dir), ("bind", args.bind), ("hap_base_port", args.hap_port),
                       ("mdns_interfaces", args.mdns_interface), ("log_level", args.log_level),
                       ("http_port", args.http_port),
                       ("trigger_http_port", args.trigger_http_port), ("archive_dir", args.archive_dir)):
        if value is not None:
            overrides[key] = value
    if args.no_mdns:
        overrides["mdns"] = False
    if args.reset_damaged_state:
        overrides["reset_damaged_state"] = True
    return run_stdio_json(overrides, log_level=args.log_level or "INFO", log_format=args.log_format,
                          validate=check_profiles)


async def _run(app: App) -> None:
    """The application, and the heap's free pages given back once a minute meanwhile."""
    async with giving_back_free_memory():
        await app.run()


def main(argv: Sequence[str] | None = None) -> int:
    keep_freed_memory()  # before any camera allocates (sidecar/malloc_tuning.py says why)
    args = _parser().parse_args(argv)
    if args.stdio_json:
        return _stdio_json(args)
    try:
        config = parse_args(argv)
    except ConfigError as exc:
        print(f"hksv-sidecar: {redact(str(exc))}", file=sys.stderr)
        return 2
    formatter = configure_logging(config.log_level, args.log_format)
    if isinstance(formatter, JsonFormatter):  # JSON lines name the camera they are about
        formatter.cameras = tuple(c.name for c in config.cameras)
    try:
        asyncio.run(_run(App(config)))
    except ConfigError as exc:  # a setting that only fails once used (a port in use, a state dir)
        print(f"hksv-sidecar: {redact(str(exc))}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"hksv-sidecar: {redact(str(exc))}", file=sys.stderr)
        return 1
    return 0
