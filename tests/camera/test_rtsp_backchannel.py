"""The RTSP backchannel conversation, sans-IO (docs/two-way-audio.md): fed a camera's answers
byte by byte, it asks for the right things, finds the speaker track, authenticates once, and
says in words why a camera refuses. The parser only ever raises ``RtspError`` (fuzzed)."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.camera.live.rtsp_backchannel import (
    BACKCHANNEL_REQUIRE,
    BackchannelClient,
    ClientState,
    ResponseParser,
    RtspError,
    find_backchannel,
)

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\na=recvonly\r\n"
       b"m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:stream=1\r\na=sendonly\r\n")


def answer(cseq: int, status: str = "200 OK", headers: str = "", body: bytes = b"") -> bytes:
    head = f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n{headers}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def request_lines(data: bytes) -> list[str]:
    return data.decode().split("\r\n")


def test_describe_setup_play_then_interleaved_frames_and_keepalives() -> None:
    client = BackchannelClient("rtsp://127.0.0.1:8554/cam")
    describe = request_lines(client.start())
    assert describe[0] == "DESCRIBE rtsp://127.0.0.1:8554/cam RTSP/1.0"
    assert f"Require: {BACKCHANNEL_REQUIRE}" in describe
    reply = answer(1, headers="Content-Base: rtsp://127.0.0.1:8554/cam/\r\nContent-Type: application/sdp\r\n",
                   body=SDP)
    setup = b""
    for i in range(len(reply)):  # byte by byte: nothing is lost across chunks
        setup += client.receive(reply[i:i + 1], now=0.0)
    lines = request_lines(setup)
    assert lines[0] == "SETUP rtsp://127.0.0.1:8554/cam/stream=1 RTSP/1.0"
    assert "Transport: RTP/AVP/TCP;unicast;interleaved=0-1" in lines
    assert client.track is not None and (client.track.encoding, client.track.clock_rate) == ("PCMU", 8000)
    assert client.track.ffmpeg_codec == "pcm_mulaw"
    play = request_lines(client.receive(answer(2, headers="Session: abc123;timeout=20\r\n"
                                                     "Transport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n"), now=0.0))
    assert play[0].startswith("PLAY ") and "Session: abc123" in play
    assert client.receive(answer(3, headers="Session: abc123\r\n"), now=1.0) == b""
    assert client.state is ClientState.PLAYING
    assert client.frame(b"\x80" * 20) == b"$\x04\x00\x14" + b"\x80" * 20
    # Interleaved RTCP from the camera is skipped; keep-alives every half timeout.
    assert client.receive(b"$\x05\x00\x02ab", now=2.0) == b""
    assert client.poll(5.0) == (b"", 11.0)
    keepalive, next_at = client.poll(11.0)
    assert keepalive.startswith(b"GET_PARAMETER ") and next_at == 21.0
    assert client.teardown().startswith(b"TEARDOWN ")


@pytest.mark.parametrize(("reply", "words"), [
    (answer(1, "551 Option not supported"), "refused DESCRIBE with the backchannel: 551 Option not supported"),
    (answer(1, "404 Not Found"), "404 Not Found"),
    (answer(1, body=SDP.replace(b"a=sendonly", b"a=recvonly")), "no backchannel"),
    (answer(1, "401 Unauthorized", 'WWW-Authenticate: Basic realm="x"\r\n'), "user and password"),
])
def test_a_refusal_is_said_in_words(reply: bytes, words: str) -> None:
    client = BackchannelClient("rtsp://127.0.0.1/cam")
    client.start()
    with pytest.raises(RtspError, match=words):
        client.receive(reply, now=0.0)
    assert client.state is ClientState.FAILED and words in (client.error or "")


def test_digest_is_answered_once_and_the_password_stays_out_of_the_request_line() -> None:
    client = BackchannelClient("rtsp://admin:s3cret@127.0.0.1/cam")
    first = client.start().decode()
    assert "s3cret" not in first and "admin" not in first
    retry = client.receive(answer(1, "401 Unauthorized", 'WWW-Authenticate: Digest realm="cam", nonce="n1"\r\n'),
                           now=0.0).decode()
    ha1 = hashlib.md5(b"admin:cam:s3cret").hexdigest()  # RTSP Digest is MD5
    ha2 = hashlib.md5(b"DESCRIBE:rtsp://127.0.0.1/cam").hexdigest()
    expected = hashlib.md5(f"{ha1}:n1:{ha2}".encode()).hexdigest()
    assert f'response="{expected}"' in retry and "s3cret" not in retry
    with pytest.raises(RtspError, match="user and password"):  # a second 401: give up
        client.receive(answer(2, "401 Unauthorized", 'WWW-Authenticate: Digest realm="cam", nonce="n2"\r\n'), now=0)


def test_static_payload_types_and_absolute_controls() -> None:
    sdp = "m=audio 0 RTP/AVP 8\na=control:rtsp://10.0.0.2/back\na=sendonly\n"
    track = find_backchannel(sdp, "rtsp://10.0.0.2/cam")
    assert (track.control, track.encoding, track.clock_rate, track.ffmpeg_codec) == (
        "rtsp://10.0.0.2/back", "PCMA", 8000, "pcm_alaw")


def test_only_rtsp_urls() -> None:
    with pytest.raises(RtspError, match="rtsp://"):
        BackchannelClient("http://127.0.0.1/cam")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_fuzz_the_parser_only_raises_rtsp_error(chunks: list[bytes]) -> None:
    parser = ResponseParser()
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except RtspError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=120), st.sampled_from([
    answer(1, body=SDP), answer(2, headers="Session: s;timeout=x\r\n"),
    b"RTSP/1.0 200 OK\r\nContent-Length: -4\r\n\r\n",
    b"$\x00\xff\xff", answer(3), answer(1, "401 Unauthorized", "WWW-Authenticate: Digest nonce\r\n")])),
    max_size=6), st.text(max_size=300))
def test_fuzz_the_conversation_and_the_sdp(chunks: list[bytes], sdp: str) -> None:
    client = BackchannelClient("rtsp://u:p@127.0.0.1/cam")
    client.start()
    try:
        for chunk in chunks:
            client.receive(chunk, now=0.0)
            client.poll(100.0)
    except RtspError:
        assert client.state is ClientState.FAILED and client.error
    with contextlib.suppress(RtspError):
        find_backchannel(sdp, "rtsp://127.0.0.1/cam")
