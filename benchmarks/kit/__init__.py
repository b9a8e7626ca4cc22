"""What every benchmark measures with: CPU meters (``cpu``), percentiles (``stats``) and the
synthetic camera clips they feed the pipeline (``clips``)."""

from pathlib import Path

#: The repository root: the working directory for a benchmark's child processes, which run as
#: ``python -m benchmarks.<name>`` like the benchmark itself.
REPO = Path(__file__).resolve().parents[2]
