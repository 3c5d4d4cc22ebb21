"""The ingest benchmark runs its real processes on a small feed and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ANVIL, unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


@pytest.mark.postgres
@pytest.mark.anvil
@pytest.mark.slow
def test_the_ingest_benchmark_prints_every_figure(postgres_url: str) -> None:
    if not ANVIL.exists():
        unavailable(f"anvil not installed (run npm ci in contracts_abi): {ANVIL}")
    # The fixture proves the server answers (or skips, or fails in CI); the benchmark makes
    # and drops its own scratch database on that server, and asserts every event is accepted.
    server = postgres_url.rpartition("/")[0] + "/postgres"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--postgres", server],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    names = {"register_10k_items_s", "events_per_s", "anchor_lag_p99_s"}
    assert set(figures) == names | {f"{name}_target" for name in names}
    for name in names:
        assert float(figures[name]) > 0, figures
