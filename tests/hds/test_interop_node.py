"""Cross-check with HAP-NodeJS's own HDS codec (hap-nodejs 1.2.0, run with node).

Both directions: a corpus encoded by HN (including its back-references, int64 ids, terminated
containers and the 0x2F it emits for 39) decodes in ours to the same typed values; and values
encoded by ours decode in HN's decoder to the same values, for the forms its decoder handles
(not inline data, float64/dates inside containers, or 39, which are HN decoder bugs, docs/protocol.md §OPACK).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from sidecar.hds import messages, opack
from sidecar.hds.datasend import DataSendStream
from tests.support.opack_vectors import INIT_EVENT_VALUE

from .typed import typed

pytestmark = pytest.mark.interop

NODE = shutil.which("node")
SCRIPT = Path(__file__).parent / "node" / "hn_codec.js"
HN = Path(__file__).parents[1] / "interop" / "node" / "node_modules" / "hap-nodejs"

if NODE is None or not HN.is_dir():
    pytest.skip("node or hap-nodejs not installed (bash .ci/setup --test)", allow_module_level=True)


def run_node(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [NODE, str(SCRIPT)], input=json.dumps(commands), capture_output=True, text=True, timeout=60, check=True
    )
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def test_hn_corpus_decodes_to_the_same_values_in_ours() -> None:
    (result,) = run_node([{"op": "corpus"}])
    assert result["ok"], result
    items = result["items"]
    assert len(items) >= 20
    for item in items:
        ours = opack.decode(bytes.fromhex(item["hex"]))
        assert typed(ours) == item["value"], item["name"]


def test_hn_corpus_exercises_back_references_and_hn_quirks() -> None:
    (result,) = run_node([{"op": "corpus"}])
    wire = {item["name"]: bytes.fromhex(item["hex"]) for item in result["items"]}
    assert wire["responseHeaderId0"].endswith(b"\xa5")  # status as back-reference to id
    assert b"\x2f" in wire["ints"]  # HN emits 39 as 0x2F (and its own decoder rejects it)
    assert wire["longArray"][0] == 0xDF and wire["longDict"][0] == 0xEF
    assert wire["dataEvent"].count(b"\x33\xe0\x93\x04\x00") == 1  # dataTotalSize 300000 as Int64


CORPUS_FOR_HN: list[object] = [
    {},
    {"protocol": "control", "request": "hello", "id": 1},
    {"protocol": "dataSend", "response": "open", "id": opack.Int64(123456), "status": opack.Int64(0)},
    {"target": "controller", "type": "ipcamera.recording", "streamId": 1},
    {"status": 2},
    [-1, 0, 1, 38, 40, 127, 128, -128, -129, 32767, 32768, -32768, -32769, 262144, (1 << 31) - 1, 1 << 40],
    ["", "a", "x" * 32, "y" * 33, "z" * 300, "w" * 70000, "héllo ✓ — non-ASCII, inline length in bytes", "é"],
    [b"\x00" * 33, b"\x01" * 255, b"\x02" * 256, b"\x03" * 70000],
    [True, False, None, True],
    uuid.UUID("123e4567-e89b-12d3-a456-426614174000"),
    opack.Float32(0.5),
    list(range(20)),
    {f"k{i}": i for i in range(20)},
    {"a": {"b": {"c": [{"d": ["e", "e"]}]}}},
]


def _hn_view(value: Any) -> Any:
    """What HN's decoder yields for a value: UUIDs as strings, ints as JS numbers."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, opack.Int64 | opack.Int8 | opack.Int16 | opack.Int32 | opack.Float32):
        return value.value
    if isinstance(value, list):
        return [_hn_view(v) for v in value]
    if isinstance(value, dict):
        return {k: _hn_view(v) for k, v in value.items()}
    return value


def _hn_typed(value: Any) -> Any:
    t = typed(_hn_view(value))
    return json.loads(json.dumps(t))


def test_ours_decode_in_hn() -> None:
    wires = [opack.encode(value) for value in CORPUS_FOR_HN]
    results = run_node([{"op": "decode", "hex": w.hex()} for w in wires])
    for value, wire, result in zip(CORPUS_FOR_HN, wires, results, strict=True):
        assert result["ok"], (value, wire[:40].hex(), result)
        expected = _hn_typed(value)
        if expected["t"] == "uuid":
            expected = {"t": "str", "v": expected["v"]}
        assert result["value"] == expected, wire[:40].hex()


def test_our_data_events_and_hello_response_decode_in_hn() -> None:
    stream = DataSendStream(3)
    init = bytes(range(256)) * 4
    fragment = bytes(600_000)
    bodies = list(stream.init_segment(init)) + list(stream.fragment(fragment, end_of_stream=True))
    payloads = [messages.encode_event("dataSend", "data", b) for b in bodies]
    payloads.append(messages.encode_response("control", "hello", 1, 0, {}))
    commands = []
    for payload in payloads:
        hlen = payload[0]
        commands.append({"op": "decode", "hex": bytes(payload[1 : 1 + hlen]).hex()})
        commands.append({"op": "decode", "hex": bytes(payload[1 + hlen :]).hex()})
    results = run_node(commands)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
    headers, bodies_hn = results[0::2], results[1::2]
    assert headers[0]["value"] == typed({"protocol": "dataSend", "event": "data"})
    assert headers[-1]["value"] == typed({"protocol": "control", "response": "hello", "id": 1, "status": 0})
    first = bodies_hn[0]["value"]
    assert first == _hn_typed(
        {
            "streamId": 3,
            "packets": [
                {
                    "data": init,
                    "metadata": {
                        "dataType": "mediaInitialization",
                        "dataSequenceNumber": 1,
                        "dataChunkSequenceNumber": 1,
                        "isLastDataChunk": True,
                        "dataTotalSize": len(init),
                    },
                }
            ],
            "endOfStream": False,
        }
    )
    last = bodies_hn[3]["value"]
    assert last == _hn_typed(
        {
            "streamId": 3,
            "packets": [
                {
                    "data": fragment[2 * 262144 :],
                    "metadata": {
                        "dataType": "mediaFragment",
                        "dataSequenceNumber": 2,
                        "dataChunkSequenceNumber": 3,
                        "isLastDataChunk": True,
                    },
                }
            ],
            "endOfStream": True,
        }
    )


def test_hn_encoding_of_a_data_event_matches_ours_byte_for_byte_where_forms_agree() -> None:
    (result,) = run_node([{"op": "corpus"}])
    init = next(i for i in result["items"] if i["name"] == "initEvent")
    ours = opack.encode(INIT_EVENT_VALUE)
    # HN back-references the repeated 1s? No: inline ints are never remembered, so the bytes agree.
    assert ours.hex() == init["hex"]
