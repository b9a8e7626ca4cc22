"""The package as a user installs it: build the wheel, install it into a fresh venv, run the installed
``hksv-sidecar`` from an unrelated directory, and pair with it.

This is the failure the issue reported: ``ffmpeg_profiles/`` was read from the source tree, so a
non-editable install died with ``unknown ffmpeg profile 'copy' (have [])``.

The wheel is built without build isolation (the test venv's setuptools) and installed with
``--no-deps``; the fresh venv reaches the dependencies through a ``.pth`` line naming the test venv's
site-packages. A path line in a ``.pth`` file is not itself scanned for ``.pth`` files, so the
editable install of ``sidecar`` there stays invisible, and the assertion below checks that the
code that runs is the installed copy. (Resolving the dependencies from PyPI took 50-90 s here; the
Docker image test does that real ``pip install`` from the tree.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from sidecar import __version__
from tests.support.hap_client import aio_pair, unverified_status
from tests.support.sidecar_process import SidecarProcess

REPO = Path(__file__).resolve().parents[2]
PIN = "031-45-154"
PROFILES = sorted(p.name for p in (REPO / "ffmpeg_profiles").glob("*.toml"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with our wheel installed; returns its ``bin`` directory."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("sidecar", "ffmpeg_profiles"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(root / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("hksv_sidecar-*.whl")
    assert wheel.name.startswith(f"hksv_sidecar-{__version__}-"), "the version comes from sidecar/__init__.py"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sidecar/ffmpeg_profiles/{p}" for p in PROFILES} <= names
    assert "sidecar/py.typed" in names
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", where], check=True, capture_output=True,
                             text=True).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib) / "test-venv-deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return venv / "bin"


def test_the_installed_package_is_the_wheel_and_finds_its_profiles(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(installed / "python"), "-c",
         "import sidecar, sidecar.media as m; print(sidecar.__file__); print(m.BUILTIN_PROFILE_DIR);"
         "print(','.join(sorted(m.load_profiles())))"],
        cwd=tmp_path, check=True, capture_output=True, text=True, env={**os.environ, "HKSV_FFMPEG_PROFILES": ""},
    ).stdout.splitlines()
    venv = str(installed.parent)
    assert out[0].startswith(venv), out
    assert out[1].startswith(venv) and out[1].endswith("sidecar/ffmpeg_profiles"), out
    assert out[2].split(",") == [p.removesuffix(".toml") for p in PROFILES]
    version = subprocess.run([str(installed / "hksv-sidecar"), "--version"], cwd=tmp_path, check=True,
                             capture_output=True, text=True).stdout
    assert version.strip() == f"hksv-sidecar {__version__}"


@pytest.mark.slow
async def test_installed_demo_answers_hap_and_pairs(installed: Path, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(installed / "hksv-sidecar"), "--demo", "--no-mdns", "--bind", "127.0.0.1", "--setup-code", PIN,
        "--state-dir", str(tmp_path / "state"), cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    sidecar = SidecarProcess(proc)
    try:
        port = int((await sidecar.wait_for_line(r"HAP port: (\d+)", timeout=30)).group(1))
        status = await unverified_status(port)
        assert status.startswith(b"HTTP/1.1 470"), status  # unverified: HAP's "connection authorization required"
        pairing = await aio_pair(port, PIN)
        try:
            accessories = await pairing.list_accessories_and_characteristics()
            names = [c["value"] for s in accessories[0]["services"] for c in s["characteristics"]
                     if c["type"] == "00000023-0000-1000-8000-0026BB765291"]
            assert "Demo Camera" in names
        finally:
            await pairing.shutdown()
    finally:
        assert await sidecar.terminate() == 0, "".join(sidecar.lines)
    assert not any("Traceback" in line for line in sidecar.lines), "".join(sidecar.lines)
