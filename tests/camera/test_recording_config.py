"""Recording TLVs against docs/protocol.md §Test vectors, and strict selection parsing."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar import tlv8
from sidecar.camera.recording.configuration import (
    TRIGGER_DOORBELL,
    TRIGGER_MOTION,
    AudioRecordingCodec,
    H264Level,
    H264Profile,
    RecordingSelection,
    SampleRate,
    SupportedRecording,
    VideoAttributes,
    encode_selection,
    parse_selection,
    supported_for_source,
)
from sidecar.hap import HapError

# A real hub's selection (docs/protocol.md §Test vectors): 1200x1600@24 main 4.0 2000 kbit/s, AAC-LC 32 kHz.
HUB_SELECTION = base64.b64decode(
    "AR0BBKAPAAACCAEAAAAAAAAAAwsBAQACBgEEoA8AAAIkAQEAAhIBAQECAQIDBNAHAAAEBKAPAAADCwECsAQCAkAGAwEYAxQBAQACDwEBAQIBAAMBAwQEQAAAAA==")


def test_supported_camera_tlv_matches_hap_nodejs_vector() -> None:
    sup = SupportedRecording(prebuffer_ms=8000, triggers=TRIGGER_MOTION | TRIGGER_DOORBELL)
    assert base64.b64encode(sup.camera_tlv()).decode() == "AQRAHwAAAggDAAAAAAAAAAMLAQEAAgYBBKAPAAA="


def test_supported_audio_tlv_matches_hap_nodejs_vector() -> None:
    assert base64.b64encode(SupportedRecording().audio_tlv()).decode() == "AQ4BAQACCQEBAQIBAAMBAw=="


def test_supported_video_tlv_layout() -> None:
    sup = SupportedRecording(profiles=(H264Profile.MAIN, H264Profile.HIGH), levels=(H264Level.L3_1, H264Level.L4_0),
                             resolutions=(VideoAttributes(1920, 1080, 30), VideoAttributes(1280, 720, 30)))
    codec = dict(tlv8.decode(sup.video_tlv()))[1]
    items = tlv8.decode(codec)
    assert items[0] == (1, b"\x00")
    params = tlv8.decode(items[1][1])
    assert params == [(1, b"\x01"), (0, b""), (1, b"\x02"), (2, b"\x00"), (0, b""), (2, b"\x02")]
    attrs = [tlv8.decode_dict(v) for t, v in items[2:] if t == 3]
    assert [(int.from_bytes(a[1], "little"), int.from_bytes(a[2], "little"), a[3][0]) for a in attrs] == [
        (1920, 1080, 30), (1280, 720, 30)]
    assert (0, b"") in items  # delimiter between the two attribute items


def test_real_hub_selection_parses() -> None:
    sup = SupportedRecording(prebuffer_ms=8000, resolutions=(VideoAttributes(1200, 1600, 24),))
    sel = parse_selection(HUB_SELECTION, sup)
    assert (sel.prebuffer_ms, sel.triggers, sel.fragment_ms) == (4000, TRIGGER_MOTION, 4000)
    assert (sel.profile, sel.level, sel.bitrate_kbps, sel.iframe_ms) == (H264Profile.MAIN, H264Level.L4_0, 2000, 4000)
    assert (sel.width, sel.height, sel.fps) == (1200, 1600, 24)
    assert (sel.audio_codec, sel.audio_channels, sel.audio_bitrate_mode, sel.sample_rate, sel.audio_bitrate_kbps) == (
        AudioRecordingCodec.AAC_LC, 1, 0, SampleRate.KHZ_32, 64)
    assert encode_selection(sel) and parse_selection(encode_selection(sel), sup) == sel


GOOD = RecordingSelection(4000, TRIGGER_MOTION, 4000, H264Profile.MAIN, H264Level.L4_0, 2000, 4000, 1280, 720, 30,
                          AudioRecordingCodec.AAC_LC, 1, 0, SampleRate.KHZ_32, 64)
SUP = supported_for_source(1920, 1080, 30, transcode=True)


@pytest.mark.parametrize(
    "change",
    [{"prebuffer_ms": 3000}, {"prebuffer_ms": 9000}, {"triggers": TRIGGER_DOORBELL}, {"width": 1000},
     {"fps": 60}, {"sample_rate": SampleRate.KHZ_16}, {"audio_channels": 2}, {"bitrate_kbps": 0},
     {"audio_codec": AudioRecordingCodec.AAC_ELD}],
)
def test_values_not_advertised_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(HapError) as info:
        parse_selection(encode_selection(dataclasses.replace(GOOD, **change)), SUP)  # type: ignore[arg-type]
    assert info.value.status == -70410


def test_missing_fields_bad_enums_and_short_integers() -> None:
    raw = encode_selection(GOOD)
    top = tlv8.decode_dict(raw)
    for drop in (1, 2, 3):
        with pytest.raises(HapError):
            parse_selection(tlv8.encode([(k, v) for k, v in top.items() if k != drop]), SUP)
    bad_profile = raw.replace(bytes([1, 1, 1, 2, 1, 2]), bytes([1, 1, 7, 2, 1, 2]))
    with pytest.raises(HapError):
        parse_selection(bad_profile, SUP)
    # A 2-byte prebuffer (0x0fa0 = 4000) is accepted, little-endian.
    rec = tlv8.decode_dict(top[1])
    rec[1] = b"\xa0\x0f"
    short = tlv8.encode([(1, tlv8.encode(list(rec.items()))), (2, top[2]), (3, top[3])])
    assert parse_selection(short, SUP).prebuffer_ms == 4000


def test_supported_for_source() -> None:
    copy = supported_for_source(640, 360, 15, transcode=False)
    assert copy.resolutions == (VideoAttributes(640, 360, 15),)
    tx = supported_for_source(640, 360, 15, transcode=True)
    sizes = {(r.width, r.height) for r in tx.resolutions}
    assert {(1920, 1080), (1280, 720), (640, 360), (320, 240)} <= sizes
    assert {r.fps for r in tx.resolutions} == {24, 15}
    assert supported_for_source(1920, 1080, 30, transcode=True, prebuffer_ms=1000).prebuffer_ms == 4000
    assert copy.config_hash() != tx.config_hash()


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_selection_only_hap_errors(data: bytes) -> None:
    try:
        parse_selection(data, SUP)
    except HapError as exc:
        assert exc.status == -70410


def test_copy_mode_advertises_the_cameras_own_profile_and_level_bucket() -> None:
    main_30 = supported_for_source(640, 360, 15, transcode=False, h264_profile="main", h264_level="3.0")
    assert (main_30.profiles, main_30.levels) == ((H264Profile.MAIN,), (H264Level.L3_1,))
    high_41 = supported_for_source(1920, 1080, 25, transcode=False, h264_profile="high", h264_level="4.1")
    assert (high_41.profiles, high_41.levels) == ((H264Profile.HIGH,), (H264Level.L4_0,))
    odd = supported_for_source(640, 360, 15, transcode=False, h264_profile="profile_idc=88", h264_level="?")
    assert len(odd.profiles) == 3 and len(odd.levels) == 3  # unknown: offer everything
    assert len(supported_for_source(640, 360, 15, transcode=True, h264_profile="main").profiles) == 3


def test_advertising_hevc_adds_a_second_codec_entry_and_nothing_else() -> None:
    base = SupportedRecording(profiles=(H264Profile.MAIN,), levels=(H264Level.L4_0,),
                              resolutions=(VideoAttributes(1920, 1080, 30),))
    both = dataclasses.replace(base, hevc=True)
    # Golden bytes: the H.264 entry as always, a delimiter, then the same entry with codec type 1.
    entry_params = "0206" "010101" "020102"  # params: profiles [main (1)], levels [4.0 (2)]
    attrs = "030b010280070202380403011e"  # 1920x1080@30
    h264 = "01" "18" "010100" + entry_params + attrs  # one codec entry, 24 bytes, codec type 0
    h265 = "01" "18" "010101" + entry_params + attrs  # the same with codec type 1
    assert base.video_tlv().hex() == h264
    assert both.video_tlv().hex() == h264 + "0000" + h265
    assert base.video_codecs == (0,) and both.video_codecs == (0, 1)
    assert base.config_hash() != both.config_hash()  # a stored selection is dropped when it changes
    assert SupportedRecording().video_tlv() == dataclasses.replace(SupportedRecording(), hevc=False).video_tlv()


def test_codec_1_is_accepted_only_where_it_is_advertised() -> None:
    hevc_sel = dataclasses.replace(GOOD, video_codec=1)
    with pytest.raises(HapError, match="video codec 1 not advertised") as info:
        parse_selection(encode_selection(hevc_sel), SUP)
    assert info.value.status == -70410
    both = dataclasses.replace(SUP, hevc=True)
    assert parse_selection(encode_selection(hevc_sel), both) == hevc_sel
    assert parse_selection(encode_selection(GOOD), both) == GOOD  # H.264 stays selectable
    with pytest.raises(HapError):
        parse_selection(encode_selection(dataclasses.replace(GOOD, video_codec=2)), both)
    assert supported_for_source(1920, 1080, 30, transcode=False, hevc=True).hevc
