"""The Docker image, really built from the Dockerfile and run (no daemon here: see image.py), the
Dockerfile linted, and compose.yaml validated by docker-compose."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from sidecar.media.command import MOVFLAGS
from sidecar.media.stream_policy import BUILD_LACKS
from tests.docker.image import IMAGE, build, buildah, buildah_cmd, image_size_mb
from tests.support.hap_client import aio_pair, unverified_status
from tests.support.ports import free_port
from tests.support.sidecar_process import SidecarProcess

REPO = Path(__file__).resolve().parents[2]
PIN = "031-45-154"
MAX_IMAGE_MB = 500  # a sidecar beside Frigate should not weigh as much as Frigate (docs/docker.md)
pytestmark = pytest.mark.slow


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    r = subprocess.run([str(hadolint), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    r = subprocess.run(["docker-compose", "--project-directory", str(REPO), "-f", str(REPO / "compose.yaml"),
                        "config"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load(r.stdout)
    hksv = config["services"]["hksv"]
    assert hksv["network_mode"] == "host" and hksv["restart"] == "unless-stopped"
    assert {v.split(":")[1] for v in hksv["volumes"]} == {"/config", "/data"}
    assert "/healthz" in " ".join(hksv["healthcheck"]["test"])
    assert config["services"]["mqtt"]["image"].startswith("eclipse-mosquitto:")
    assert "frigate" not in config["services"]  # a commented example, wired to the same broker
    text = (REPO / "compose.yaml").read_text()
    assert "# frigate:" in text and "mqtt: {host: mqtt, port: 1883}" in text


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """Build the image (cached layers make a rebuild quick) and return its configuration."""
    build(REPO)
    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", IMAGE))
    return config


@pytest.fixture
def container(image: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    name = buildah("from", "--pull=never", IMAGE)
    try:
        yield name
    finally:
        subprocess.run(buildah_cmd("rm", name), capture_output=True, timeout=120)


def run_in(container: str, *cmd: str, env: dict[str, str] | None = None, timeout: float = 60,
           user: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = [f"--env={k}={v}" for k, v in (env or {}).items()] + ([f"--user={user}"] if user else [])
    return subprocess.run(buildah_cmd("run", "--isolation", "chroot", *extra, container, "--", *cmd),
                          capture_output=True, text=True, timeout=timeout)


def test_image_is_small_in_layers_non_root_and_has_no_build_tools(image: dict[str, Any], container: str) -> None:
    oci = image["OCIv1"]["config"]
    assert oci["User"] == "10001:10001"
    assert "/data" in oci["Volumes"]
    assert oci["Entrypoint"][:2] == ["tini", "--"] and oci["Cmd"] == ["--config", "/config/config.yaml"]
    assert image["Docker"]["config"]["Healthcheck"]["Test"][0] == "CMD"
    assert len(image["OCIv1"]["rootfs"]["diff_ids"]) <= 5  # base, apt, venv, the copy ffmpeg, nothing else
    r = run_in(container, "sh", "-c", "id -u; ls -ld /data | cut -d' ' -f3; "
               "for t in pip pip3 gcc cc make apt-get; do command -v $t || true; done; "
               "ffmpeg -hide_banner -encoders > /tmp/enc; for e in libx264 aac h264_vaapi h264_qsv; do "
               "grep -q -E \"^ [A-Z.]{6} $e \" /tmp/enc && echo $e; done; "
               "hksv-sidecar --version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "10001" and lines[1] == "hksv"
    # no pip, no compiler (only Debian's apt-get); ffmpeg with the encoders HKSV and the profiles use
    assert lines[2:] == ["/usr/bin/apt-get", "libx264", "aac", "h264_vaapi", "h264_qsv", "hksv-sidecar",
                         lines[-1]], r.stdout
    assert "pip" not in r.stdout.replace("/usr/bin/apt-get", "")


def test_image_is_at_most_500_mb_without_the_detectors_libraries_or_opengl(
        image: dict[str, Any], container: str, capsys: pytest.CaptureFixture[str]) -> None:
    size = image_size_mb(IMAGE)
    with capsys.disabled():
        print(f"\nimage {IMAGE}: {size:.0f} MB (limit {MAX_IMAGE_MB} MB)")
    assert size <= MAX_IMAGE_MB
    r = run_in(container, "sh", "-c", "ls /opt/hksv/lib/python3*/site-packages; ls /usr/lib/*/dri /usr/lib/*/libLLVM* "
               "2>/dev/null || true")
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split()
    assert "cryptography" in listed and "numpy" not in listed and "scipy" not in listed
    assert not [f for f in listed if f.endswith("_dri.so") or "libLLVM" in f]


def test_copy_mode_cameras_record_with_an_ffmpeg_built_for_copying(image: dict[str, Any], container: str) -> None:
    # The image's default copy_ffmpeg (Dockerfile, deploy/ffmpeg-copy.sh): Debian's own ffmpeg
    # source with only what a copy-mode recording runs, so it links none of the 214 libraries whose
    # relocated data cost every Debian ffmpeg 8 MB of private memory (benchmarks/RESULTS.md).
    env = dict(item.split("=", 1) for item in image["OCIv1"]["config"]["Env"])
    copy = env["HKSV_COPY_FFMPEG"]
    assert copy == "/usr/local/lib/hksv/ffmpeg-copy"
    # The copy-mode argv's parts (the copy profile, sidecar/media/command.py's MOVFLAGS): the video
    # copied into fragmented MP4 must be the same bytes Debian's ffmpeg writes, the audio
    # re-encoded to AAC-LC, and a camera without audio gets lavfi's silent track.
    out = f"-f mp4 -movflags {MOVFLAGS}"
    script = f"""set -e
cd /tmp
ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=15 -f lavfi -i sine=frequency=440:sample_rate=32000 \\
    -t 3 -c:v libx264 -g 15 -c:a aac -shortest clip.mp4
ffmpeg -v error -fflags +genpts -i clip.mp4 -map 0:v:0 -c:v copy -an {out} debian.mp4
{copy} -v error -fflags +genpts -i clip.mp4 -map 0:v:0 -c:v copy -an {out} copy.mp4
cmp debian.mp4 copy.mp4 && echo video-identical
{copy} -v error -fflags +genpts -i clip.mp4 -map 0:v:0 -map 0:a:0 -c:v copy -c:a aac -profile:a aac_low -ar 32000 \\
    -ac 1 -b:a 32k {out} audio.mp4
{copy} -v error -i clip.mp4 -f lavfi -i anullsrc=channel_layout=mono:sample_rate=16000 -map 0:v:0 -map 1:a:0 \\
    -c:v copy -c:a aac -ac 1 -shortest {out} silent.mp4
for f in audio.mp4 silent.mp4; do grep -c -a -E 'avc1|mp4a|moof' $f > /dev/null && echo $f-ok; done
grep -q -a mp4a audio.mp4 && grep -q -a mp4a silent.mp4 && grep -q -a moof audio.mp4 && echo aac-fragments
ldd {copy} | grep -c -E 'libav|libsw|librsvg|libflite|libplacebo' || true
{copy} -hide_banner -version | head -1 | cut -d' ' -f3 | cut -d- -f1
ffmpeg -hide_banner -version | head -1 | cut -d' ' -f3 | cut -d- -f1
"""
    r = run_in(container, "sh", "-c", script, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[:4] == ["video-identical", "audio.mp4-ok", "silent.mp4-ok", "aac-fragments"], r.stdout
    assert lines[4] == "0", "the copy build links one of Debian's ffmpeg libraries"
    assert lines[5] == lines[6] and lines[5].startswith("5."), r.stdout  # the same FFmpeg version as Debian's
    # A camera the build cannot read (it has no SRT): ffmpeg's words are the ones the stream policy
    # takes as "this build lacks it", so such a camera switches to the full ffmpeg by itself.
    r = run_in(container, copy, "-v", "error", "-i", "srt://127.0.0.1:9", "-c", "copy", "-f", "mp4", "/dev/null")
    assert r.returncode != 0 and BUILD_LACKS.search(r.stderr), r.stderr


async def test_container_runs_the_demo_config_and_pairs_over_hap(image: dict[str, Any], container: str,
                                                                 tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"bind": "127.0.0.1", "mdns": False, "cameras": [{
        "name": "Demo Camera", "source": "demo", "profile": "libx264", "setup_code": PIN}]}))
    buildah("copy", "--chmod", "0644", container, str(config), "/config/config.yaml")
    http_port = free_port()
    oci = image["OCIv1"]["config"]
    # The image's own entrypoint and default command, as docker run would start them.
    argv = buildah_cmd("run", "--isolation", "chroot", f"--env=HKSV_HTTP_PORT={http_port}", container, "--",
                       *oci["Entrypoint"], *oci["Cmd"])
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    sidecar = SidecarProcess(proc)
    try:
        port = int((await sidecar.wait_for_line(r"HAP port: (\d+)", timeout=60)).group(1))
        assert (await unverified_status(port)).startswith(b"HTTP/1.1 470")
        pairing = await aio_pair(port, PIN)
        try:
            accessories = await pairing.list_accessories_and_characteristics()
            assert any(c.get("value") == "Demo Camera" for s in accessories[0]["services"]
                       for c in s["characteristics"])
        finally:
            await pairing.shutdown()
        # The image's HEALTHCHECK command, run inside the container as Docker would.
        health = image["Docker"]["config"]["Healthcheck"]["Test"][1:]
        check = await asyncio.create_subprocess_exec(
            *buildah_cmd("run", "--isolation", "chroot", f"--env=HKSV_HTTP_PORT={http_port}", container, "--",
                         *health), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(check.communicate(), 60)
        assert check.returncode == 0, err.decode()
        # docker stop: SIGTERM to the container's PID 1 (tini), which passes it to the sidecar. (buildah run
        # itself answers a SIGTERM with SIGKILL, so it is sent to tini directly.)
        (tini,) = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.name() == "tini"]
        tini.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0, "".join(sidecar.lines)
        await sidecar.drain()
    finally:
        if proc.returncode is None:
            await sidecar.terminate(timeout=20)
    assert not any("Traceback" in line for line in sidecar.lines), "".join(sidecar.lines)
    with ThreadPoolExecutor(1) as pool:  # buildah run takes a while: off the loop, in a thread joined here
        r = await asyncio.get_running_loop().run_in_executor(pool, run_in, container, "sh", "-c", "ls /data")
    assert "demo-camera.json" in r.stdout.split(), r.stdout + r.stderr
