"""The agent benchmark runs end to end on a few scans and a small backlog, printing every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "agent.py"


@pytest.mark.slow
def test_the_agent_benchmark_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--scans", "10", "--queued", "50"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert figures["scans"] == "10"
    for name in ("scan_to_durable_p99_ms", "line_to_recorded_p99_ms", "drain_50_s"):
        assert float(figures[name]) > 0, name
    assert 10 < float(figures["rss_mb"]) <= 60
