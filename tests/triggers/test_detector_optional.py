"""The detector's numpy and scipy are an optional extra: a sidecar whose cameras do not use the
detector never maps them, and a detector camera without them is refused in words (exit 2)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from tests.support.command import BASE, COMMAND, STARTED, expect_refusal, run

# A source that never answers: the camera starts (HAP, pairing code) and its pipeline retries.
UNREACHABLE = "rtsp://127.0.0.1:9/none"


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_a_sidecar_without_a_detector_camera_never_loads_numpy_or_scipy(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"cameras:\n  - name: Yard\n    source: {UNREACHABLE}\n    motion: [http]\n")
    proc = await asyncio.create_subprocess_exec(
        COMMAND, *BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not output or not re.search(STARTED, output[-1]):
                raw = await proc.stdout.readline()
                assert raw, "".join(output)
                output.append(raw.decode(errors="replace"))
        maps = mapped_libraries(proc.pid)
        assert "/numpy/" not in maps and "/scipy/" not in maps
        assert "/cryptography/" in maps  # the map is the running sidecar's, with its own libraries in it
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10):
            await proc.communicate()


async def test_a_detector_camera_without_numpy_and_scipy_is_refused_with_the_install_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The interpreter finds no numpy or scipy (sitecustomize runs before the sidecar's imports).
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['numpy'] = None\nsys.modules['scipy'] = None\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"cameras:\n  - name: Door\n    source: {UNREACHABLE}\n    motion: [http]\n"
                      f"  - name: Yard\n    source: {UNREACHABLE}\n    motion: [detector, http]\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")])))
    out = await run(*BASE, "--state-dir", str(tmp_path / "s"), "--config", str(config))
    expect_refusal(out, r"cameras\.1\.motion: the built-in motion detector needs numpy and scipy, which are not "
                        r"installed: pip install 'hksv-sidecar\[detector\]' \(or remove 'detector' from motion\)")
