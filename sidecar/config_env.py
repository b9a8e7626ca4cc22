"""Secrets from the environment: ``${NAME}`` anywhere in a YAML string value.

Compose files and ``docker run -e`` hand secrets over as environment variables; writing them
into ``config.yaml`` would put them on disk and in backups. So ``password: "${MQTT_PASSWORD}"``
or ``source: rtsp://admin:${CAM_PASSWORD}@192.168.1.20/stream`` take the value at start.

Why ``${NAME}`` and not Frigate's ``{FRIGATE_NAME}``: our strings already use ``{height}`` as a
template (``snapshot_url``), and ``${...}`` is what compose and shells use, so nobody has to
guess. ``$${`` writes a literal ``${``. A variable that is not set is an error naming it and
the setting (never its value, never the other values); an empty variable counts as set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["EnvError", "expand_env"]

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvError(ValueError):
    """A ``${NAME}`` that cannot be filled in; the message names it and where it is."""


def _expand_text(text: str, where: str, environ: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        if not _NAME.fullmatch(name):
            raise EnvError(f"{where}: ${{{name}}} is not a valid environment variable name "
                           "(letters, digits and _; write $${ for a literal ${)")
        if name not in environ:
            raise EnvError(f"{where}: environment variable {name} is not set")
        return environ[name]

    return _REF.sub(fill, text)


def expand_env(data: Any, environ: Mapping[str, str] | None = None, where: str = "") -> Any:
    """``data`` (parsed YAML) with every ``${NAME}`` in a string value replaced. Keys are left alone."""
    env = os.environ if environ is None else environ
    if isinstance(data, str):
        return _expand_text(data, where or "config", env)
    if isinstance(data, dict):
        return {k: expand_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, env, f"{where}.{i}" if where else str(i)) for i, v in enumerate(data)]
    return data
