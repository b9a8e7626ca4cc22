"""``keep_freed_memory`` (sidecar/malloc_tuning.py): a freed fragment-sized block is reused, not
faulted in again, and the command sets it before anything else.

Measured in a fresh interpreter each (the thresholds are process-wide and this process's heap has
a history): allocate and free an 8 MB buffer, then count the page faults the next allocation of
the same size costs. glibc's defaults map the first one, unmap it on free and give the second
fresh pages (about 2,000 faults of 4 KiB); with the thresholds fixed the second reuses the first's
memory.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from sidecar.malloc_tuning import _is_glibc

SCRIPT = """
import resource, sys
from sidecar.malloc_tuning import keep_freed_memory
done = keep_freed_memory() if sys.argv[1] == "tuned" else None
size = 8 * 1024 * 1024
first = bytearray(size)
del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = bytearray(size)
print(done, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

pytestmark = pytest.mark.skipif(not _is_glibc(), reason="the thresholds are glibc's")  # (Debian: never skips)


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, timeout=60)
    done, count = out.stdout.split()
    return done, int(count)


def test_a_freed_fragment_buffer_is_reused_not_faulted_in_again() -> None:
    done, tuned = faults("tuned")
    assert done == "True"
    _, default = faults("default")
    assert default > 1500  # the premise: glibc's defaults fault in the second buffer afresh
    assert tuned < 200  # reused: at most a few pages of bookkeeping


def test_the_command_tunes_before_it_parses_anything() -> None:
    """A bad flag exits at once, after the tuning: nothing the command allocates comes first."""
    probe = ("import sidecar.malloc_tuning as m, sidecar.cli as c\n"
             "calls = []\n"
             "c.keep_freed_memory = lambda: calls.append(1) or True\n"
             "try:\n    c.main(['--no-such-flag'])\nexcept SystemExit:\n    pass\n"
             "print(len(calls))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split()[-1] == "1"
