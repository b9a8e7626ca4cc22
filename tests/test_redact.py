"""Secrets never printed: URL user info, secret query parameters, registered values, logs."""

from __future__ import annotations

import io
import logging

from hypothesis import given
from hypothesis import strategies as st

from sidecar.redact import MASK, RedactingFormatter, install_log_redaction, mask_url, redact, register_secret

# What a URL password may contain unencoded and ffmpeg still parses (no "/", no whitespace).
PASSWORD = st.text(st.sampled_from("abcXYZ0189!$&'()*+,;=:@%-._~"), min_size=1, max_size=20)
USER = st.text(st.sampled_from("abcxyz019-._"), min_size=1, max_size=10)
HOST = st.sampled_from(["127.0.0.1", "cam.local", "[::1]", "10.0.0.5:554", "nvr:8554"])
PATH = st.text(st.sampled_from("abc019/_-.?=&"), max_size=20)


@given(USER, PASSWORD, HOST, PATH, st.sampled_from(["rtsp", "rtsps", "http", "https", "srt"]))
def test_url_password_is_masked_and_the_rest_kept(user: str, password: str, host: str, path: str,
                                                  scheme: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}/{path}"
    expected = f"{scheme}://{user}:{MASK}@{host}/{path}"
    assert mask_url(url) == redact(expected)  # the path's own query may hold masked parameters
    for text in (f"opening {url}: Connection refused", repr(["ffmpeg", "-i", url]), f'{{"source": "{url}"}}'):
        masked = redact(text)
        assert f":{password}@" not in masked and f"{user}:{MASK}@" in masked


def test_examples() -> None:
    assert mask_url("rtsp://admin:p@ss@127.0.0.1:554/cam") == "rtsp://admin:***@127.0.0.1:554/cam"
    assert mask_url("rtsp://admin@cam/x") == "rtsp://admin@cam/x"  # a user alone is not a secret
    assert mask_url("http://nvr/image/cam?user=admin&pw=hunter2&q=1") == "http://nvr/image/cam?user=admin&pw=***&q=1"
    assert redact("GET /motion?Porch&trigger_token=abc123") == "GET /motion?Porch&trigger_token=***"
    assert redact("mail me at a@b.c") == "mail me at a@b.c"


def test_registered_secret_is_masked_anywhere() -> None:
    register_secret("Corr3ct-Horse%21")
    assert redact("pw Corr3ct-Horse! and Corr3ct-Horse%21") == f"pw {MASK} and {MASK}"
    register_secret("ab")  # too short to mask everywhere
    assert redact("abc") == "abc"


@given(st.text(max_size=200))
def test_redact_never_raises_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_log_formatter_masks_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.redact")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_log_redaction(logger)
    install_log_redaction(logger)  # idempotent
    assert isinstance(handler.formatter, RedactingFormatter)
    try:
        logger.warning("argv: %s", ["ffmpeg", "-i", "rtsp://admin:Sup3rSecret@cam/x"])
        try:
            raise OSError("cannot open rtsp://admin:Sup3rSecret@cam/x")
        except OSError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "Sup3rSecret" not in out and out.count("admin:***@cam") == 3
