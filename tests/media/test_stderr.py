"""ffmpeg's stderr: the cause in words, a bounded tail, credentials masked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sidecar.media import CauseKind, StderrTail, cause_in_words
from sidecar.media.stderr import MAX_LINE

# Lines as ffmpeg 5.1 prints them (captured here, addresses shortened).
REFUSED = ("[tcp @ 0x55] Connection to tcp://127.0.0.1:9?timeout=2000000 failed: Connection refused",
           "rtsp://admin:***@127.0.0.1:9/x: Connection refused")
UNAUTHORIZED = ("[rtsp @ 0x55] method DESCRIBE failed: 401 Unauthorized",
                "rtsp://admin:***@127.0.0.1:42459/cam: Server returned 401 Unauthorized (authorization failed)")
NO_FILE = ("/nonexistent/file.mp4: No such file or directory",)
CODEC = ("[mp4 @ 0x55] Could not find tag for codec ffv1 in stream #0, codec not currently supported in container",
         "Could not write header for output file #0 (incorrect codec parameters ?): Invalid argument",
         "Error initializing output stream 0:0 -- ")


def test_causes_in_words() -> None:
    cases = [
        (REFUSED, "connection refused", CauseKind.UNREACHABLE),
        (UNAUTHORIZED, "401 unauthorized: check the user and password", CauseKind.CONFIG),
        (NO_FILE, "no such file", CauseKind.CONFIG),
        (CODEC, "codec not supported", CauseKind.CONFIG),
        (("Unknown encoder 'h264_vaapi'",), "codec not supported: this ffmpeg lacks the encoder", CauseKind.CONFIG),
        (("[rtsp @ 0x1] method DESCRIBE failed: 404 Not Found",), "404 not found: check the stream path in the URL",
         CauseKind.CONFIG),
        (("Error during demuxing: Connection timed out",), "connection timed out", CauseKind.NETWORK),
    ]
    for lines, text, kind in cases:
        cause = cause_in_words(lines, 1)
        assert cause is not None and (cause.text, cause.kind) == (text, kind), lines


def test_causes_from_the_exit_when_stderr_says_nothing() -> None:
    assert cause_in_words((), 0).text == "the source ended the stream"  # type: ignore[union-attr]
    assert cause_in_words((), -9).text == "ffmpeg was killed (SIGKILL)"  # type: ignore[union-attr]
    assert cause_in_words(("odd last words",), 3).text == "ffmpeg exited with code 3: odd last words"  # type: ignore[union-attr]
    assert cause_in_words((), None) is None


def test_tail_masks_splits_and_bounds() -> None:
    tail = StderrTail(max_lines=3)
    lines = tail.feed(b"rtsp://admin:hunter2@10.0.0.5/live: Connection ")
    assert lines == []  # no newline yet
    lines = tail.feed(b"refused\r\nsecond\nthird\nfourth\n")
    assert lines[0] == "rtsp://admin:***@10.0.0.5/live: Connection refused"
    assert tail.snapshot() == ("second", "third", "fourth")
    tail.feed(b"x" * 10_000)  # a line that never ends is cut, never kept whole
    assert all(len(line) <= MAX_LINE for line in tail.snapshot())
    assert tail.close() == [] or len(tail.snapshot()) <= 3


@given(st.lists(st.binary(max_size=600), max_size=30))
def test_tail_stays_bounded_and_masked_whatever_arrives(chunks: list[bytes]) -> None:
    tail = StderrTail(max_lines=5, max_pending=1024)
    secret_line = b"rtsp://u:TopSecret99@cam/x\n"
    for chunk in [secret_line, *chunks, secret_line]:
        for line in tail.feed(chunk):
            assert "TopSecret99" not in line
    tail.close()
    assert len(tail.snapshot()) <= 5
    assert all(len(line) <= MAX_LINE and "TopSecret99" not in line for line in tail.snapshot())
    assert len(tail._pending) <= 1024 + 600
