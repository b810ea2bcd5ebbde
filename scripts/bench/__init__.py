"""What scripts/benchmark.py measures, one module per kind of figure: throughput.py (training windows per second,
ours vs a bare loop, by batch size), costs.py (windowing memory, inference, the end-to-end run, sweeps) and
machine.py (what it ran on)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository: conf/ and scripts/
