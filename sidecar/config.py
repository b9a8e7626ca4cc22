"""Configuration: one pydantic model shared by the YAML file, the command line and a parent process.

Errors name the field (``cameras.0.setup_code: ...``) so a user can fix a config file without
reading code. Defaults are what a real user wants on their LAN: bind every interface,
advertise on every interface; tests pass 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config_env import EnvError, expand_env
from .config_mqtt import CameraMqttConfig, MqttConfig
from .hap.state import is_valid_setup_code
from .hds.sealing_pool import DEFAULT_POOL_BUFFERS
from .media.profiles import Profile, ProfileError, load_profiles, profile_dirs

if TYPE_CHECKING:
    import yaml

__all__ = ["LOG_LEVELS", "CameraConfig", "Config", "ConfigError", "TwoWayAudioConfig", "check_profiles", "load_config",
           "parse_camera_flag"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """A configuration problem, with a message meant for the user."""


class _Strict(BaseModel):
    # defer_build: pydantic builds a model's validator and serializer on its first use instead of
    # at class creation. Only ``Config`` is ever validated on its own, and its validator holds the
    # nested models' schemas, so the nested models' own validators and serializers (about 0.8 MB
    # in all) are never built (benchmarks/RESULTS.md, issue 23).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


MotionSourceName = Literal["detector", "http", "mqtt"]


def _external_motion() -> list[MotionSourceName]:
    return ["http", "mqtt"]


class DetectorConfig(_Strict):
    """The built-in motion detector's tuning (``cameras.N.detector``). Names and defaults follow
    Frigate's ``motion:`` section where they mean the same, so a Frigate tuning carries over."""

    fps: float = Field(default=5.0, ge=0.5, le=30, description="frames a second the detector looks at")
    frame_height: int = Field(default=100, ge=16, le=1080, description="rows of the picture it works on")
    threshold: int = Field(default=30, ge=1, le=255, description="grey-level change that counts (higher: less "
                                                                  "sensitive)")
    contour_area: int = Field(default=10, ge=1, description="smallest changed region, in pixels at frame_height")
    lightning_threshold: float = Field(default=0.8, gt=0, le=1, description="changed fraction that means a "
                                                                            "global change: recalibrate")
    improve_contrast: bool = True
    frame_alpha: float = Field(default=0.01, gt=0, lt=1, description="background update rate per frame")
    motion_frames: int = Field(default=2, ge=1, le=50, description="motion frames in a row before motion is on")
    off_delay: float = Field(default=30.0, ge=0, le=3600, description="seconds without motion before it is off "
                                                                      "(Frigate: mqtt_off_delay)")
    regions: bool = Field(default=True, description="group changed pixels into regions of contour_area or more")
    mask: list[str | list[tuple[float, float]]] = Field(
        default_factory=list, description="polygons to ignore, relative 0-1: 'x1,y1,x2,y2,...' as Frigate writes "
                                          "them, or lists of [x, y]")

    @field_validator("mask")
    @classmethod
    def _mask(cls, value: list[str | list[tuple[float, float]]]) -> list[str | list[tuple[float, float]]]:
        for polygon in _polygons(value):
            if len(polygon) < 3:
                raise ValueError("a mask polygon needs at least 3 corners")
            if not all(0 <= c <= 1 for point in polygon for c in point):
                raise ValueError("mask corners are relative: every x and y within 0-1")
        return value

    def polygons(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        return _polygons(self.mask)


def _polygons(mask: list[str | list[tuple[float, float]]]) -> tuple[tuple[tuple[float, float], ...], ...]:
    out = []
    for item in mask:
        if isinstance(item, str):
            try:
                numbers = [float(v) for v in item.replace(" ", "").split(",") if v]
            except ValueError:
                raise ValueError(f"mask {item!r}: expected 'x1,y1,x2,y2,...' numbers") from None
            if len(numbers) % 2:
                raise ValueError(f"mask {item!r}: an odd count of numbers")
            out.append(tuple(zip(numbers[::2], numbers[1::2], strict=True)))
        else:
            out.append(tuple((float(x), float(y)) for x, y in item))
    return tuple(out)


class TwoWayAudioConfig(_Strict):
    """Talking through the camera from the Home app (``cameras.N.two_way_audio``; docs/two-way-audio.md)."""

    target: str | None = Field(default=None, min_length=1,
                               description="where the voice goes: the camera's RTSP URL (its ONVIF backchannel) "
                                           "or any ffmpeg output (a file, udp://, rtp://); unset: the camera's "
                                           "source URL")
    format: str = Field(default="backchannel", pattern=r"^[a-z0-9_]+$",
                        description="backchannel (an ONVIF RTSP backchannel), or an ffmpeg muxer name for any "
                                    "other target (wav, mulaw, rtp, rtsp, ...)")
    codec: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$",
                              description="ffmpeg audio encoder; unset: what the backchannel offers, or the "
                                          "muxer's default")
    sample_rate: int | None = Field(default=None, ge=8000, le=48000,
                                    description="Hz; unset: what the backchannel offers, or 16000")

    @model_validator(mode="after")
    def _target(self) -> TwoWayAudioConfig:
        if self.format != "backchannel" and self.target is None:
            raise ValueError(f"format {self.format} needs a target (a file or URL for ffmpeg to write)")
        if self.format == "backchannel" and self.target is not None and not self.target.startswith("rtsp://"):
            raise ValueError("a backchannel target is an rtsp:// URL; for a file or another URL name its "
                             "ffmpeg format: too (e.g. format: wav)")
        return self


class TierConfig(_Strict):
    """A Medium or Low live tier of a secure-video camera (``cameras.N.tiers``; docs/secure-video.md §Tiers)."""

    width: int = Field(ge=16, le=7680, description="the tier's picture width")
    height: int = Field(ge=16, le=4320, description="the tier's picture height")
    fps: int = Field(default=15, ge=1, le=60)
    source: str | None = Field(default=None, min_length=1,
                               description="the camera's substream for this tier; unset: the main stream "
                                           "through an encoder profile")
    profile: str | None = Field(default=None, min_length=1,
                                description="the encoding profile (ffmpeg_profiles/) the tier is encoded with, "
                                            "from its source or the main stream; an H.264 transcode profile "
                                            "(unset: the live view's libx264)")


class CameraConfig(_Strict):
    name: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, description="rtsp://..., a file, or 'demo'")
    hap_port: int | None = Field(default=None, ge=1, le=65535)
    setup_code: str | None = None
    motion_every: float | None = Field(default=None, gt=0, description="demo: toggle motion every N seconds")
    profile: str = Field(default="copy", description="ffmpeg profile: copy, libx264, vaapi, qsv, nvenc, v4l2m2m; "
                         "for H.265 recordings libx265, hevc_vaapi, hevc_qsv, hevc_nvenc")
    transcode_fallback: bool = Field(default=False, description="copy mode: transcode if the GOP exceeds 4 s")
    record_codec: Literal["h264", "hevc", "auto"] = Field(
        default="h264", description="what hubs record: h264 (today's), hevc (all hubs on tvOS 27), auto (hevc "
        "from an H.265 camera, back to h264 after two failed recordings); docs/h265.md")
    advertise_hevc: bool = Field(
        default=False, description="with record_codec hevc or auto: also offer H.265 (codec type 1) in the "
        "recording configurations hubs select from; unverified with real hubs, so off by default (docs/h265.md)")
    doorbell: bool = False
    snapshot_url: str | None = Field(default=None, description="e.g. Frigate's /api/<cam>/latest.jpg")
    prebuffer_ms: int = Field(default=8000, ge=4000, le=30000, description="the most a hub may select")
    max_event_s: float = Field(default=180.0, ge=10, le=3600, description="longest recording")
    motion_timeout_s: float = Field(default=30.0, ge=0, le=3600, description="HTTP motion auto-reset; 0: never")
    operating_mode_indicator: bool = False
    night_vision: bool = False
    manually_disabled: bool = False
    max_live_streams: int = Field(default=2, ge=1, le=8, description="concurrent live views; more are told busy")
    archive: bool | None = Field(default=None, description="keep local copies of clips; unset: on when archive_dir is")
    mqtt: CameraMqttConfig | None = Field(default=None, description="motion from MQTT (Frigate, Blue Iris, ...)")
    motion: list[MotionSourceName] = Field(
        default_factory=_external_motion,
        description="motion sources: detector (built in), http, mqtt; several combine")
    detect_source: str | None = Field(default=None, min_length=1,
                                      description="the detector's own stream (the camera's substream); unset: the "
                                                  "main stream, as a second output of the recording ffmpeg")
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    two_way_audio: TwoWayAudioConfig | None = Field(
        default=None, description="talk through the camera's speaker from the Home app (Microphone and Speaker)")
    keep_warm: Literal["auto", "always", "recording"] = Field(
        default="auto", description="when ffmpeg runs: always (camera on), recording (recording on too), "
                                    "auto (always for copy, recording for transcoding)")
    homekit_model: Literal["classic", "secure_video"] = Field(
        default="classic", description="classic, or secure_video for tvOS 27 hubs (its own accessory and "
                                       "pairing: switching means pairing again)")
    tiers: dict[Literal["medium", "low"], TierConfig] = Field(
        default_factory=dict, description="secure_video: the Medium and Low live tiers (High is the main stream)")
    zone_coordinates: Literal["sensor_pixels", "normalized"] = Field(
        default="sensor_pixels", description="secure_video: how the hub's motion-zone corners map to the picture: "
        "sensor_pixels (pixels of the advertised sensor size) or normalized (0-65535 across the picture); "
        "unverified with real hubs (secure-video.md)")
    tier_codec: Literal["h264", "auto"] = Field(
        default="h264", description="secure_video: the live tiers' codec: h264, or auto (H.265 when the camera "
        "sends H.265: High passed through, Medium and Low encoded with libx265); secure-video.md")
    setup_endpoints_answer: Literal["read", "write_response"] = Field(
        default="read", description="secure_video: how the hub gets the SetupEndpoints answer: read (read back "
        "after the write) or write_response (also in the write's own response); unverified (secure-video.md)")

    @field_validator("two_way_audio", mode="before")
    @classmethod
    def _two_way_audio(cls, value: object) -> object:
        # ``two_way_audio: true`` is the common case: the camera's own backchannel.
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("motion", mode="before")
    @classmethod
    def _motion(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _tiers_need_secure_video(self) -> CameraConfig:
        if self.homekit_model == "secure_video":
            return self
        if self.tiers:
            raise ValueError("has tiers: but homekit_model is not secure_video (only that model has tiers)")
        for name, default in (("zone_coordinates", "sensor_pixels"), ("setup_endpoints_answer", "read"),
                              ("tier_codec", "h264")):
            if getattr(self, name) != default:
                raise ValueError(f"has {name}: but homekit_model is not secure_video (only that model reads it)")
        return self

    @model_validator(mode="after")
    def _tier_profiles_need_one_codec(self) -> CameraConfig:
        named = sorted(name for name, tier in self.tiers.items() if tier.profile is not None)
        if self.tier_codec == "auto" and named:
            raise ValueError(f"has tier_codec: auto and a profile on tier {named[0]}: a profile encodes one codec, "
                             "while auto follows the camera's; remove the tier's profile or use tier_codec: h264")
        return self

    @model_validator(mode="after")
    def _advertise_hevc_needs_hevc_recordings(self) -> CameraConfig:
        if self.advertise_hevc and self.record_codec == "h264":
            raise ValueError("has advertise_hevc: true but record_codec: h264 (offering H.265 needs "
                             "record_codec: hevc or auto)")
        return self

    @model_validator(mode="after")
    def _mqtt_is_a_motion_source(self) -> CameraConfig:
        # An mqtt: block that ``motion`` leaves out would silently do nothing: say so instead.
        if self.mqtt is not None and "mqtt" not in self.motion:
            raise ValueError("has an mqtt: block but its motion: list has no mqtt; add mqtt to motion: "
                             "(e.g. motion: [detector, mqtt]) or remove the mqtt: block")
        return self

    @field_validator("setup_code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_setup_code(value):
            raise ValueError("must look like 123-45-678 and not be trivial (e.g. 111-11-111, 123-45-678)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[\w][\w .'\-]*", value):
            raise ValueError("use letters, digits, spaces, dots, dashes or apostrophes")
        return value.strip()

    @property
    def motion_detector(self) -> bool:
        return "detector" in self.motion

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "camera"


class Config(_Strict):
    state_dir: Path = Path("hksv-state")
    bind: str = "0.0.0.0"  # noqa: S104 - the LAN is where the hubs are
    hap_base_port: int = Field(default=0, ge=0, le=65535, description="0: any free port per camera")
    mdns: bool = True
    mdns_interfaces: list[str] | None = None
    log_level: str = "INFO"
    http_port: int | None = Field(default=None, ge=0, le=65535,
                                  description="status page, /healthz, /metrics, API and HTTP triggers (off when unset)")
    trigger_http_port: int | None = Field(default=None, ge=0, le=65535,
                                          description="the old name of http_port (still accepted)")
    web_password: str | None = Field(default=None, min_length=1, max_length=256,
                                     description="needed by the status page's actions")
    trigger_token: str | None = Field(default=None, min_length=8, max_length=256,
                                      description="HTTP triggers need &token=<this> when set")
    archive_dir: Path | None = Field(default=None, description="keep a local MP4 of every recording here")
    archive_days: float = Field(default=7.0, gt=0, le=3650, description="delete clips older than this")
    archive_max_mb: int = Field(default=2000, ge=10, le=10_000_000, description="delete the oldest beyond this")
    ffmpeg_profiles_dir: Path | None = Field(
        default=None, description="your own ffmpeg profiles (<name>.toml); a name here replaces the built-in one")
    sealing_buffers: int = Field(
        default=DEFAULT_POOL_BUFFERS, ge=0, le=1024,
        description="recordings that may open in the same instant without waiting for fresh memory: one sealing "
                    "buffer (260 KiB: one batch of a recording, sealed as the socket drains) is kept ready per camera, "
                    "up to this many for all cameras")
    copy_ffmpeg: str | None = Field(
        default=None, min_length=1,
        description="the ffmpeg that copy-mode cameras' recording pipelines run (e.g. a static build, which holds "
                    "about a third of the private memory); unset: ffmpeg on PATH, as every other ffmpeg")
    mqtt: MqttConfig | None = Field(default=None, description="the MQTT broker (motion in, state out)")
    cameras: list[CameraConfig] = Field(default_factory=list)
    reset_damaged_state: bool = Field(
        default=False, description="a camera whose state file is damaged starts unpaired (the file is kept aside)")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        # YAML users write `debug`; logging only knows `DEBUG`.
        if isinstance(value, str):
            level = value.strip().upper()
            if level not in LOG_LEVELS:
                raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case), not {value!r}")
            return level
        return value

    @model_validator(mode="after")
    def _unique(self) -> Config:
        # Names map to state files (by slug) and ports to sockets: a clash would make two cameras
        # share an identity, so name both so the user knows which two entries to fix.
        first_by_slug: dict[str, int] = {}
        first_by_port: dict[int, int] = {}
        for index, cam in enumerate(self.cameras):
            other = first_by_slug.setdefault(cam.slug, index)
            if other != index:
                raise ValueError(
                    f"cameras.{other}.name {self.cameras[other].name!r} and cameras.{index}.name {cam.name!r} "
                    "are the same camera name (names must differ in more than case and punctuation)")
            if cam.mqtt is not None and self.mqtt is None:
                raise ValueError(f"cameras.{index}.mqtt needs a broker: add a top-level mqtt: {{host: ...}}")
            if cam.hap_port is None:
                continue
            other = first_by_port.setdefault(cam.hap_port, index)
            if other != index:
                raise ValueError(f"cameras.{other} ({self.cameras[other].name!r}) and cameras.{index} ({cam.name!r}) "
                                 f"both use hap_port {cam.hap_port}")
        return self

    @property
    def web_port(self) -> int | None:
        """The one HTTP port: ``http_port``, or its old name ``trigger_http_port``."""
        return self.http_port if self.http_port is not None else self.trigger_http_port

    def archives(self, camera: CameraConfig) -> bool:
        return self.archive_dir is not None and camera.archive is not False

    def port_for(self, index: int, camera: CameraConfig) -> int:
        if camera.hap_port is not None:
            return camera.hap_port
        return self.hap_base_port + index if self.hap_base_port else 0


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def build_config(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def check_profiles(config: Config) -> None:
    """Every profile file parses and every camera names a profile that exists, checked before any
    camera starts: a typo in ``profile:`` is a config error, not a crash at the first ffmpeg start."""
    extra = config.ffmpeg_profiles_dir
    if extra is not None and not extra.is_dir():
        raise ConfigError(f"ffmpeg_profiles_dir: {extra} is not a directory")
    try:
        profiles = load_profiles(profile_dirs([extra] if extra is not None else []))
    except ProfileError as exc:
        raise ConfigError(f"ffmpeg profile {exc}") from None
    for index, camera in enumerate(config.cameras):
        if camera.profile not in profiles:
            raise ConfigError(f"cameras.{index}.profile: unknown ffmpeg profile {camera.profile!r} "
                              f"(have {', '.join(sorted(profiles))})")
        for name, tier in sorted(camera.tiers.items()):
            _check_tier_profile(f"cameras.{index}.tiers.{name}.profile", tier.profile, profiles)


def _check_tier_profile(where: str, name: str | None, profiles: Mapping[str, Profile]) -> None:
    """A tier is always encoded, to H.264 (what its RTP payload and the advertised codec say)."""
    if name is None:
        return
    profile = profiles.get(name)
    h264 = sorted(n for n, p in profiles.items() if not p.is_copy and not p.encodes_hevc)
    if profile is None:
        raise ConfigError(f"{where}: unknown ffmpeg profile {name!r} (for a tier: {', '.join(h264)})")
    if profile.is_copy or profile.encodes_hevc:
        raise ConfigError(f"{where}: {name!r} does not encode H.264, and a tier is always encoded to H.264 "
                          f"(use one of {', '.join(h264)}, or leave profile out for libx264)")


def load_config(path: Path) -> dict[str, Any]:
    """Read a YAML file into a plain dict (validated later, merged with flags first).

    PyYAML is imported here, not with the module: a command given only flags (or a parent's
    ``config`` command) never loads it (about 1 MB; benchmarks/RESULTS.md, issue 23)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file (YAML must be UTF-8)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    try:
        return dict(expand_env(data))
    except EnvError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message in one line, with the line and column a user can find."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    text = " ".join(str(problem).split())
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {text}"
    return text


def parse_camera_flag(text: str) -> dict[str, Any]:
    """``--camera "Front Door=rtsp://..."`` → {"name": ..., "source": ...}."""
    name, sep, source = text.partition("=")
    if not sep or not name.strip() or not source.strip():
        raise ConfigError(f"--camera expects NAME=URL, got {text!r}")
    return {"name": name.strip(), "source": source.strip()}
