"""Our X-HM:// setup URI equals HAP-NodeJS's for the same code, category and setup id."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sidecar.hap.setup_payload import setup_uri

pytestmark = pytest.mark.interop
CASES = [("031-45-154", 17, "7OSX"), ("987-65-432", 17, "A1B2"), ("101-48-005", 2, "ZZZZ"),
         ("555-12-999", 8, "0000"), ("246-80-135", 16, "HKSV")]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by .ci/setup --test")
def test_setup_uri_matches_hap_nodejs() -> None:
    node_dir = Path(__file__).parent / "node"
    result = subprocess.run(["node", "setup_uri.js", json.dumps(CASES)], cwd=node_dir, capture_output=True,
                            check=True, timeout=60)
    theirs = json.loads(result.stdout)
    ours = [setup_uri(code, sid, category) for code, category, sid in CASES]
    assert ours == theirs

