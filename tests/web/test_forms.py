"""The action forms' parser, CSRF tokens and checks; every parser fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.web.forms import MAX_FORM_BYTES, Csrf, FormError, origin_allowed, parse_form, password_ok


def test_parse_form() -> None:
    assert parse_form(b"csrf=abc&password=p%40ss+word&go=1") == {"csrf": "abc", "password": "p@ss word", "go": "1"}
    assert parse_form(b"a=1&a=2") == {"a": "1"}  # the first value wins
    assert parse_form(b"") == {}
    with pytest.raises(FormError):
        parse_form(b"x=" + b"a" * MAX_FORM_BYTES)
    with pytest.raises(FormError):
        parse_form(b"&".join(b"f%d=1" % i for i in range(20)))
    with pytest.raises(FormError):
        parse_form(b"a=%ff%fe")  # not UTF-8


@given(st.binary(max_size=600))
def test_parse_form_fuzz(body: bytes) -> None:
    try:
        fields = parse_form(body)
    except FormError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=6))
def test_parse_form_round_trip(fields: dict[str, str]) -> None:
    from urllib.parse import urlencode

    assert parse_form(urlencode(fields).encode()) == fields


def test_csrf() -> None:
    a, b = Csrf(), Csrf()
    token = a.token("door:motion")
    assert a.check("door:motion", token)
    assert not a.check("door:reset", token)  # bound to the action
    assert not b.check("door:motion", token)  # bound to this process's secret
    assert not a.check("door:motion", None) and not a.check("door:motion", "")


@given(st.text(max_size=80))
def test_csrf_check_fuzz(value: str) -> None:
    assert Csrf(b"k" * 32).check("x", value) == (value == Csrf(b"k" * 32).token("x"))


def test_origin_and_password() -> None:
    assert origin_allowed(None, "127.0.0.1:8080")
    assert origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not origin_allowed("http://evil.example", "127.0.0.1:8080")
    assert not origin_allowed("null", "127.0.0.1:8080")
    assert password_ok(None, None) and password_ok(None, "x")
    assert password_ok("pw", "pw") and not password_ok("pw", "PW") and not password_ok("pw", None)


@given(st.text(max_size=100), st.one_of(st.none(), st.text(max_size=40)))
def test_origin_fuzz(origin: str, host: str | None) -> None:
    assert isinstance(origin_allowed(origin, host), bool)


def test_events_limit() -> None:
    from sidecar.web.server import parse_limit

    assert parse_limit(None) == 100 and parse_limit("0") == 0 and parse_limit("12") == 12
    for bad in ("", "101", "-1", "1e3", " 5", "٣", "0x10", "9999"):
        assert parse_limit(bad) is None, bad


@given(st.text(max_size=12))
def test_events_limit_fuzz(text: str) -> None:
    from sidecar.web.server import parse_limit

    value = parse_limit(text)
    assert value is None or (0 <= value <= 100 and int(text) == value)
