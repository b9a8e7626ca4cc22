"""``keep_freed_memory`` (sidecar/malloc_tuning.py): a freed fragment-sized block is reused, not
faulted in again, and the command sets it before anything else.

Measured in a fresh interpreter each (the thresholds are process-wide and this process's heap has
a history): allocate and free an 8 MB buffer, then count the page faults the next allocation of
the same size costs. glibc's defaults map the first one, unmap it on free and give the second
fresh pages (about 2,000 faults of 4 KiB); with the thresholds fixed the second reuses the first's
memory.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from sidecar.malloc_tuning import _is_glibc, giving_back_free_memory

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


GIVE_BACK = """
import asyncio, sys
from sidecar.malloc_tuning import give_back_free_memory_every, keep_freed_memory

def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

keep_freed_memory()
# Fragment-sized buffers of varying sizes, two of three freed: the heap keeps the holes.
blocks = [bytearray(1_000_000 + 4096 * (i % 7)) for i in range(60)]
kept = blocks[::3]
del blocks
held = rss_mib()

async def main() -> None:
    task = asyncio.create_task(give_back_free_memory_every(0.05))
    for _ in range(200):  # the first give-back comes after 0.05 s, in a worker thread
        await asyncio.sleep(0.05)
        if rss_mib() < held - 30:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

asyncio.run(main())
print(round(held), round(rss_mib()), len(kept))
"""


def test_the_heaps_free_pages_go_back_to_the_kernel_while_the_program_runs() -> None:
    """With the thresholds fixed, freed fragment buffers stay in the heap (held in RSS); the
    command's periodic give-back returns them (40 of 60 one-megabyte buffers freed: RSS falls by
    about 40 MB) and keeps the 20 still in use."""
    out = subprocess.run([sys.executable, "-c", GIVE_BACK], capture_output=True, text=True, check=True, timeout=60)
    held, after, kept = map(int, out.stdout.split())
    assert kept == 20
    assert held - after >= 30, out.stdout  # about 40 MB given back
    assert after >= 20, out.stdout  # the 20 MB still in use stay


def test_the_command_gives_free_memory_back_while_it_runs() -> None:
    """``hksv-sidecar`` runs the give-back beside the application and ends it with it."""
    probe = """
import asyncio, sidecar.cli as c, sidecar.malloc_tuning as m
ran = []
async def every(seconds=60.0):
    ran.append("started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        ran.append("ended")
        raise
m.give_back_free_memory_every = every
class App:
    async def run(self):
        await asyncio.sleep(0.01)
async def outer():
    await c._run(App())
    print(*ran)  # before asyncio.run cancels what is left
asyncio.run(outer())
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["started", "ended"]


def _give_back_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "give back free memory" and not t.done()]


async def test_the_give_back_runs_for_its_block_and_ends_with_it_however_the_block_ends() -> None:
    """The command and a parent's control channel share one way to run it: one task for the
    ``async with`` block, none left after it, whether the block returns or raises."""
    async with giving_back_free_memory(3600):
        assert len(_give_back_tasks()) == 1
    assert _give_back_tasks() == []
    with pytest.raises(RuntimeError, match="camera"):
        async with giving_back_free_memory(3600):
            assert len(_give_back_tasks()) == 1
            raise RuntimeError("camera failed")
    assert _give_back_tasks() == []
