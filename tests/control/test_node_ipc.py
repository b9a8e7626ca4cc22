"""The Node IPC parent test (tests/control/node/), run with ``node --test`` against this Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NODE_TESTS = Path(__file__).parent / "node"
REPO = Path(__file__).parents[2]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by .ci/setup --test")
def test_node_fork_style_parent_over_node_channel_fd() -> None:
    proc = subprocess.run(["node", "--test", str(NODE_TESTS)], cwd=REPO, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "HKSV_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "# pass 1" in proc.stdout and "# fail 0" in proc.stdout
