"""The lock files agree with pyproject.toml, carry hashes, and are what this environment runs.

pyproject.toml keeps ranges (the package is also a library); ``requirements.lock`` and
``requirements-test.lock`` pin what an install from this repository gets (``bash .ci/lock``
makes them). A range edited without regenerating the locks, a pin outside its range, a pin
without a hash, or a test environment not installed from the lock fails here.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: int


def read_lock(path: Path) -> list[Pin]:
    """Every ``name==version [; marker]`` entry with the number of ``--hash`` lines under it."""
    pins: list[Pin] = []
    for line in path.read_text().splitlines():
        if line.startswith((" ", "#")) or not line.strip():
            if line.strip().startswith("--hash=sha256:") and pins:
                last = pins[-1]
                pins[-1] = Pin(last.name, last.version, last.marker, last.hashes + 1)
            continue
        match = _PIN.match(line)
        assert match, f"{path.name}: not a pinned requirement: {line!r}"
        name, version, marker = match.groups()
        pins.append(Pin(canonicalize_name(name.split("[")[0]), Version(version),
                        Marker(marker) if marker else None, 0))
    return pins


def project() -> dict[str, list[Requirement]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = data["optional-dependencies"]

    def expand(lines: list[str]) -> list[Requirement]:
        """The requirements, with an extra of this package itself (``hksv-sidecar[detector]``)
        replaced by that extra's own requirements."""
        out: list[Requirement] = []
        for req in map(Requirement, lines):
            if canonicalize_name(req.name) == canonicalize_name(data["name"]):
                for extra in sorted(req.extras):
                    out += expand(extras[extra])
            else:
                out.append(req)
        return out

    runtime = expand(data["dependencies"])
    return {"requirements.lock": runtime, "requirements-test.lock": runtime + expand(extras["test"])}


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-test.lock"])
def test_every_range_in_pyproject_is_pinned_inside_it_with_hashes(lock: str) -> None:
    pins = read_lock(ROOT / lock)
    assert pins, f"{lock} is empty"
    assert all(pin.hashes >= 1 for pin in pins), f"pins without a hash in {lock}"
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
    for req in project()[lock]:
        name = canonicalize_name(req.name)
        assert name in by_name, f"{req} is in pyproject.toml but not in {lock}: run bash .ci/lock"
        for pin in by_name[name]:
            assert req.specifier.contains(pin.version, prereleases=True), (
                f"{lock} pins {name}=={pin.version}, outside pyproject's {req.specifier}: run bash .ci/lock"
            )


def test_every_direct_dependency_has_an_upper_bound() -> None:
    for req in project()["requirements-test.lock"]:
        spec = str(req.specifier)
        assert "<" in spec or "==" in spec, f"{req} has no upper bound (cap it at the newest major tested)"


def test_this_environment_runs_what_the_test_lock_pins() -> None:
    """CI installs from the lock: every pin that applies here is the version installed."""
    wrong = []
    for pin in read_lock(ROOT / "requirements-test.lock"):
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        try:
            installed = Version(metadata.version(pin.name))
        except metadata.PackageNotFoundError:
            wrong.append(f"{pin.name} missing (lock: {pin.version})")
            continue
        if installed != pin.version:
            wrong.append(f"{pin.name} {installed} (lock: {pin.version})")
    assert not wrong, "not installed from requirements-test.lock (bash .ci/setup --test): " + ", ".join(wrong)
