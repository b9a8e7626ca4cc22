"""The pages' HTML from snapshots: what is shown when, and that text from outside is escaped."""

from __future__ import annotations

import dataclasses

from sidecar.camera.status import CameraStatus, ControllerInfo, MediaStatus
from sidecar.triggers.detector import DetectorStatus
from sidecar.web.pages import camera_page, overview_page

MEDIA = MediaStatus(wanted=True, state="backoff", last_error="connection refused <script>x</script>", restarts=3,
                    width=None, height=None, fps=None, bitrate_kbps=None, keyframe_interval_s=None,
                    warning="keyframes every 8.0 s: set the camera's I-frame interval to 4 s", prebuffer_s=0.0,
                    fragments=0, bytes_in=0, last_fragment_age_s=None)
UNPAIRED = CameraStatus(
    name="Front Door", slug="front-door", source="rtsp://admin:***@10.0.0.2/s", profile="copy", doorbell=False,
    hap_port=51826, hap_listening=True, paired=False, controllers=(), setup_code="031-45-154",
    setup_uri="X-HM://0023ISYWYABCD", mode="Stream & Allow Recording", recording_active=True, selection=None,
    hap_sessions=0, pair_verify_failures=0, failed_setup_attempts=2, live_sessions=0, motion=False, recording=False,
    recordings=0, prebuffer_ms=8000, media=MEDIA)
PAIRED = dataclasses.replace(UNPAIRED, paired=True, setup_code=None, setup_uri=None,
                             controllers=(ControllerInfo("8C2F1E0A…", True),))
TOKENS = {"motion": "a" * 32, "restart": "b" * 32, "reset": "c" * 32}


def test_unpaired_card_shows_qr_code_and_setup_code_and_ffmpeg_trouble_in_words() -> None:
    html = overview_page([(UNPAIRED, None, None, 4.2, False, None)])
    assert "<svg" in html and "031-45-154" in html
    assert "restarting in 4 s" in html and "connection refused &lt;script&gt;" in html and "<script>x" not in html
    assert "set the camera&#x27;s I-frame interval to 4 s" in html
    assert "rtsp://admin:***@10.0.0.2/s" in html


def test_paired_card_hides_the_setup_code() -> None:
    html = overview_page([(PAIRED, None, None, None, True, None)])
    assert "<svg" not in html and "031-45-154" not in html
    assert "8C2F1E0A… (admin)" in html and "failed (retrying)</span>" in html


def test_camera_page_forms_carry_tokens_and_a_password_field_only_when_set() -> None:
    html = camera_page(PAIRED, [], [], tokens=TOKENS, password=True, notice=None, now=0.0)
    for action, token in TOKENS.items():
        assert f'action="/camera/front-door/{action}"><input type="hidden" name="csrf" value="{token}">' in html
    assert html.count('type="password"') == 3
    html = camera_page(PAIRED, [], [], tokens=TOKENS, password=False, notice=None, now=0.0)
    assert 'type="password"' not in html and "No events yet." in html


def test_the_detector_figures_are_on_the_card_for_tuning() -> None:
    figures = DetectorStatus(active=True, calibrating=False, frames=1234, dropped=56, motion_frames=40, triggers=3,
                             recalibrations=1, last_area=0.021, last_regions=2, last_trigger_at=1_800_000_000.0,
                             last_trigger_area=0.034, last_trigger_regions=1, cpu_s=12.5)
    for html in (overview_page([(PAIRED, None, None, None, False, figures)]),
                 camera_page(PAIRED, [], [], tokens=TOKENS, password=False, notice=None, now=0.0, detector=figures)):
        assert "1234 frames analysed, 56 dropped, 3 trigger(s)" in html
        assert "2.1 % changed in 2 region(s)" in html and "3.4 % of the picture in 1 region(s)" in html
    assert "detector" not in overview_page([(PAIRED, None, None, None, False, None)])


def test_a_secure_video_card_says_its_model_pairing_and_zones_and_a_classic_one_does_not() -> None:
    classic = overview_page([(UNPAIRED, None, None, None, False, None)])
    assert "HomeKit model" not in classic and "activity zones" not in classic
    secure = dataclasses.replace(UNPAIRED, homekit_model="secure_video", motion_enabled=False,
                                 zones=("ignore: (960,0) (1920,0) (1920,1080)", "watch: <b>"))
    html = overview_page([(secure, None, None, None, False, None)])
    assert "switching models means pairing again" in html and "paired apart from the classic one" in html
    assert "ignore: (960,0) (1920,0) (1920,1080)" in html and "watch: &lt;b&gt;" in html
    assert "off in the Home app (MotionEnabled)" in html
    empty = overview_page([(dataclasses.replace(secure, zones=()), None, None, None, False, None)])
    assert "none (the whole picture)" in empty
