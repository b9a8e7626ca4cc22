"""Our camera's /accessories against HAP-NodeJS 1.2.0's reference HKSV camera (docs/testing.md §Reference camera).

HAP-NodeJS is given the values our camera advertises, so both encode the same semantics; the
databases must then have the same services, characteristic types, formats, permissions and
links, and equal TLV values once decoded (iids and order ignored).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sidecar import tlv8
from sidecar.camera import Camera, CameraSpec, TwoWayAudio
from tests.support.hap_client import aio_pair
from tests.support.ports import free_port

pytestmark = pytest.mark.interop
PIN = "031-45-154"
NODE_DIR = Path(__file__).parent / "node"


def u(data: bytes) -> int:
    return int.from_bytes(data, "little")


def listed(items: list[tuple[int, bytes]], t: int) -> list[bytes]:
    return [v for k, v in items if k == t]


def attrs(items: list[tuple[int, bytes]]) -> list[tuple[int, int, int]]:
    out = []
    for raw in listed(items, 3):
        a = tlv8.decode_dict(raw)
        out.append((u(a[1]), u(a[2]), a[3][0]))
    return sorted(out)


def decode(char_type: str, value: bytes) -> Any:
    """A canonical, order-free reading of the TLVs both sides serve."""
    items = tlv8.decode(value)
    if char_type == "205":
        d = dict(items)
        container = tlv8.decode_dict(d[3])
        return u(d[1]), u(d[2]), container[1][0], u(tlv8.decode_dict(container[2])[1])
    if char_type in ("206", "114"):
        codec = tlv8.decode(dict(items)[1])
        params = tlv8.decode(dict(codec)[2])
        return (dict(codec)[1][0], sorted(v[0] for v in listed(params, 1)), sorted(v[0] for v in listed(params, 2)),
                [v[0] for v in listed(params, 3)], attrs(codec))
    if char_type in ("207", "115"):
        codecs = []
        for raw in listed(items, 1):
            c = tlv8.decode(raw)
            p = tlv8.decode(dict(c)[2])
            codecs.append((dict(c)[1][0], dict(p)[1][0], dict(p)[2][0], sorted(v[0] for v in listed(p, 3))))
        return sorted(codecs), [v[0] for v in listed(items, 2)]
    if char_type == "116":
        return sorted(v[0] for v in listed(items, 2))
    return value


COMPARED_VALUES = {"205", "206", "207", "114", "115", "116", "130"}


def canonical(db: dict[str, Any]) -> dict[str, Any]:
    services = db["accessories"][0]["services"]
    by_iid = {s["iid"]: s["type"].split("-")[0].lstrip("0").upper() for s in services}
    out: dict[str, Any] = {}
    for svc in services:
        stype = by_iid[svc["iid"]]
        chars = {}
        for c in svc["characteristics"]:
            ctype = c["type"].split("-")[0].lstrip("0").upper()
            entry: dict[str, Any] = {"format": c["format"], "perms": sorted(c["perms"])}
            if ctype in COMPARED_VALUES and "value" in c:
                entry["value"] = decode(ctype, base64.b64decode(c["value"]))
            chars[ctype] = entry
        out[stype] = {"chars": chars, "linked": sorted(by_iid[i] for i in svc.get("linked", []))}
    return out


@pytest.fixture(params=[False, True], ids=["plain", "two-way-audio"])
async def ours(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Camera]:
    talk = TwoWayAudio() if request.param else None
    camera = Camera(CameraSpec(name="Ours", source="demo", profile="libx264", setup_code=PIN, two_way_audio=talk),
                    tmp_path / "ours", host="127.0.0.1", port=0, advertiser=None)
    await camera.start()
    try:
        yield camera
    finally:
        await camera.stop()


async def fetch(port: int) -> dict[str, Any]:
    pairing = await aio_pair(port, PIN)
    try:
        await pairing._ensure_connected()
        response = await pairing.connection.get("/accessories")
        result: dict[str, Any] = json.loads(bytes(response.body))
        return result
    finally:
        await pairing.shutdown()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by .ci/setup --test")
async def test_database_matches_the_hap_nodejs_reference(ours: Camera, tmp_path: Path) -> None:
    mine = canonical(await fetch(ours.server.port))
    rec = mine["204"]["chars"]
    prebuffer, triggers, _, fragment = rec["205"]["value"]
    _, profiles, levels, _, resolutions = rec["206"]["value"]
    (audio,), _ = rec["207"]["value"]
    _, sprofiles, slevels, _, sresolutions = mine["110"]["chars"]["114"]["value"]
    options = {"prebuffer": prebuffer, "triggers": [], "fragment": fragment, "profiles": profiles, "levels": levels,
               "resolutions": [list(r) for r in resolutions], "sampleRates": audio[3],
               "streamProfiles": sprofiles, "streamLevels": slevels,
               "streamResolutions": [list(r) for r in sresolutions],
               "twoWayAudio": ours.spec.two_way_audio is not None}
    assert triggers == 1  # motion only: what HAP-NodeJS derives from its motion sensor
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "node", "reference_camera.js", str(port), str(tmp_path / "hn"), json.dumps(options), cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"LISTENING"), line
        reference = canonical(await fetch(port))
    finally:
        proc.terminate()
        await proc.wait()
    assert sorted(mine) == sorted(reference)
    for stype in reference:
        assert mine[stype]["linked"] == reference[stype]["linked"], stype
        assert sorted(mine[stype]["chars"]) == sorted(reference[stype]["chars"]), stype
        for ctype, entry in reference[stype]["chars"].items():
            assert mine[stype]["chars"][ctype] == entry, (stype, ctype)
