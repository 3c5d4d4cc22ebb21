"""The verification benchmark runs end to end on a small load and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "verify.py"


@pytest.mark.postgres
def test_the_verification_benchmark_prints_every_figure(postgres_url) -> None:
    # The scratch database is made on the test's server; the benchmark asserts that every
    # answer is 200 and `authentic`.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--postgres", postgres_url],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert set(figures) == {
        "items",
        "events",
        "requests",
        "verify_p50_ms",
        "verify_p99_ms",
        "verify_p99_target_ms",
        "epcis_exported_events",
        "epcis_export_events_per_s",
    }
    assert (figures["items"], figures["events"], figures["requests"]) == ("2000", "20000", "200")
    assert 0 < float(figures["verify_p50_ms"]) <= float(figures["verify_p99_ms"])
    assert figures["epcis_exported_events"] == "20000"
    assert float(figures["epcis_export_events_per_s"]) > 0
