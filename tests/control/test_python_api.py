"""The in-process API for Python parents: the example in docs/examples/embed.py, run as written."""

from __future__ import annotations

import asyncio
import importlib.util
import io
from pathlib import Path
from types import ModuleType

import pytest

import sidecar
from sidecar.camera.events import MotionChanged

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "embed.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embed_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example() -> ModuleType:
    """Loaded outside the event loop, as a program's imports run before its loop starts."""
    return load_example()


async def test_example_starts_a_camera_raises_motion_and_stops(tmp_path: Path, example: ModuleType) -> None:
    stop = asyncio.Event()
    events: list[object] = []
    seen = asyncio.Event()

    def on_event(event: object) -> None:
        events.append(event)
        seen.set()

    task = asyncio.ensure_future(example.run(tmp_path / "state", stop, on_event))
    try:
        await asyncio.wait_for(seen.wait(), 30)
        motion = [e for e in events if isinstance(e, MotionChanged)]
        assert len(motion) == 1 and motion[0].camera == "Garage" and motion[0].active
        assert motion[0].source == "my-app"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_public_names_and_config_errors(tmp_path: Path) -> None:
    assert {"App", "Config", "CameraConfig", "build_config", "ConfigError", "CameraEvent"} <= set(sidecar.__all__)
    with pytest.raises(sidecar.ConfigError, match=r"cameras\.0\.setup_code"):
        sidecar.build_config({"cameras": [{"name": "A", "source": "demo", "setup_code": "1"}]})
    config = sidecar.Config(state_dir=tmp_path, bind="127.0.0.1", mdns=False,
                            cameras=[sidecar.CameraConfig(name="Porch", source="demo", profile="libx264",
                                                          setup_code="031-45-154")])
    app = sidecar.App(config, out=io.StringIO())
    await app.start()
    try:
        porch = app.cameras[0]
        assert porch.name == "Porch" and porch.server.paired is False and porch.server.port > 0
        _, writer = await asyncio.open_connection("127.0.0.1", porch.server.port)  # its HAP server
        writer.close()
        await writer.wait_closed()
    finally:
        await app.stop()
    assert "setup code: 031-45-154" in app.out.getvalue()  # type: ignore[attr-defined]
