"""Build and run the real Dockerfile without a Docker daemon (docs/testing.md §Docker image).

No daemon or registry is reachable here, so the base image ``debian:bookworm-slim`` is made with
debootstrap (``minbase``, the same package set the official slim image starts from), slimmed as
the official one is (:func:`slim`: no documentation, manual pages or translations, now or from
later installs; apt keeps no package files or lists), and tagged locally under that name; buildah
then builds the Dockerfile as written (chroot isolation, the vfs driver, ``--pull=never`` so
``FROM debian:bookworm-slim`` resolves to the local image) and runs it.

Caching, so that a second run is quick while a first run works from nothing:
- the debootstrapped base is kept as a tarball in the cache directory;
- buildah's storage (with ``--layers``) lives there too, so unchanged Dockerfile steps are reused.
The cache directory is ``$HKSV_IMAGE_CACHE`` or ``/var/tmp/hksv-sidecar-image``; deleting it is safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

BASE = "localhost/debian:bookworm-slim"
IMAGE = "localhost/hksv-sidecar:test"
MIRROR = "http://deb.debian.org/debian"
# The official slim image's apt sources (deb822), so RUN apt-get sees bookworm, -updates and -security.
SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def cache_dir() -> Path:
    path = Path(os.environ.get("HKSV_IMAGE_CACHE", "/var/tmp/hksv-sidecar-image"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def buildah(*args: str, capture: bool = True, timeout: float = 900) -> str:
    root = cache_dir() / "storage"
    cmd = ["buildah", "--root", str(root), "--runroot", str(cache_dir() / "run"), "--storage-driver", "vfs", *args]
    r = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout.strip() if capture else ""


def buildah_cmd(*args: str) -> list[str]:
    return ["buildah", "--root", str(cache_dir() / "storage"), "--runroot", str(cache_dir() / "run"),
            "--storage-driver", "vfs", *args]


def has_image(name: str) -> bool:
    r = subprocess.run(buildah_cmd("inspect", "--type", "image", name), capture_output=True, text=True)
    return r.returncode == 0


def base_tarball() -> Path:
    """A minbase bookworm root file system, made once by debootstrap and kept."""
    tarball = cache_dir() / "bookworm-minbase.tar"
    if tarball.exists():
        return tarball
    rootfs = cache_dir() / "rootfs.tmp"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR], check=True,
                   capture_output=True, timeout=900)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
    partial = tarball.with_suffix(".tmp")
    with tarfile.open(partial, "w") as tar:
        tar.add(rootfs, arcname=".")
    partial.rename(tarball)
    shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def host_cas() -> list[Path]:
    """The machine's own extra CAs (``update-ca-certificates`` reads them). Where egress goes
    through a TLS-inspecting proxy, as on these test machines, pip inside the build needs them,
    exactly as a company's own base image carries its CA."""
    return sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))


def _cas_digest() -> str:
    digest = hashlib.sha256()
    for path in host_cas():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# What the official slim image leaves out, as dpkg exclusions (they also hold for every package a
# Dockerfile installs on top), and apt's settings that keep no downloaded package in a layer. The
# image size the Docker test prints depends on both, so the local base must match.
DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
"""
_CLEAN = '"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"'
APT_CLEAN = f"""DPkg::Post-Invoke {{ {_CLEAN}; }};
APT::Update::Post-Invoke {{ {_CLEAN}; }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""
SLIM_RECIPE = "slim-1"  # changes when slim() does, so the local base is made again


def slim(root: Path) -> None:
    """Make a debootstrapped root file system what the official ``-slim`` image is."""
    (root / "etc/dpkg/dpkg.cfg.d/docker").write_text(DPKG_EXCLUDES)
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
    for directory in ("usr/share/info", "usr/share/linda", "usr/share/lintian/overrides", "usr/share/locale",
                      "usr/share/man", "var/lib/apt/lists"):
        for child in (root / directory).glob("*") if (root / directory).is_dir() else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for path in (root / "usr/share/doc").rglob("*"):
        if not path.is_dir() and path.name != "copyright":
            path.unlink()


def ensure_base() -> None:
    """``debian:bookworm-slim`` in the local storage, from the cached tarball (re-made when the
    machine's extra CAs or the slimming changed)."""
    wanted = f"{SLIM_RECIPE}-{_cas_digest()}"
    if has_image(BASE):
        if image_labels(BASE).get("hksv.host-ca") == wanted:
            return
        buildah("rmi", "--force", BASE)
    tarball = base_tarball()
    container = buildah("from", "scratch")
    try:
        mount = buildah("mount", container)
        subprocess.run(["tar", "-xpf", str(tarball), "-C", mount], check=True, timeout=600)
        slim(Path(mount))
        target = Path(mount) / "usr/local/share/ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        for ca in host_cas():
            shutil.copy2(ca, target / ca.name)
        buildah("unmount", container)
        buildah("config", "--cmd", "bash", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--label", f"hksv.host-ca={wanted}", container)
        buildah("commit", "--rm", container, BASE)
    except BaseException:
        subprocess.run(buildah_cmd("rm", container), capture_output=True)
        raise


CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "setup.py", "README.md", "requirements.lock")
CONTEXT_DIRS = ("sidecar", "ffmpeg_profiles")


def context_digest(context: Path) -> str:
    """What the build reads (the files .dockerignore lets through) and the base it starts from."""
    digest = hashlib.sha256(image_labels(BASE).get("hksv.host-ca", "").encode())
    paths = [context / name for name in CONTEXT_FILES]
    for directory in CONTEXT_DIRS:
        paths += sorted(p for p in (context / directory).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def image_labels(name: str) -> dict[str, str]:
    if not has_image(name):
        return {}
    labels: dict[str, str] = json.loads(buildah("inspect", "--type", "image", name))["OCIv1"]["config"].get(
        "Labels") or {}
    return labels


def build(context: Path) -> None:
    """Build the Dockerfile, unless the image already exists for exactly these inputs (a full cache
    hit still costs about a minute of vfs copying, so it is skipped)."""
    ensure_base()
    digest = context_digest(context)
    if image_labels(IMAGE).get("hksv.context") == digest:
        return
    log = buildah("bud", "--isolation", "chroot", "--pull=never", "--layers", "--format", "docker",
                  "--label", f"hksv.context={digest}", "-t", IMAGE, "-f", str(context / "Dockerfile"), str(context),
                  timeout=1800)
    prune(set(re.findall(r"^--> (?:Using cache )?([0-9a-f]{11,64})$", log, re.MULTILINE)))


def image_size_mb(name: str) -> float:
    """The image's size as buildah reports it (all layers, uncompressed), in MB (10^6 bytes)."""
    (entry,) = json.loads(buildah("images", "--json", name))
    number, unit = re.fullmatch(r"([\d.]+)\s*([kMG]?B)", entry["size"]).groups()  # type: ignore[union-attr]
    return float(number) * {"B": 1e-6, "kB": 1e-3, "MB": 1.0, "GB": 1e3}[unit]


def prune(keep: set[str]) -> None:
    """Remove the step images of earlier builds (vfs stores every layer as a full copy, so they
    add up to gigabytes), keeping the ones this build used: they are the cache of the next one."""
    out = buildah("images", "--filter", "dangling=true", "--no-trunc", "--format", "{{.ID}}")
    for image_id in out.split():
        bare = image_id.removeprefix("sha256:")
        if not any(bare.startswith(k) for k in keep):
            subprocess.run(buildah_cmd("rmi", bare), capture_output=True, timeout=300)


if __name__ == "__main__":  # python -m tests.docker.image: build the image by hand
    import time

    t0 = time.monotonic()
    ensure_base()
    t1 = time.monotonic()
    build(Path(__file__).resolve().parents[2])
    print(f"base {t1 - t0:.1f} s, build {time.monotonic() - t1:.1f} s")
