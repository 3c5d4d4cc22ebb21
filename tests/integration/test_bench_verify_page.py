"""The buyer's page benchmark runs end to end on a small load and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "verify_page.py"


@pytest.mark.postgres
def test_the_page_benchmark_prints_every_figure(postgres_url) -> None:
    # The benchmark asserts that every page is 200 and says "Genuine".
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
        "page_p50_ms",
        "page_p99_ms",
        "page_p99_target_ms",
        "json_p50_ms",
        "json_p99_ms",
        "page_html_bytes",
        "page_asset_bytes",
        "page_bytes_initial",
        "page_bytes",
        "page_bytes_target",
    }
    assert (figures["items"], figures["events"], figures["requests"]) == ("2000", "20000", "200")
    assert 0 < float(figures["page_p50_ms"]) <= float(figures["page_p99_ms"])
    html, assets = int(figures["page_html_bytes"]), int(figures["page_asset_bytes"])
    assert html > 1000 and assets > 1000  # the page and its stylesheet at least
    assert int(figures["page_bytes"]) == html + assets
    # proof.js loads the vendored crypto (about 46 kB) only when the buyer asks: counted too.
    initial = int(figures["page_bytes_initial"])
    assert html < initial < int(figures["page_bytes"]) - 40_000
