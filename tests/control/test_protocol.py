"""The parent-protocol codec in memory: every command, every rejection, and hypothesis on bytes."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.control import COMMANDS, BadLine, Command, LineDecoder, encode, parse_line


def feed_all(data: bytes, chunks: list[int] | None = None) -> list[Command | BadLine]:
    dec = LineDecoder()
    out: list[Command | BadLine] = []
    pos = 0
    for size in chunks or []:
        out += dec.feed(data[pos:pos + size])
        pos += size
    out += dec.feed(data[pos:])
    return out + dec.eof()


def test_commands_parse_with_seq_and_defaults() -> None:
    lines = (b'{"id":"ping","seq":7}\n{"id":"motion","data":{"camera":"Front","active":false},"seq":"a"}\r\n'
             b'\n{"id":"status"}\n{"id":"config","data":{"cameras":[]}}')
    got = feed_all(lines)
    assert got == [Command("ping", {}, 7), Command("motion", {"camera": "Front", "active": False}, "a"),
                   Command("status", {}, None), Command("config", {"cameras": []}, None)]
    assert got[1].camera == "Front"  # type: ignore[union-attr]


def test_rejections_name_the_problem_and_keep_seq() -> None:
    cases = {
        b"garbage": "not JSON",
        b"[1,2]": "expected an object",
        b'{"data":{}}': 'missing "id"',
        b'{"id":"reboot","seq":3}': "unknown command 'reboot'",
        b'{"id":"motion","seq":4}': "motion: data.camera is required",
        b'{"id":"motion","data":{"camera":"A","active":"yes"},"seq":5}': "data.active must be a boolean",
        b'{"id":"doorbell","data":{"camera":1}}': "data.camera must be a string",
        b'{"id":"ping","data":[1]}': '"data" must be an object',
        b'{"id":"ping","seq":true}': "seq must be a number or a string",
        b'{"id":"ping","seq":{"a":1}}': "seq must be a number or a string",
        b'{"id":"ping","extra":1}': "unexpected envelope field(s) extra",
        b'{"id":"ping","data":{"x":NaN}}': "not JSON",
        b"\xff\xfe": "not UTF-8",
        b"[" * 100000: "not JSON",
    }
    for line, message in cases.items():
        item = parse_line(line)
        assert isinstance(item, BadLine) and message in item.message, (line[:40], item)
    bad = parse_line(b'{"id":"reboot","seq":3}')
    assert isinstance(bad, BadLine) and bad.seq == 3


def test_over_long_line_is_one_error_and_the_next_line_still_parses() -> None:
    dec = LineDecoder(max_line=100)
    out = dec.feed(b"x" * 60)
    out += dec.feed(b"y" * 60)  # over the limit: one error, then dropped up to the newline
    out += dec.feed(b"z" * 1000)
    out += dec.feed(b'\n{"id":"ping"}\n')
    assert len(out) == 2 and isinstance(out[0], BadLine) and "longer than 100" in out[0].message
    assert out[1] == Command("ping")
    assert len(dec._buf) == 0


def test_encode_is_one_ascii_line() -> None:
    line = encode("status", {"camera": "Caméra\u2028", "paired": False}, seq=3)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    assert json.loads(line) == {"id": "status", "data": {"camera": "Caméra\u2028", "paired": False}, "seq": 3}
    assert json.loads(encode("bye")) == {"id": "bye", "data": {}}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_any_bytes_any_chunking_never_raise_and_match_one_shot(data: bytes, chunks: list[int]) -> None:
    one_shot = feed_all(data)
    assert feed_all(data, chunks) == one_shot
    assert all(isinstance(i, Command | BadLine) for i in one_shot)
    for item in one_shot:
        if isinstance(item, Command):
            assert item.name in COMMANDS and isinstance(item.data, dict)
    assert len(one_shot) <= data.count(b"\n") + 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*COMMANDS, "nope"]), st.dictionaries(st.sampled_from(["camera", "active", "x"]), json_values,
                                                             max_size=3),
       st.one_of(st.none(), st.integers(), st.text(max_size=80), json_values))
def test_envelopes_are_accepted_exactly_when_valid(name: str, data: dict[str, object], seq: object) -> None:
    line = json.dumps({"id": name, "data": data, "seq": seq}).encode()
    item = parse_line(line)
    assert isinstance(item, Command | BadLine)
    if isinstance(item, Command):
        assert item.name == name and item.data == data and item.seq == seq
        for key, (kind, required) in COMMANDS[name].items():
            assert (key in data) or not required
            if key in data:
                assert type(data[key]) is kind
        # what we accept, we can render back as an event line and read again
        assert parse_line(encode(name, data, item.seq).rstrip(b"\n")) == item
