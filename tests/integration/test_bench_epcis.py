"""The EPCIS export benchmark runs end to end on a few items and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "epcis.py"


def test_the_epcis_benchmark_prints_every_figure() -> None:
    # The benchmark asserts that every page answers 200 and every event comes once.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--items", "1500"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert set(figures) == {
        "epcis_export_events_per_s",
        "epcis_export_events_per_s_postgres",
        "epcis_capture_events_per_s",
        "epcis_capture_events_per_s_postgres",
    }
    assert float(figures["epcis_export_events_per_s"]) > 0
    assert float(figures["epcis_capture_events_per_s"]) > 0
