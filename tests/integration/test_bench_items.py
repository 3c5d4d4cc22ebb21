"""The items benchmark runs end to end on a small batch and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "items.py"


def test_the_items_benchmark_prints_every_figure() -> None:
    # The benchmark asserts that the first post creates every row and the resend none.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--items", "200"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert set(figures) == {
        "register_10k_items_s",
        "register_10k_items_resend_s",
        "register_10k_items_postgres_s",
        "register_10k_items_postgres_resend_s",
    }
    assert float(figures["register_10k_items_s"]) > 0
