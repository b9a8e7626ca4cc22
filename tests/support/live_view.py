"""The live-view rig: a real camera (demo source) paired with aiohomekit, and the controller's
side of a live session (its UDP ports, its writes, our decoded read-back).

Shared by the live-view tests in tests/camera and tests/e2e and by benchmarks/streaming_bench.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from aiohomekit.model.characteristics.const import (
    AudioCodecValues,
    BitRateValues,
    CVOEnabledValues,
    PacketizationModeValues,
    ProfileIDValues,
    ProfileSupportLevelValues,
    SampleRateValues,
    SessionControlCommandValues,
    VideoCodecTypeValues,
)
from aiohomekit.model.characteristics.structs import (
    AudioCodecParameters,
    AudioRTPParameters,
    SelectedAudioParameters,
    SelectedRTPStreamConfiguration,
    SelectedVideoParameters,
    SessionControl,
    StreamingStatus,
    VideoAttrs,
    VideoCodecParameters,
    VideoRTPParameters,
)

from sidecar import tlv8
from sidecar.camera import Camera, CameraSpec
from sidecar.camera.live.talkback import free_port_pair
from sidecar.tlv8 import uint_le
from tests.hub.characteristics import SELECTED_RTP_STREAM_CONFIGURATION, SETUP_ENDPOINTS, STREAMING_STATUS
from tests.hub.database import iids_by_type
from tests.support.hap_client import PIN, aio_pair
from tests.support.srtp import SrtpReceiver, SrtpSession

KEY, SALT = bytes(range(100, 116)), bytes(range(200, 214))  # the controller's SRTP key and salt
SID = bytes(range(16))


def setup_tlv(session_id: bytes = SID, *, address: str = "127.0.0.1", ip_version: int = 0, video_port: int = 50000,
              audio_port: int = 50002, suite: int = 0, key: bytes = KEY, salt: bytes = SALT) -> bytes:
    """A SetupEndpoints write as a controller sends it (docs/protocol.md §Live-view TLVs)."""
    addr = tlv8.encode([(1, ip_version), (2, address), (3, uint_le(video_port, 2)), (4, uint_le(audio_port, 2))])
    srtp = tlv8.encode([(1, suite), (2, key), (3, salt)])
    return tlv8.encode([(1, session_id), (3, addr), (4, srtp), (5, srtp)])


def decode_setup_response(raw: bytes) -> dict[str, object]:
    """The read-back, decoded straight from docs/protocol.md §Live-view TLVs."""
    d = tlv8.decode_dict(raw)
    out: dict[str, object] = {"session_id": d.get(1), "status": d[2][0]}
    if 3 in d:
        addr = tlv8.decode_dict(d[3])
        v, a = tlv8.decode_dict(d[4]), tlv8.decode_dict(d[5])
        out.update(ip_version=addr[1][0], address=addr[2].decode(), video_port=int.from_bytes(addr[3], "little"),
                   audio_port=int.from_bytes(addr[4], "little"), video_suite=v[1][0], video_key=v[2] + v[3],
                   audio_suite=a[1][0], audio_key=a[2] + a[3], video_ssrc=int.from_bytes(d[6], "little"),
                   audio_ssrc=int.from_bytes(d[7], "little"))
    return out


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def selected(session: str, command: SessionControlCommandValues, *, width: int = 320, height: int = 240,
             fps: int = 15, bitrate: int = 300, audio: bool = True,
             sample_rate: SampleRateValues = SampleRateValues.TWENTY_FOUR_KHZ) -> bytes:
    """A SelectedRTPStreamConfiguration as aiohomekit encodes it (no RTCP interval: aiohomekit
    cannot encode floats, and we must cope with its absence anyway)."""
    video = SelectedVideoParameters(
        codec_type=VideoCodecTypeValues.H264,
        codec_parameters=VideoCodecParameters(
            profile_id=ProfileIDValues.MAIN_PROFILE, level=ProfileSupportLevelValues.THREE_ONE,
            packetization_mode=PacketizationModeValues.NON_INTERLEAVED_MODE,
            cvo_enabled=CVOEnabledValues.NOT_SUPPORTED),
        video_attrs=VideoAttrs(width=width, height=height, fps=fps),  # type: ignore[arg-type]
        rtp_params=VideoRTPParameters(payload_type=99, ssrc=0x1234, max_bitrate=bitrate,  # type: ignore[arg-type]
                                      max_mtu=1378))  # type: ignore[arg-type]
    audio_params = SelectedAudioParameters(
        codec_type=AudioCodecValues.OPUS,
        codec_parameters=AudioCodecParameters(audio_channels=1, bit_rate=BitRateValues.VARIABLE,  # type: ignore[arg-type]
                                              sample_rate=sample_rate, rtp_time=20),  # type: ignore[arg-type]
        rtp_params=AudioRTPParameters(payload_type=110, ssrc=0x5678, max_bitrate=24,  # type: ignore[arg-type]
                                      comfort_noise_payload_type=13),  # type: ignore[arg-type]
        comfort_noise=0)  # type: ignore[arg-type]
    config = SelectedRTPStreamConfiguration(
        control=SessionControl(session=session, command=command),
        video_params=video if command != SessionControlCommandValues.END_SESSION else None,  # type: ignore[arg-type]
        audio_params=audio_params if audio and command == SessionControlCommandValues.START_SESSION else None)  # type: ignore[arg-type]
    encoded: bytes = config.encode()
    return encoded


@dataclass
class Viewer:
    """The controller's side of one session: its ports, and our answer."""

    session: str
    video_port: int
    audio_port: int
    answer: dict[str, Any]

    def sdp(self) -> str:
        v_key = base64.b64encode(self.answer["video_key"]).decode()
        a_key = base64.b64encode(self.answer["audio_key"]).decode()
        return "\n".join([
            "v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=live", "c=IN IP4 127.0.0.1", "t=0 0",
            f"m=video {self.video_port} RTP/SAVP 99", "a=rtpmap:99 H264/90000", "a=fmtp:99 packetization-mode=1",
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{v_key}",
            f"m=audio {self.audio_port} RTP/SAVP 110", "a=rtpmap:110 opus/48000/2",
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{a_key}", ""])



@dataclass
class LiveViewRig:
    camera: Camera
    pairing: Any
    ids: dict[tuple[str, str], int]
    tmp_path: Path

    async def put(self, key: tuple[str, str], value: Any) -> int:
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        result = await self.pairing.put_characteristics([(1, self.ids[key], value)])
        return int(result.get((1, self.ids[key]), {}).get("status", 0))

    async def get(self, key: tuple[str, str], pairing: Any = None) -> Any:
        result = await (pairing or self.pairing).get_characteristics([(1, self.ids[key])])
        return result[(1, self.ids[key])]["value"]

    async def setup(self, session: str, pairing: Any = None) -> tuple[int, Viewer]:
        video_port, audio_port = free_port_pair(), free_port_pair()
        raw = setup_tlv(session.encode(), video_port=video_port, audio_port=audio_port, key=KEY, salt=SALT)
        pairing = pairing or self.pairing
        result = await pairing.put_characteristics([(1, self.ids[SETUP_ENDPOINTS], base64.b64encode(raw).decode())])
        status = int(result.get((1, self.ids[SETUP_ENDPOINTS]), {}).get("status", 0))
        answer = decode_setup_response(base64.b64decode(await self.get(SETUP_ENDPOINTS, pairing)))
        return status, Viewer(session, video_port, audio_port, answer)

    async def select(self, session: str, command: SessionControlCommandValues, pairing: Any = None,
                     **kwargs: Any) -> int:
        raw = base64.b64encode(selected(session, command, **kwargs)).decode()
        result = await (pairing or self.pairing).put_characteristics(
            [(1, self.ids[SELECTED_RTP_STREAM_CONFIGURATION], raw)])
        return int(result.get((1, self.ids[SELECTED_RTP_STREAM_CONFIGURATION]), {}).get("status", 0))

    async def streaming_status(self) -> int:
        return int(StreamingStatus.decode(base64.b64decode(await self.get(STREAMING_STATUS))).status)

    def live_pids(self) -> list[int]:
        return self.camera.live.pids()


async def make_rig(tmp_path: Path, **overrides: Any) -> AsyncIterator[LiveViewRig]:
    fields: dict[str, Any] = {"source": "demo", "profile": "libx264", **overrides}
    config = CameraSpec(name="Live Cam", setup_code=PIN, **fields)
    camera = Camera(config, tmp_path, host="127.0.0.1", port=0, advertiser=None)
    camera.live.keyframe_interval_s = 1.0
    await camera.start()
    pairing = await aio_pair(camera.server.port, PIN)
    try:
        yield LiveViewRig(camera, pairing, iids_by_type(await pairing.list_accessories_and_characteristics()), tmp_path)
    finally:
        await pairing.shutdown()
        await camera.stop()


STATUS = STREAMING_STATUS  # StreamingStatus


class StatusEvents:
    """StreamingStatus events as a subscribed controller sees them."""

    def __init__(self, rig: LiveViewRig) -> None:
        self.iid = rig.ids[STATUS]
        self.values: list[int] = []
        self.changed = asyncio.Event()

    def __call__(self, event: dict[Any, Any]) -> None:
        if event and (1, self.iid) in event:
            self.values.append(int(StreamingStatus.decode(base64.b64decode(event[(1, self.iid)]["value"])).status))
            self.changed.set()

    async def next(self) -> int:
        await asyncio.wait_for(self.changed.wait(), 5)
        self.changed.clear()
        return self.values[-1]


@contextlib.asynccontextmanager
async def srtp_ports(viewer: Viewer) -> AsyncIterator[tuple[SrtpReceiver, SrtpReceiver]]:
    """The controller's video and audio UDP ports, decrypting with the keys of our read-back."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    receivers: list[SrtpReceiver] = []
    try:
        for port, key in ((viewer.video_port, viewer.answer["video_key"]),
                          (viewer.audio_port, viewer.answer["audio_key"])):
            transport, receiver = await loop.create_datagram_endpoint(
                lambda key=key: SrtpReceiver(SrtpSession(key)), local_addr=("127.0.0.1", port))
            transports.append(transport)
            receivers.append(receiver)
        yield receivers[0], receivers[1]
    finally:
        for transport in transports:
            transport.close()
