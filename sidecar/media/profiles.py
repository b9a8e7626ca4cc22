"""Encoding profiles: declarative TOML files in ``ffmpeg_profiles/`` (one per profile).

A profile says how to read the input (``[input.options]``, e.g. hardware decoding), how to
produce video (``[video]``: codec, optional filter, options) and audio (``[audio]``), and which
hub-selected settings it can honour (``honours``). Option values may use ``{placeholders}``
filled from :meth:`RecordingSettings.template_values`; ``{profile}`` and ``{level}`` first go
through the profile's ``[video.profiles]`` and ``[video.levels]`` tables, since every encoder
spells them differently. Options are a TOML table (not an argv list) because ffmpeg-python takes
keyword arguments: each key is written once, which also rules out contradictory repeats.

The muxer options HKSV depends on (fragmented MP4 flags) are not in profiles: a user profile
cannot break them. Users add a profile by dropping a ``<name>.toml`` into a profile directory.
"""

from __future__ import annotations

import os
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .settings import RecordingSettings

__all__ = [
    "BUILTIN_PROFILE_DIR",
    "HONOURABLE",
    "Profile",
    "ProfileError",
    "load_profile",
    "load_profiles",
    "profile_dirs",
]



def _builtin_profile_dir() -> Path:
    """The shipped profiles: ``sidecar/ffmpeg_profiles/`` in an installed wheel (pyproject maps the
    top-level directory there), or the top-level ``ffmpeg_profiles/`` of a source tree or editable
    install (setuptools' editable finder cannot map a data-only sub-package, so no import is used)."""
    here = Path(__file__).resolve().parents[1]
    installed = here / "ffmpeg_profiles"
    return installed if installed.is_dir() else here.parent / "ffmpeg_profiles"


#: Where the shipped profiles live.
BUILTIN_PROFILE_DIR = _builtin_profile_dir()
#: Settings a profile may claim to honour (audio on/off is always honoured).
HONOURABLE = frozenset({"resolution", "fps", "bitrate", "profile", "level", "iframe_interval"})
_PLACEHOLDERS = frozenset(RecordingSettings().template_values())

OptionValue = str | None
_HEVC_ENCODERS = frozenset({"libx265", "libkvazaar", "libsvt_hevc"})


class ProfileError(ValueError):
    """A profile file is missing, unreadable or inconsistent (named in the message)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One encoding profile, as read from its TOML file."""

    name: str
    description: str
    mode: Literal["copy", "transcode"]
    hardware: bool
    honours: frozenset[str]
    input_options: Mapping[str, OptionValue]
    video_codec: str
    video_filter: str | None
    video_options: Mapping[str, OptionValue]
    profile_names: Mapping[str, str]
    level_names: Mapping[str, str]
    audio_codec: str
    audio_options: Mapping[str, OptionValue]
    path: Path | None = field(default=None, compare=False)

    @property
    def is_copy(self) -> bool:
        return self.mode == "copy"

    @property
    def encodes_hevc(self) -> bool:
        """The profile encodes H.265 (``libx265``, ``hevc_*``): its output is tagged ``hvc1``."""
        return self.video_codec in _HEVC_ENCODERS or self.video_codec.startswith("hevc_")

    def _values(self, settings: RecordingSettings) -> dict[str, str]:
        values = settings.template_values()
        values["profile"] = self.profile_names.get(settings.profile, settings.profile)
        values["level"] = self.level_names.get(settings.level, settings.level)
        return values

    def render_video(self, settings: RecordingSettings) -> tuple[str | None, dict[str, OptionValue]]:
        """The video filter and options for ``settings`` (placeholders filled)."""
        values = self._values(settings)
        vf = self.video_filter.format_map(values) if self.video_filter else None
        return vf, _render(self.video_options, values)

    def render_audio(self, settings: RecordingSettings) -> dict[str, OptionValue]:
        return _render(self.audio_options, self._values(settings))

    def render_input(self, settings: RecordingSettings) -> dict[str, OptionValue]:
        return _render(self.input_options, self._values(settings))

    def unhonoured(self) -> tuple[str, ...]:
        """Names of the recording settings this profile ignores (copy: all but audio)."""
        return tuple(sorted(HONOURABLE - self.honours))


def _render(options: Mapping[str, OptionValue], values: Mapping[str, str]) -> dict[str, OptionValue]:
    return {k: (v.format_map(values) if v is not None else None) for k, v in options.items()}


def _options(table: Any, where: str) -> dict[str, OptionValue]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ProfileError(f"{where} must be a table")
    out: dict[str, OptionValue] = {}
    for key, value in table.items():
        if not isinstance(key, str) or not key or key.startswith("-"):
            raise ProfileError(f"{where}: option names are written without the dash: {key!r}")
        if value is True:
            out[key] = None  # a flag without a value, e.g. re = true -> "-re"
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            out[key] = str(value)
        else:
            raise ProfileError(f"{where}.{key}: value must be a string, number or true")
    return out


def _check_placeholders(text: str | None, where: str) -> None:
    if text is None:
        return
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ProfileError(f"{where}: bad placeholder syntax in {text!r}: {exc}") from exc
    unknown = [f for f in fields if f not in _PLACEHOLDERS]
    if unknown:
        raise ProfileError(f"{where}: unknown placeholder(s) {unknown} (known: {sorted(_PLACEHOLDERS)})")


def _str_map(table: Any, where: str) -> dict[str, str]:
    if table is None:
        return {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ProfileError(f"{where} must map names to strings")
    return dict(table)


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    where = path.name
    name = data.get("name", path.stem)
    if not isinstance(name, str) or name != path.stem:
        raise ProfileError(f"{where}: name must match the file name ({path.stem!r})")
    mode = data.get("mode")
    if mode not in ("copy", "transcode"):
        raise ProfileError(f"{where}: mode must be 'copy' or 'transcode'")
    honours = data.get("honours", [])
    if not isinstance(honours, list) or not set(honours) <= HONOURABLE:
        raise ProfileError(f"{where}: honours must be a subset of {sorted(HONOURABLE)}")
    video = data.get("video")
    audio = data.get("audio")
    if not isinstance(video, dict) or not isinstance(video.get("codec"), str):
        raise ProfileError(f"{where}: [video] with a codec is required")
    if not isinstance(audio, dict) or not isinstance(audio.get("codec"), str):
        raise ProfileError(f"{where}: [audio] with a codec is required")
    if mode == "copy" and video["codec"] != "copy":
        raise ProfileError(f"{where}: a copy profile has video codec 'copy'")
    if mode == "transcode" and video["codec"] == "copy":
        raise ProfileError(f"{where}: a transcode profile needs an encoder")
    vfilter = video.get("filter")
    if vfilter is not None and not isinstance(vfilter, str):
        raise ProfileError(f"{where}: video.filter must be a string")
    inp = data.get("input", {})
    profile = Profile(
        name=name,
        description=str(data.get("description", "")),
        mode=mode,
        hardware=bool(data.get("hardware", False)),
        honours=frozenset(honours),
        input_options=_options(inp.get("options") if isinstance(inp, dict) else None, "input.options"),
        video_codec=video["codec"],
        video_filter=vfilter,
        video_options=_options(video.get("options"), "video.options"),
        profile_names=_str_map(video.get("profiles"), "video.profiles"),
        level_names=_str_map(video.get("levels"), "video.levels"),
        audio_codec=audio["codec"],
        audio_options=_options(audio.get("options"), "audio.options"),
        path=path,
    )
    _check_placeholders(vfilter, f"{where} video.filter")
    for section, opts in (
        ("input", profile.input_options),
        ("video", profile.video_options),
        ("audio", profile.audio_options),
    ):
        for key, value in opts.items():
            _check_placeholders(value, f"{where} {section}.options.{key}")
    reserved = {"f", "format", "movflags", "map", "i", "c:v", "vcodec", "c:a", "acodec", "an", "vf", "filter:v",
                "tag:v"}
    clash = reserved & (set(profile.video_options) | set(profile.audio_options))
    if clash:
        raise ProfileError(f"{where}: options {sorted(clash)} are set by the sidecar, not by profiles")
    return profile


def profile_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Profile directories, later ones overriding earlier: built-in, ``$HKSV_FFMPEG_PROFILES``
    (``os.pathsep``-separated), then ``extra`` (e.g. the user's config directory)."""
    dirs = [BUILTIN_PROFILE_DIR]
    env = os.environ.get("HKSV_FFMPEG_PROFILES")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += list(extra)
    return dirs


def load_profiles(dirs: Iterable[Path] | None = None) -> dict[str, Profile]:
    """All profiles found in ``dirs`` (default :func:`profile_dirs`), by name.

    A user file with the same name as a built-in replaces it. A broken file raises
    :class:`ProfileError` naming it: a silently skipped profile would be worse.
    """
    found: dict[str, Profile] = {}
    for directory in profile_dirs() if dirs is None else dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            profile = load_profile(path)
            found[profile.name] = profile
    return found
