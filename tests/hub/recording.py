"""The hub's recording steps over HAP: pair and read the database, select a recording
configuration, switch recording on, and record one clip over HDS. The characteristics it writes
are named in tests/hub/characteristics.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sidecar.camera.recording import configuration as rc
from tests.hub.characteristics import (
    DATA_STREAM_SETUP,
    EVENT_SNAPSHOTS_ACTIVE,
    HOMEKIT_CAMERA_ACTIVE,
    PERIODIC_SNAPSHOTS_ACTIVE,
    RECORDING_ACTIVE,
    RECORDING_AUDIO_ACTIVE,
    SELECTED_RECORDING_CONFIGURATION,
    STREAMING_ACTIVE,
    SUPPORTED_VIDEO_RECORDING_CONFIGURATION,
    Ids,
)
from tests.hub.database import iids_by_type
from tests.hub.hap_setup import DeriveCapture, open_hds
from tests.support.clips import advertised_codec
from tests.support.hap_client import aio_pair

__all__ = ["WRITABLE", "advertised_video", "enable_recording", "paired", "record", "recording_selection",
           "set_recording_audio", "write"]

#: The switches and values a test writes by name (``write(pairing, ids, recording=1)``).
WRITABLE = {"selection": SELECTED_RECORDING_CONFIGURATION, "recording": RECORDING_ACTIVE,
            "homekit": HOMEKIT_CAMERA_ACTIVE, "event": EVENT_SNAPSHOTS_ACTIVE, "periodic": PERIODIC_SNAPSHOTS_ACTIVE,
            "rtp": STREAMING_ACTIVE}


def recording_selection(*, width: int = 640, height: int = 360, fps: int = 15, bitrate_kbps: int = 600,
                        profile: int = rc.H264Profile.MAIN, level: int = rc.H264Level.L4_0, audio_kbps: int = 64,
                        prebuffer_ms: int = 4000) -> rc.RecordingSelection:
    """A recording configuration as a hub selects it: motion-triggered, 4 s fragments and
    keyframes, AAC-LC mono 32 kHz audio; the picture, bitrates and prebuffer as given."""
    return rc.RecordingSelection(prebuffer_ms, rc.TRIGGER_MOTION, 4000, rc.H264Profile(profile), rc.H264Level(level),
                                 bitrate_kbps, 4000, width, height, fps, rc.AudioRecordingCodec.AAC_LC, 1, 0,
                                 rc.SampleRate.KHZ_32, audio_kbps)


@asynccontextmanager
async def paired(port: int, pin: str) -> AsyncIterator[tuple[Any, Ids]]:
    """An aiohomekit pairing with the accessory on ``port`` and its iids by type; shut down at exit."""
    pairing = await aio_pair(port, pin)
    try:
        yield pairing, iids_by_type(await pairing.list_accessories_and_characteristics())
    finally:
        await pairing.shutdown()


async def advertised_video(pairing: Any, ids: Ids) -> tuple[list[int], list[int]]:
    """The H.264 profiles and levels the camera advertises for recording."""
    values = await pairing.get_characteristics([(1, ids[SUPPORTED_VIDEO_RECORDING_CONFIGURATION])])
    return advertised_codec(base64.b64decode(values[(1, ids[SUPPORTED_VIDEO_RECORDING_CONFIGURATION])]["value"]))


async def write(pairing: Any, ids: Ids, **values: Any) -> dict[Any, Any]:
    """One write of the named characteristics (names from :data:`WRITABLE`; bytes are sent as
    base64); returns aiohomekit's answer ({} when every write succeeded)."""
    items = [(1, ids[WRITABLE[name]], base64.b64encode(v).decode() if isinstance(v, bytes) else v)
             for name, v in values.items()]
    result: dict[Any, Any] = await pairing.put_characteristics(items)
    return result


async def set_recording_audio(pairing: Any, ids: Ids, active: bool, *, pid: int = 42) -> None:
    """RecordingAudioActive as a hub sets it: a timed write (``/prepare``, then the write under
    the same pid)."""
    await pairing._ensure_connected()
    conn = pairing.connection
    assert await conn.put_json("/prepare", {"ttl": 5000, "pid": pid}) == {"status": 0}
    await conn.put_json("/characteristics", {"characteristics": [
        {"aid": 1, "iid": ids[RECORDING_AUDIO_ACTIVE], "value": int(active)}], "pid": pid})


async def enable_recording(pairing: Any, ids: Ids, selection: rc.RecordingSelection | bytes | None, *,
                           homekit_active: bool = True) -> None:
    """What a hub writes to start recording, in one request: the selected configuration (unless
    None), HomeKitCameraActive (unless ``homekit_active`` is False) and recording Active."""
    writes: list[tuple[int, int, Any]] = []
    if selection is not None:
        raw = rc.encode_selection(selection) if isinstance(selection, rc.RecordingSelection) else selection
        writes.append((1, ids[SELECTED_RECORDING_CONFIGURATION], base64.b64encode(raw).decode()))
    if homekit_active:
        writes.append((1, ids[HOMEKIT_CAMERA_ACTIVE], 1))
    writes.append((1, ids[RECORDING_ACTIVE], 1))
    result = await pairing.put_characteristics(writes)
    assert result == {}, result


async def record(pairing: Any, capture: DeriveCapture, ids: Ids, stream_id: int, live_fragments: int,
                 tmp: Path) -> tuple[list[Any], Path]:
    """One recording over HDS as a hub pulls it: hello, open ``stream_id``, the init segment, the
    prebuffer and ``live_fragments`` live fragments, then close; the clip is written to
    ``tmp/rec<stream_id>.mp4``."""
    client = await open_hds(pairing, ids[DATA_STREAM_SETUP], capture)
    try:
        await client.hello()
        opened = await client.open(stream_id)
        assert (opened.header.status, opened.body) == (0, {"status": 0})
        frags, closed = await client.collect(stream_id, fragments=1 + 1 + live_fragments + 1, within=40)
        assert closed is None
        await client.close_stream(stream_id, 0)
    finally:
        await client.aclose()
    path = tmp / f"rec{stream_id}.mp4"
    path.write_bytes(b"".join(f.data for f in frags))
    return frags, path
