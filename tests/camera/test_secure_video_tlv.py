"""The secure-video TLV codecs (docs/secure-video.md §TLV layouts): golden bytes both ways,
hypothesis round trips, and fuzzed parsers that fail only with a HAP error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.camera.secure_video import tlv as sv
from sidecar.hap import HapError, HapStatus


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


U11, U22, U33, U44, U55 = ("11" * 16, "22" * 16, "33" * 16, "44" * 16, "55" * 16)

VIDEO_TIERS = sv.VideoTiers(sv.CODEC_H265, 99, (
    sv.VideoTier(1, sv.Quality.HIGH, 1800, 1920, 1080, 30),
    sv.VideoTier(3, sv.Quality.LOW, 190, 640, 360, 15)))
VIDEO_TIERS_HEX = ("01 01 02  02 01 63"
                   " 03 1a 01 04 01000000 02 01 02 03 04 08070000 04 02 8007 05 02 3804 06 01 1e"
                   " 00 00"
                   " 03 1a 01 04 03000000 02 01 04 03 04 be000000 04 02 8002 05 02 6801 06 01 0f")

AUDIO_TIERS = sv.AudioTiers(sv.CODEC_OPUS, 110, (sv.AudioTier(1, 24000),))
AUDIO_TIERS_HEX = "01 01 03 02 01 6e 03 18 01 04 01000000 02 04 c05d0000 03 01 04 04 01 02 05 01 14 06 01 01"

ZONES = sv.Zones((sv.Zone(2, (sv.Polygon(bytes.fromhex(U11), ((0, 0), (100, 0), (100, 50))),)),))
ZONES_HEX = f"01 01 01 02 25 01 01 02 03 20 01 10 {U11} 03 0c 0000 0000 6400 0000 6400 3200"

CONTROL = sv.StreamingControl(bytes.fromhex(U22), sv.ControlCommand.START, 1, 0x01020304, 1, 5)
CONTROL_HEX = f"01 10 {U22} 02 01 02 03 04 01000000 04 04 04030201 05 04 01000000 06 04 05000000"

CAPABILITIES = sv.CameraCapabilities((sv.Sensor(1920, 1080, bytes.fromhex(U33), 1, 1, (
    sv.SensorStream(bytes.fromhex(U44), sv.Quality.HIGHEST, 1920, 1080, 30, 1800, 2000),)),))
CAPABILITIES_HEX = (f"01 01 01 02 52 01 50 01 08 01 02 8007 02 02 3804 02 10 {U33} 03 01 01 04 01 01"
                    f" 05 2c 01 10 {U44} 02 01 01 03 02 8007 04 02 3804 05 01 1e 06 04 08070000 07 04 d0070000")

GOLDEN: list[tuple[Any, str, Callable[[bytes], Any]]] = [
    (VIDEO_TIERS, VIDEO_TIERS_HEX, sv.parse_video_tiers),
    (AUDIO_TIERS, AUDIO_TIERS_HEX, sv.parse_audio_tiers),
    (ZONES, ZONES_HEX, sv.parse_zones),
    (CONTROL, CONTROL_HEX, sv.parse_streaming_control),
    (sv.StreamingControlResponse(bytes.fromhex(U22), sv.ControlStatus.OK), f"01 10 {U22} 02 01 00",
     sv.parse_control_response),
    (CAPABILITIES, CAPABILITIES_HEX, sv.parse_capabilities),
    (sv.SolicitOfferResponse(bytes.fromhex(U55), sv.WebRTCStatus.ERROR), f"01 10 {U55} 04 01 02",
     sv.parse_solicit_offer_response),
]


@pytest.mark.parametrize(("value", "golden", "parse"), GOLDEN, ids=lambda v: type(v).__name__)
def test_golden_bytes_both_ways(value: Any, golden: str, parse: Callable[[bytes], Any]) -> None:
    assert value.encode() == h(golden)
    assert parse(h(golden)) == value


def test_the_tier_list_is_delimited_by_empty_type_0_items() -> None:
    assert b"\x00\x00\x03" in VIDEO_TIERS.encode()


def test_end_carries_only_session_and_command() -> None:
    end = sv.StreamingControl(bytes.fromhex(U22), sv.ControlCommand.END)
    assert end.encode() == h(f"01 10 {U22} 02 01 01")
    assert sv.parse_streaming_control(end.encode()) == end


def test_solicit_offer_and_contributing_sensors() -> None:
    assert sv.parse_solicit_offer(h("01 03 01 01 01")) is True
    assert sv.parse_solicit_offer(h("01 00")) is False
    assert sv.encode_contributing_sensors([bytes.fromhex(U33)]) == h(f"01 10 {U33}")
    assert sv.parse_contributing_sensors(h(f"01 10 {U33}")) == (bytes.fromhex(U33),)


def test_clearing_zones_is_a_version_alone() -> None:
    assert sv.Zones(()).encode() == h("01 01 01")
    assert sv.parse_zones(h("01 01 01")) == sv.Zones(())


@pytest.mark.parametrize(("parse", "raw"), [
    (sv.parse_streaming_control, "01 03 000000 02 01 02"),  # short session
    (sv.parse_streaming_control, f"01 10 {U22} 02 01 07"),  # unknown command
    (sv.parse_streaming_control, f"01 10 {U22} 02 01 02"),  # START without a tier
    (sv.parse_zones, "01 01 01 02 05 01 01 03 03 00"),  # unknown method 3
    (sv.parse_zones, f"01 01 01 02 18 01 01 01 03 13 01 10 {U11} 03 01 00"),  # half a point
    (sv.parse_zones, "01 05"),  # truncated
    (sv.parse_video_tiers, "01 01 02"),  # no payload type
])
def test_bad_writes_are_hap_errors(parse: Callable[[bytes], Any], raw: str) -> None:
    with pytest.raises(HapError) as info:
        parse(h(raw))
    assert info.value.status is HapStatus.INVALID_VALUE


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u8 = st.integers(0, 0xFF)
uuid = st.binary(min_size=16, max_size=16)
video_tier = st.builds(sv.VideoTier, u32, u8, u32, u16, u16, u8)
audio_tier = st.builds(sv.AudioTier, u32, u32, u8, u8, u8, u8)
polygon = st.builds(sv.Polygon, uuid, st.lists(st.tuples(u16, u16), max_size=80).map(tuple))
zone = st.builds(sv.Zone, st.sampled_from([1, 2]), st.lists(polygon, max_size=3).map(tuple))
stream = st.builds(sv.SensorStream, uuid, u8, u16, u16, u8, u32, u32)
sensor = st.builds(sv.Sensor, u16, u16, uuid, u8, u8, st.lists(stream, max_size=4).map(tuple))
control = st.builds(sv.StreamingControl, uuid, st.just(sv.ControlCommand.START), u32,
                    st.none() | u32, st.none() | u32, st.none() | u32)


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.builds(sv.VideoTiers, u8, u8, st.lists(video_tier, max_size=5).map(tuple)).map(
        lambda v: (v, sv.parse_video_tiers)),
    st.builds(sv.AudioTiers, u8, u8, st.lists(audio_tier, max_size=3).map(tuple)).map(
        lambda v: (v, sv.parse_audio_tiers)),
    st.builds(sv.Zones, st.lists(zone, max_size=4).map(tuple), u8).map(lambda v: (v, sv.parse_zones)),
    st.builds(sv.CameraCapabilities, st.lists(sensor, min_size=1, max_size=2).map(tuple), u8).map(
        lambda v: (v, sv.parse_capabilities)),
    control.map(lambda v: (v, sv.parse_streaming_control)),
))
def test_round_trips(case: tuple[Any, Callable[[bytes], Any]]) -> None:
    value, parse = case
    assert parse(value.encode()) == value


PARSERS = [sv.parse_video_tiers, sv.parse_audio_tiers, sv.parse_zones, sv.parse_capabilities,
           sv.parse_streaming_control, sv.parse_control_response, sv.parse_solicit_offer,
           sv.parse_solicit_offer_response, sv.parse_contributing_sensors]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARSERS), st.binary(max_size=300) | st.sampled_from(
    [h(g) for _, g, _ in GOLDEN]).flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n])))
def test_parsers_fail_only_with_hap_errors(parse: Callable[[bytes], Any], raw: bytes) -> None:
    try:
        parse(raw)
    except HapError as exc:
        assert exc.status is HapStatus.INVALID_VALUE
