"""The talk path's plain parts (docs/two-way-audio.md): the SDP the talk ffmpeg reads on stdin,
an argv without the key, and the relay that passes only the selected payload type, and nothing
while the Speaker is muted."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import pytest

from sidecar.camera import TwoWayAudio
from sidecar.camera.live.talkback import Talkback, build_talk_argv, talk_sdp

KEY_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"


def test_the_sdp_holds_the_key_and_the_selected_clock_and_the_argv_does_not() -> None:
    sdp = talk_sdp(40000, 110, 16000, KEY_B64)
    assert "m=audio 40000 RTP/SAVP 110" in sdp
    assert "a=rtpmap:110 opus/16000/1" in sdp  # HomeKit's Opus clock: the selected rate
    assert f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}" in sdp
    argv = build_talk_argv("ffmpeg", ["-f", "wav", "/tmp/x.wav"])
    assert KEY_B64 not in " ".join(argv)
    assert argv[argv.index("-i") + 1] == "pipe:0" and argv[argv.index("-i") - 1] == "sdp"


def _rtp(payload_type: int) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, 1, 2, 3) + b"\x00" * 20


async def test_the_relay_passes_the_selected_payload_type_unless_muted() -> None:
    muted = False
    talk = Talkback(name="t", config=TwoWayAudio(target="/tmp/x.wav", format="wav"), source_url="demo",
                    srtp_key_b64=KEY_B64, payload_type=110, sample_rate_hz=16000, muted=lambda: muted)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ffmpeg_port, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as relay:
        ffmpeg_port.bind(("127.0.0.1", 0))
        ffmpeg_port.settimeout(0.5)
        talk._relay, talk._relay_to = relay, ffmpeg_port.getsockname()
        talk.datagram(_rtp(13))  # comfort noise: not ours to pass on
        talk.datagram(_rtp(110 | 0x80))  # the selected type (marker set)
        assert ffmpeg_port.recv(100) == _rtp(110 | 0x80)
        muted = True
        talk.datagram(_rtp(110))
        ffmpeg_port.settimeout(0.2)
        try:
            extra = ffmpeg_port.recv(100)
        except TimeoutError:
            extra = b""
        assert extra == b""
        talk._relay = None
    assert talk.packets_in == 3


def test_the_speakers_volume_is_a_gain_in_the_talk_ffmpeg() -> None:
    def talk(volume: int) -> Talkback:
        return Talkback(name="t", config=TwoWayAudio(target="/tmp/x.wav", format="wav"), source_url="demo",
                        srtp_key_b64=KEY_B64, payload_type=110, sample_rate_hz=16000, volume=lambda: volume)

    assert talk(100)._gain() == []  # full volume: the audio as it came
    assert talk(50)._gain() == ["-af", "volume=0.50"]
    assert talk(0)._gain() == ["-af", "volume=0.00"]


async def test_an_unreachable_backchannel_is_one_warning_in_words(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    talk = Talkback(name="Door", config=TwoWayAudio(), source_url=f"rtsp://127.0.0.1:{port}/cam",
                    srtp_key_b64=KEY_B64, payload_type=110, sample_rate_hz=16000)
    await asyncio.wait_for(talk.run(), 15)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"Door: talk: {talk.warning}; the live view goes on without it"]
    assert talk.warning is not None and talk.warning.startswith("cannot reach the camera's backchannel")
    assert talk.run_ is None  # no ffmpeg was started
