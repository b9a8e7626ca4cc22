"""Wiring: build cameras from the configuration, start them, stop them cleanly.

A fault in one camera (a port in use, a damaged state file) is reported and that camera is
skipped; the others still start. SIGTERM/SIGINT stop everything within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import ifaddr
from zeroconf.asyncio import AsyncZeroconf

from .archive import ArchiveSink, ClipArchive
from .camera import Camera, CameraSpec, TwoWayAudio
from .camera.secure_video.tiers import TierSpec
from .config import CameraConfig, Config, ConfigError, DetectorConfig
from .config_mqtt import remote_name
from .config_runtime import runtime_value
from .hap import StateError, local_addresses, open_zeroconf
from .hap.advertiser import Advertiser
from .hap.state import DamagedStateError
from .hds.sealing_pool import SealingPool
from .media import Profile, load_profiles, profile_dirs
from .media.frames import DetectOutput
from .triggers.detector_params import DETECTOR_EXTRA, DetectorParams, missing_dependencies
from .triggers.mqtt_presets import Binding, frigate_snapshot_url

# What only some configurations run is imported where it starts (App.start, mqtt_bridge): the
# detector's numpy and scipy, the MQTT client, and the web server's aiohttp and prometheus_client.
if TYPE_CHECKING:
    from .triggers.detector_trigger import DetectorTrigger
    from .triggers.mqtt import MqttBridge
    from .web import WebServer

__all__ = ["App", "camera_spec", "print_pairing_info"]

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


def camera_spec(config: CameraConfig) -> CameraSpec:
    """The camera's own settings, from its validated configuration entry."""
    return runtime_value(
        CameraSpec, config, uncopied=("hap_port", "archive", "mqtt", "motion", "detector"),  # read by App
        snapshot_url=_snapshot_url(config), http_motion="http" in config.motion,
        detect=DetectOutput(fps=config.detector.fps, height=config.detector.frame_height)
        if config.motion_detector else None,
        detect_source=config.detect_source if config.motion_detector else None,
        two_way_audio=None if config.two_way_audio is None else runtime_value(TwoWayAudio, config.two_way_audio),
        tiers=tuple(TierSpec(name=name, width=t.width, height=t.height, fps=t.fps, source=t.source, profile=t.profile)
                    for name, t in sorted(config.tiers.items())))


def detector_params(config: DetectorConfig) -> DetectorParams:
    """The detector's tuning from the camera's ``detector:`` section (``fps`` paces its frames)."""
    return runtime_value(DetectorParams, config, uncopied=("fps",), mask=config.polygons())


def _snapshot_url(config: CameraConfig) -> str | None:
    """The configured snapshot URL, or Frigate's newest frame when the camera's preset names Frigate."""
    if config.snapshot_url or config.mqtt is None or config.mqtt.frigate_url is None:
        return config.snapshot_url
    return frigate_snapshot_url(config.mqtt.frigate_url, config.mqtt.camera or remote_name(config.name))


def mqtt_bridge(config: Config, cameras: list[Camera]) -> MqttBridge | None:
    """The broker client for the cameras that started, with one binding per camera that has a preset."""
    broker = config.mqtt
    if broker is None:
        return None
    from .triggers.mqtt import BrokerSettings, MqttBridge

    settings = runtime_value(BrokerSettings, broker, uncopied=("user",), username=broker.user,
                             tls_ca_file=str(broker.tls_ca_file) if broker.tls_ca_file else None)
    started = {c.name for c in cameras}
    bindings = [
        runtime_value(Binding, cam.mqtt, uncopied=("topic_prefix", "frigate_url"),  # frigate_url: _snapshot_url
                      camera=cam.name, remote=cam.mqtt.camera or remote_name(cam.name),
                      prefix=cam.mqtt.topic_prefix or "")
        for cam in config.cameras if cam.mqtt is not None and cam.name in started]
    return MqttBridge(settings, cameras, bindings)


def _recording_ffmpeg(cfg: Config, cam: CameraConfig, profiles: Mapping[str, Profile]) -> str | None:
    """``copy_ffmpeg`` for a camera whose profile copies the stream; None (ffmpeg on PATH) for the
    rest: encoding and hardware profiles keep the system's ffmpeg and its drivers."""
    profile = profiles.get(cam.profile)
    return cfg.copy_ffmpeg if profile is not None and profile.is_copy else None


def print_pairing_info(camera: Camera, out: TextIO) -> None:
    server = camera.server
    if server.paired:
        out.write(f"\n{camera.name}: paired (HAP port {server.port}).\n")
        return
    out.write(f"\n{camera.name}: scan this code in the Home app, or enter setup code {server.setup_code}\n")
    import segno  # only an unpaired camera prints its code: paired ones never load the QR library

    qr = segno.make(server.setup_uri, micro=False)
    qr.terminal(out=out, compact=True)
    out.write(f"  setup code: {server.setup_code}   HAP port: {server.port}\n")
    out.flush()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use by another program"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no interface has this address"
    return exc.strerror or str(exc)


def _prepare_state_dir(path: Path) -> None:
    """Create the state directory and prove it is writable, before any camera touches it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        what = "cannot create it" if not path.is_dir() else "cannot write in it"
        raise ConfigError(f"state_dir {path}: {what}: {exc.strerror or exc}") from None


def _host_addresses() -> set[str]:
    return {str(ip.ip if isinstance(ip.ip, str) else ip.ip[0]) for a in ifaddr.get_adapters() for ip in a.ips}


def _check_address(setting: str, address: str, have: set[str]) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(f"{setting}: {address!r} is not an IP address") from None
    if address not in have:
        raise ConfigError(f"{setting}: no interface has the address {address} "
                          f"(this host has {', '.join(sorted(have))})")


def _check_interfaces(interfaces: list[str] | None) -> None:
    """Every ``mdns_interfaces`` entry must be an address one of this host's interfaces has."""
    if not interfaces:
        return
    have = _host_addresses()
    for address in interfaces:
        _check_address("mdns_interfaces", address, have)


def _check_bind(bind: str) -> None:
    """``bind`` is every interface, or an address one of them has (else no camera could listen)."""
    if bind in ("0.0.0.0", "::", ""):  # noqa: S104 - the wildcard is a valid choice
        return
    _check_address("bind", bind, _host_addresses())


def _camera_fault(exc: StateError | OSError, index: int, cam: CameraConfig, cfg: Config, port: int) -> str:
    """One line a user can act on, naming the setting behind a camera that did not start."""
    if isinstance(exc, DamagedStateError):
        return (f"{exc}; it was left as it is. To start this camera unpaired (the file is kept aside as "
                f"{camera_spec(cam).state_file}.corrupt-<time>), pass --reset-damaged-state or set "
                "reset_damaged_state: true")
    if isinstance(exc, StateError):
        return str(exc)
    if exc.errno == errno.EADDRINUSE:
        return f"HAP port {port} is in use by another program (set cameras.{index}.hap_port or --hap-port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"bind {cfg.bind}: no interface has this address"
    return _reason(exc)


def _check_detector(cfg: Config) -> None:
    """Refuse, in words, a camera with ``motion: [detector]`` when the detector's numpy and scipy
    are not installed (they are an optional extra)."""
    users = [index for index, cam in enumerate(cfg.cameras) if cam.motion_detector]
    missing = missing_dependencies() if users else []
    if missing:
        raise ConfigError(f"cameras.{users[0]}.motion: the built-in motion detector needs {' and '.join(missing)}, "
                          f"which {'is' if len(missing) == 1 else 'are'} not installed: {DETECTOR_EXTRA} "
                          f"(or remove 'detector' from motion)")


class App:
    def __init__(self, config: Config, out: TextIO = sys.stderr) -> None:
        self.config = config
        self.out = out
        self.cameras: list[Camera] = []
        self._zeroconf: AsyncZeroconf | None = None
        self.web: WebServer | None = None
        self.archive: ClipArchive | None = None
        self.mqtt: MqttBridge | None = None
        self.detectors: list[DetectorTrigger] = []  # the built-in motion detector, per camera that has it on
        self._stop = asyncio.Event()
        self.failed: dict[str, str] = {}  # camera name -> why it did not start
        # Called with each camera before it starts, so an observer (the --stdio-json parent
        # protocol) can subscribe to ``camera.events`` without missing its first events.
        self.on_camera: Callable[[Camera], None] | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        """Start every camera that can start. A setting that cannot work raises :class:`ConfigError`
        (one line naming it); a fault of one camera is logged and only that camera is skipped."""
        cfg = self.config
        _prepare_state_dir(cfg.state_dir)
        _check_bind(cfg.bind)
        _check_detector(cfg)
        profiles = load_profiles(profile_dirs([cfg.ffmpeg_profiles_dir] if cfg.ffmpeg_profiles_dir else []))
        addresses: list[str] = []
        if cfg.archive_dir is not None and any(cfg.archives(c) for c in cfg.cameras):
            self.archive = ClipArchive(cfg.archive_dir, max_age_s=cfg.archive_days * 86400,
                                       max_bytes=cfg.archive_max_mb * 1_000_000)
            self.archive.start()
        if cfg.mdns:
            _check_interfaces(cfg.mdns_interfaces)
            try:
                self._zeroconf = open_zeroconf(cfg.mdns_interfaces)
            except OSError as exc:
                raise ConfigError(f"mdns_interfaces {cfg.mdns_interfaces or 'all'}: cannot advertise: "
                                  f"{exc.strerror or exc}") from None
            addresses = local_addresses(cfg.mdns_interfaces)
        sealing_pool = SealingPool(cfg.sealing_buffers)  # one for every camera: bounded, not per camera
        for index, cam_cfg in enumerate(cfg.cameras):
            advertiser = Advertiser(self._zeroconf, addresses) if self._zeroconf is not None else None
            port = cfg.port_for(index, cam_cfg)
            try:
                camera = Camera(camera_spec(cam_cfg), cfg.state_dir, host=cfg.bind, port=port, advertiser=advertiser,
                                reset_damaged_state=cfg.reset_damaged_state, profiles=profiles,
                                sealing_pool=sealing_pool, recording_ffmpeg=_recording_ffmpeg(cfg, cam_cfg, profiles))
                if self.on_camera is not None:
                    self.on_camera(camera)
                await camera.start()
            except (StateError, OSError) as exc:
                fault = _camera_fault(exc, index, cam_cfg, cfg, port)
                log.error("%s: not started: %s", cam_cfg.name, fault)
                self.failed[cam_cfg.name] = str(fault)
                continue
            self.cameras.append(camera)
            if self.archive is not None and cfg.archives(cam_cfg):
                camera.recording_sinks.append(ArchiveSink(self.archive, camera.spec.slug))
            if cam_cfg.motion_detector:
                from .triggers.detector_trigger import DetectorTrigger

                detector = DetectorTrigger(camera, detector_params(cam_cfg.detector))
                detector.start()  # frames flow whenever the camera is active
                self.detectors.append(detector)
            print_pairing_info(camera, self.out)
        if not self.cameras:
            raise RuntimeError("no camera could be started")
        if cfg.web_port is not None:
            from .web import WebServer
            from .web.journal_store import FILE_NAME as JOURNAL_FILE

            self.web = WebServer(lambda: self.cameras, host=cfg.bind, port=cfg.web_port, password=cfg.web_password,
                                 trigger_token=cfg.trigger_token, archive=self.archive,
                                 journal_path=cfg.state_dir / JOURNAL_FILE)
            detectors = {d.camera.name: d for d in self.detectors}
            for camera in self.cameras:
                self.web.attach(camera, detectors.get(camera.name))
            try:
                await self.web.start()
            except OSError as exc:
                self.web = None
                setting = "http_port" if cfg.http_port is not None else "trigger_http_port"
                raise ConfigError(f"{setting} {cfg.web_port}: cannot listen on "
                                  f"{cfg.bind}:{cfg.web_port}: {_reason(exc)}") from None
            self.out.write(f"status page: http://{cfg.bind}:{self.web.port}/\n"
                           f"motion triggers: http://{cfg.bind}:{self.web.port}/motion?<camera name>\n")
            self.out.flush()
        self.mqtt = mqtt_bridge(cfg, self.cameras)
        if self.mqtt is not None:
            await self.mqtt.start()

    async def stop(self) -> None:
        async def stop_all() -> None:
            for detector in self.detectors:
                detector.stop()
            if self.mqtt is not None:
                await self.mqtt.stop()
            if self.web is not None:
                await self.web.stop()
            await asyncio.gather(*(c.stop() for c in self.cameras), return_exceptions=True)
            if self.archive is not None:
                await self.archive.stop()
            if self._zeroconf is not None:
                await self._zeroconf.async_close()

        try:
            await asyncio.wait_for(stop_all(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("shutdown took longer than %.0f s", STOP_TIMEOUT_S)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError):  # not the main thread: no signal handling
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            log.info("running %d camera(s); Ctrl-C to stop", len(self.cameras))
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(RuntimeError):  # not the main thread: no signal handling
                    loop.remove_signal_handler(sig)
