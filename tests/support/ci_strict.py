"""Under ``CI=true`` a skipped test fails the run, unless its reason is on the allowlist below.

A test that skips because a tool or a capability is missing (node, GStreamer, ``unshare -n``)
did not run, and a green CI that hides it tells nothing: the real Homebridge run or the only
on-the-wire mDNS test could vanish from a passing build. ``.ci/setup --test`` installs every tool
the suite needs, so in CI a skip means the setup or the machine is wrong, and the run says so.
Outside CI (a developer's partial setup) skips stay skips.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

#: Skip reasons (substrings) that stay skips under CI=true, each with why. Keep it short: every
#: entry is a test CI does not run.
#: Empty today: nothing in the suite may skip in CI. An entry looks like
#: ``"VAAPI device missing": "CI machines have no GPU; the argv is unit-tested"``.
ALLOWED_SKIPS: dict[str, str] = {}


def ci_is_strict() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _allowed(reason: str) -> bool:
    return any(key in reason for key in ALLOWED_SKIPS)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = _reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true, which counts as a failure: {reason}\n"
        "CI installs every tool the suite needs (bash .ci/setup --test); a skip here means a test "
        "did not run. Fix the setup, or add the reason to ALLOWED_SKIPS in tests/support/ci_strict.py "
        "with a comment saying why."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if ci_is_strict() and report.skipped and not hasattr(report, "wasxfail") and not _allowed(_reason(report)):
        _fail_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, object, None]:
    """A whole module skipped at import (``pytest.skip(..., allow_module_level=True)``)."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if ci_is_strict() and report.skipped and not _allowed(_reason(report)):
        _fail_skip(report)
