"""Profiles (TOML) and the ffmpeg argv built from them, for every profile including the hardware
ones that cannot run here. The argv is the contract: these tests pin it."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import pytest

from sidecar.media import (
    MOVFLAGS,
    AudioMode,
    ProfileError,
    RecordingSettings,
    Source,
    build_command,
    load_profile,
    load_profiles,
    parse_source,
)

SETTINGS = RecordingSettings(width=1280, height=720, fps=30, bitrate_kbps=2000, profile="main", level="3.1")
RTSP = parse_source("rtsp://user:secret@127.0.0.1:8554/cam")


def opt(argv: tuple[str, ...], name: str) -> str:
    """The value after the last ``name`` in argv (fails if absent)."""
    idx = len(argv) - 1 - argv[::-1].index(name)
    return argv[idx + 1]


def test_builtin_profiles_load() -> None:
    profiles = load_profiles()
    assert {"copy", "libx264", "vaapi", "qsv", "nvenc", "v4l2m2m"} <= set(profiles)
    assert profiles["copy"].is_copy and not profiles["copy"].hardware
    assert not profiles["libx264"].hardware
    assert all(profiles[n].hardware for n in ("vaapi", "qsv", "nvenc", "v4l2m2m"))
    assert profiles["libx264"].honours == {"resolution", "fps", "bitrate", "profile", "level", "iframe_interval"}


def test_common_muxer_and_global_options_for_every_profile() -> None:
    for profile in load_profiles().values():
        argv = build_command(RTSP, profile, SETTINGS).argv
        assert argv[:6] == ("ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning")
        assert opt(argv, "-f") == "mp4" and opt(argv, "-movflags") == MOVFLAGS
        assert argv[-1] == "pipe:1"
        assert opt(argv, "-rtsp_transport") == "tcp" and opt(argv, "-timeout") == "5000000"
        assert argv.index("-rtsp_transport") < argv.index("-i")
        assert opt(argv, "-i") == "rtsp://user:secret@127.0.0.1:8554/cam"
        maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map"]
        assert maps == ["0:v:0", "0:a:0?"]
        assert opt(argv, "-c:a") == "aac" and opt(argv, "-profile:a") == "aac_low"
        assert opt(argv, "-ar") == "32000" and opt(argv, "-ac") == "1"
        assert "-frag_duration" not in argv  # it cuts mid-GOP (docs/cameras-and-nvrs.md §ffmpeg command)


def test_libx264_keyframes_every_four_seconds_exactly() -> None:
    argv = build_command(RTSP, load_profiles()["libx264"], SETTINGS).argv
    assert opt(argv, "-c:v") == "libx264"
    assert opt(argv, "-g") == "120" and opt(argv, "-keyint_min") == "120"
    assert opt(argv, "-sc_threshold") == "0" and opt(argv, "-bf") == "0"
    assert opt(argv, "-force_key_frames") == "expr:gte(t,n_forced*4)"
    assert opt(argv, "-filter:v") == "scale=1280:720,format=yuv420p"
    assert opt(argv, "-r") == "30"
    assert opt(argv, "-b:v") == "2000k" and opt(argv, "-maxrate") == "2000k" and opt(argv, "-bufsize") == "4000k"
    assert opt(argv, "-profile:v") == "main" and opt(argv, "-level:v") == "3.1"


@pytest.mark.parametrize(
    ("name", "codec", "vf", "profile", "level", "input_opts"),
    [
        ("vaapi", "h264_vaapi", "scale_vaapi=w=1280:h=720:format=nv12", "main", "31",
         {"-hwaccel": "vaapi", "-hwaccel_output_format": "vaapi"}),
        ("qsv", "h264_qsv", "scale_qsv=w=1280:h=720", "main", "31", {"-hwaccel": "qsv"}),
        ("nvenc", "h264_nvenc", "scale=1280:720,format=yuv420p", "main", "3.1", {}),
        ("v4l2m2m", "h264_v4l2m2m", "scale=1280:720,format=yuv420p", "77", "31", {}),
    ],
)
def test_hardware_profile_argv(name: str, codec: str, vf: str, profile: str, level: str,
                               input_opts: dict[str, str]) -> None:
    argv = build_command(RTSP, load_profiles()[name], SETTINGS).argv
    assert opt(argv, "-c:v") == codec and opt(argv, "-filter:v") == vf
    assert opt(argv, "-profile:v") == profile and opt(argv, "-level:v") == level
    assert opt(argv, "-g") == "120" and opt(argv, "-bf") == "0"
    assert opt(argv, "-b:v") == "2000k"
    for key, value in input_opts.items():
        assert opt(argv, key) == value and argv.index(key) < argv.index("-i")


def test_baseline_profile_names_per_encoder() -> None:
    s = RecordingSettings(profile="baseline", level="4.0")
    names = {n: opt(build_command(RTSP, p, s).argv, "-profile:v") for n, p in load_profiles().items()
             if not p.is_copy and not p.encodes_hevc}  # H.264 encoders (H.265 ones: test_hevc.py)
    assert names == {"libx264": "baseline", "vaapi": "constrained_baseline", "qsv": "baseline",
                     "nvenc": "baseline", "v4l2m2m": "66"}


def test_copy_keeps_video_and_reports_ignored_settings() -> None:
    cmd = build_command(RTSP, load_profiles()["copy"], SETTINGS, min_frag_duration_us=3_000_000)
    assert opt(cmd.argv, "-c:v") == "copy"
    assert "-filter:v" not in cmd.argv and "-b:v" not in cmd.argv
    assert opt(cmd.argv, "-min_frag_duration") == "3000000"
    assert set(cmd.ignored) == {"resolution", "fps", "bitrate", "profile", "level", "iframe_interval"}


def test_audio_modes() -> None:
    copy = load_profiles()["copy"]
    on = build_command(RTSP, copy, SETTINGS)
    assert on.audio is AudioMode.SOURCE
    off = build_command(RTSP, copy, RecordingSettings(audio=False))
    assert off.audio is AudioMode.NONE
    assert "-an" in off.argv and "-c:a" not in off.argv
    assert [off.argv[i + 1] for i, a in enumerate(off.argv) if a == "-map"] == ["0:v:0"]
    silent = build_command(RTSP, copy, SETTINGS, source_has_audio=False)
    assert silent.audio is AudioMode.SILENT
    argv = silent.argv
    assert "anullsrc=channel_layout=mono:sample_rate=32000" in argv
    null_at = argv.index("anullsrc=channel_layout=mono:sample_rate=32000")
    assert argv[null_at - 3 : null_at] == ("-f", "lavfi", "-i")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-map"] == ["0:v:0", "1:a:0"]
    assert "-shortest" in argv  # the silent track must not outlive the camera


def test_sources() -> None:
    x264 = load_profiles()["libx264"]
    demo = build_command(Source("demo", demo_size=(320, 240), demo_fps=15), x264, SETTINGS).argv
    assert "testsrc2=size=320x240:rate=15" in demo and demo.count("-re") == 2
    assert [demo[i + 1] for i, a in enumerate(demo) if a == "-map"] == ["0:v:0", "1:a:0"]
    looping = build_command(parse_source("loop:/media/clip.mp4"), x264, SETTINGS).argv
    assert opt(looping, "-stream_loop") == "-1" and "-re" in looping and opt(looping, "-i") == "/media/clip.mp4"
    http = build_command(parse_source("https://127.0.0.1/stream.flv"), x264, SETTINGS).argv
    assert opt(http, "-rw_timeout") == "5000000" and "-rtsp_transport" not in http
    assert "-timeout" not in http  # rw_timeout for http; -timeout means something else there
    with pytest.raises(ValueError, match=r"no H\.264 to copy"):
        build_command(Source("demo"), load_profiles()["copy"], SETTINGS)
    assert RTSP.describe() == "rtsp://user:***@127.0.0.1:8554/cam"


def test_ffmpeg_python_quirks_are_worked_around() -> None:
    # Documented upstream bug on Python >= 3.10; we never pass tuples.
    with pytest.raises(AttributeError):
        ffmpeg.input("x").output("y", video_size=(640, 360)).compile()
    argv = build_command(RTSP, load_profiles()["libx264"], SETTINGS).argv
    assert all(isinstance(a, str) for a in argv)
    # Global options first, not after the output name.
    assert argv.index("-nostdin") < argv.index("-i") and argv[-1] == "pipe:1"


def test_user_profile_and_validation(tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text(
        'name = "mine"\nmode = "transcode"\nhonours = ["bitrate"]\n'
        '[video]\ncodec = "libx264"\n[video.options]\npreset = "ultrafast"\n"b:v" = "{bitrate}k"\n'
        "crf = 23\n[audio]\ncodec = \"aac\"\n"
    )
    profiles = load_profiles([tmp_path])
    assert set(profiles) == {"mine"}
    argv = build_command(RTSP, profiles["mine"], SETTINGS).argv
    assert opt(argv, "-preset") == "ultrafast" and opt(argv, "-b:v") == "2000k" and opt(argv, "-crf") == "23"
    bad_cases = {
        "name.toml": 'name = "other"\nmode = "copy"\n[video]\ncodec = "copy"\n[audio]\ncodec = "aac"\n',
        "mode.toml": 'mode = "magic"\n[video]\ncodec = "copy"\n[audio]\ncodec = "aac"\n',
        "placeholder.toml": 'mode = "transcode"\n[video]\ncodec = "libx264"\n[video.options]\n'
        'g = "{nope}"\n[audio]\ncodec = "aac"\n',
        "reserved.toml": 'mode = "transcode"\n[video]\ncodec = "libx264"\n[video.options]\n'
        'movflags = "faststart"\n[audio]\ncodec = "aac"\n',
        "dash.toml": 'mode = "transcode"\n[video]\ncodec = "libx264"\n[video.options]\n'
        '"-g" = "1"\n[audio]\ncodec = "aac"\n',
        "syntax.toml": "mode = \n",
        "copyenc.toml": 'mode = "copy"\n[video]\ncodec = "libx264"\n[audio]\ncodec = "aac"\n',
    }
    for filename, text in bad_cases.items():
        path = tmp_path / filename
        path.write_text(text)
        with pytest.raises(ProfileError):
            load_profile(path)


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        RecordingSettings(width=641)
    with pytest.raises(ValueError):
        RecordingSettings(level="5.1")  # type: ignore[arg-type]
    assert RecordingSettings(fps=15, iframe_interval_ms=4000).gop_frames == 60


@pytest.mark.parametrize("name", ["copy", "libx264", "vaapi", "qsv", "nvenc", "v4l2m2m"])
def test_detector_output_is_a_second_output_that_leaves_the_recording_alone(name: str) -> None:
    from sidecar.media.frames import DetectOutput

    profile = load_profiles()[name]
    plain = build_command(RTSP, profile, SETTINGS)
    both = build_command(RTSP, profile, SETTINGS, detect=DetectOutput(fps=4, height=90), detect_target="pipe:17")
    # Everything up to and including the recording's "pipe:1" is unchanged; the second output follows.
    assert both.argv[:len(plain.argv)] == plain.argv
    second = both.argv[len(plain.argv):]
    assert second[-1] == "pipe:17" and second[:2] == ("-map", "0:v:0")
    assert opt(second, "-f") == "yuv4mpegpipe" and "-an" in second
    vf = opt(second, "-filter:v")
    assert vf.endswith("fps=4,scale=-2:90:flags=area,format=gray")
    # GPU-decoding profiles download the frames first, or the gray scaler could not take them.
    assert vf.startswith("hwdownload,format=nv12,") == (name in ("vaapi", "qsv"))
