"""User profiles come from the directory the config names; a bad one is a config error (exit 2)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sidecar.config import ConfigError, build_config, check_profiles

USER_PROFILE = """
name = "mine"
description = "a user's own x264 settings"
mode = "transcode"
honours = ["resolution", "fps", "bitrate"]
[video]
codec = "libx264"
[video.options]
preset = "ultrafast"
[audio]
codec = "aac"
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sidecar", "--no-mdns", "--bind", "127.0.0.1", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def test_a_profile_from_the_configured_directory_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(USER_PROFILE)
    config = build_config({"ffmpeg_profiles_dir": str(tmp_path), "cameras": [{"name": "a", "source": "demo",
                                                                              "profile": "mine"}]})
    check_profiles(config)
    without = build_config({"cameras": [{"name": "a", "source": "demo", "profile": "mine"}]})
    try:
        check_profiles(without)
    except ConfigError as exc:
        assert "cameras.0.profile: unknown ffmpeg profile 'mine'" in str(exc)
    else:
        raise AssertionError("a profile that exists nowhere was accepted")


def test_unknown_profile_is_exit_2_with_the_field_named(tmp_path: Path) -> None:
    r = run("--camera", "Yard=rtsp://cam/stream", "--profile", "x265-please", cwd=tmp_path)
    assert r.returncode == 2
    assert "cameras.0.profile: unknown ffmpeg profile 'x265-please' (have copy, " in r.stderr and "libx264" in r.stderr
    assert "Traceback" not in r.stderr


def test_broken_user_profile_and_missing_directory_are_exit_2(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "bad.toml").write_text('name = "bad"\nmode = "sometimes"\n')
    config = tmp_path / "config.yaml"
    config.write_text(f"ffmpeg_profiles_dir: {tmp_path / 'profiles'}\ncameras: [{{name: a, source: demo}}]\n")
    r = run("--config", str(config), cwd=tmp_path)
    assert r.returncode == 2
    assert "bad.toml: mode must be 'copy' or 'transcode'" in r.stderr
    assert "Traceback" not in r.stderr
    config.write_text(f"ffmpeg_profiles_dir: {tmp_path / 'nowhere'}\ncameras: [{{name: a, source: demo}}]\n")
    r = run("--config", str(config), cwd=tmp_path)
    assert r.returncode == 2
    assert f"ffmpeg_profiles_dir: {tmp_path / 'nowhere'} is not a directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_tier_profile_must_exist_and_encode_h264(tmp_path: Path) -> None:
    """A secure-video tier's ``profile`` is honoured, so it is checked like the camera's: it must
    exist, and encode H.264 (a tier is always encoded, and its RTP payload is H.264)."""
    (tmp_path / "mine.toml").write_text(USER_PROFILE)

    def check(profile: str) -> None:
        check_profiles(build_config({"ffmpeg_profiles_dir": str(tmp_path), "cameras": [{
            "name": "a", "source": "demo", "homekit_model": "secure_video",
            "tiers": {"low": {"width": 320, "height": 180, "profile": profile}}}]}))

    check("mine")
    check("libx264")
    for profile, words in (("nope", r"unknown ffmpeg profile 'nope' \(for a tier: .*libx264.*mine"),
                           ("copy", "'copy' does not encode H.264"), ("libx265", "'libx265' does not encode H.264")):
        try:
            check(profile)
        except ConfigError as exc:
            assert re.search(rf"cameras\.0\.tiers\.low\.profile: {words}", str(exc)), exc
        else:
            raise AssertionError(f"tier profile {profile} was accepted")
