"""The events benchmark runs end to end on a small batch and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "events.py"


def test_the_events_benchmark_prints_every_figure() -> None:
    # The benchmark asserts that every event of every batch is accepted.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--batches", "2", "--size", "50"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert set(figures) == {"events_per_s", "events_per_s_postgres"}
    assert float(figures["events_per_s"]) > 0
