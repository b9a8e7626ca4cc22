"""Importing one layer loads only what that layer runs.

The protocol layers (HAP, HDS, media) serve every camera; the web server, the config model and
the detector's numpy are the application's. ``import sidecar`` once pulled all of it in (1.2 s
and about 100 MiB before the first byte of HAP), so a layer's import is checked in a fresh
interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "scipy", "aiohttp", "pydantic", "prometheus_client", "yaml", "aiomqtt", "segno")


def loaded_after(module: str) -> list[str]:
    code = f"import sys; import {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.split()


@pytest.mark.parametrize("module", ["sidecar", "sidecar.hap", "sidecar.hds", "sidecar.media", "sidecar.tlv8"])
def test_a_layer_loads_none_of_the_applications_dependencies(module: str) -> None:
    assert loaded_after(module) == []


def test_importtime_of_the_hap_server_names_none_of_them() -> None:
    # The check as a user would run it: every module -X importtime reports for `import sidecar.hap`.
    # The mDNS libraries load only when an advertiser is made (a server with mDNS off has none).
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import sidecar.hap"],
                         capture_output=True, text=True, check=True, timeout=60)
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.stderr.splitlines()
              if line.startswith("import time:")}
    assert "sidecar" in loaded
    assert loaded.isdisjoint({"numpy", "scipy", "aiohttp", "pydantic", "zeroconf", "ifaddr"})


def test_the_package_face_still_gives_the_python_api() -> None:
    import sidecar

    assert sidecar.App.__name__ == "App" and callable(sidecar.build_config)
    assert {"App", "Config", "build_config"} <= set(dir(sidecar))
    with pytest.raises(AttributeError):
        _ = sidecar.no_such_name  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", ["sidecar.app", "sidecar.cli", "sidecar.camera"])
def test_the_application_loads_what_only_some_configurations_run_when_they_run_it(module: str) -> None:
    # The detector's numpy and scipy, the MQTT client and the web server load in App.start when a
    # camera or the configuration uses them; the config model (pydantic) is always built, PyYAML
    # only reads a YAML file. The QR code library loads only to print an unpaired camera's code
    # (or with the status page).
    assert set(loaded_after(module)).isdisjoint(
        {"numpy", "scipy", "aiohttp", "aiomqtt", "prometheus_client", "segno", "yaml"})


def _yaml_loaded_after_parsing(argv: list[str]) -> bool:
    code = (f"import sys; from sidecar.cli import parse_args; parse_args({argv!r}); "
            "print('yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.split() == ["True"]


def test_the_command_reads_yaml_only_from_a_configuration_file(tmp_path: Path) -> None:
    # A command given only flags never loads PyYAML (about 1 MB of the process); a file does.
    assert not _yaml_loaded_after_parsing(["--camera", "Door=rtsp://127.0.0.1:9/x"])
    config = tmp_path / "config.yaml"
    config.write_text("cameras:\n  - name: Door\n    source: rtsp://127.0.0.1:9/x\n", encoding="utf-8")
    assert _yaml_loaded_after_parsing(["--config", str(config)])
