"""CPU seconds: of one process, of this one, and of the whole machine (to see how much *other*
programs used while a benchmark ran: their load makes latencies unreliable)."""

from __future__ import annotations

import contextlib
import resource

import psutil  # type: ignore[import-untyped]


def process_cpu_s(proc: psutil.Process) -> float:
    """User+sys CPU seconds of ``proc``, all its threads."""
    t = proc.cpu_times()
    return float(t.user + t.system)


def children_cpu_s(children: list[psutil.Process]) -> float:
    """User+sys CPU seconds of ``children`` together; one that has ended counts for nothing."""
    total = 0.0
    for child in children:
        with contextlib.suppress(psutil.Error):
            total += process_cpu_s(child)
    return total


def own_cpu_s() -> float:
    """User+sys CPU seconds of this process (without psutil's per-call cost)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine, every core."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def rss_mib(proc: psutil.Process) -> float:
    """Resident memory of ``proc`` in MiB."""
    return float(proc.memory_info().rss) / 2**20
