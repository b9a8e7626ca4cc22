"""The CI hook (tests/support/ci_strict.py): a test that skips for a missing tool fails a
``CI=true`` run, stays a skip elsewhere, and an allowlisted reason stays a skip in CI too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

INNER = '''
import shutil
import pytest

pytest.importorskip("no_such_module_for_the_ci_hook_test") if {module_skip} else None


@pytest.mark.skipif(shutil.which("no-such-tool-for-the-ci-hook") is None, reason="no-such-tool is not installed")
def test_needs_a_missing_tool():
    pass


def test_skips_at_run_time_for_an_allowed_reason():
    pytest.skip("the allowed reason for the hook test")


@pytest.mark.xfail(reason="expected to fail", strict=True)
def test_expected_failure():
    raise AssertionError


def test_runs():
    pass
'''


def run_inner(tmp_path: Path, ci: str | None, module_skip: bool = False) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER.format(module_skip=module_skip))
    (tmp_path / "conftest.py").write_text(
        "from tests.support import ci_strict\n"
        "ci_strict.ALLOWED_SKIPS['the allowed reason'] = 'for the hook test'\n"
        "pytest_plugins = ['tests.support.ci_strict']\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-q", "-rA",
         "--rootdir", str(tmp_path),
         str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )


def test_a_skip_for_a_missing_tool_fails_a_ci_run(tmp_path: Path) -> None:
    result = run_inner(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    # a skipif skips in the setup phase, so the failure is reported there (as an error)
    assert "1 passed, 1 skipped, 1 xfailed" in result.stdout and "1 error" in result.stdout
    assert "skipped under CI=true" in result.stdout and "no-such-tool is not installed" in result.stdout
    assert "ERROR test_inner.py::test_needs_a_missing_tool" in result.stdout


def test_outside_ci_skips_stay_skips(tmp_path: Path) -> None:
    result = run_inner(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout and "error" not in result.stdout


@pytest.mark.parametrize("ci", ["false", ""])
def test_ci_other_than_true_is_not_strict(tmp_path: Path, ci: str) -> None:
    assert run_inner(tmp_path, ci).returncode == 0


def test_a_module_skipped_at_import_fails_a_ci_run(tmp_path: Path) -> None:
    result = run_inner(tmp_path, "true", module_skip=True)
    assert result.returncode != 0, result.stdout
    assert "skipped under CI=true" in result.stdout and "no_such_module_for_the_ci_hook_test" in result.stdout
