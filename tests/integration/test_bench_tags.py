"""The tag benchmark runs end to end on a few distinct tags and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tags.py"
FIGURES = (
    "sun_verifications_per_s",
    "qr_verifications_per_s",
    "ntag424_originality_per_s",
    "ntag424_originality_hand_written_per_s",
    "ntag21x_verifications_per_s",
)


def test_the_tag_benchmark_prints_every_figure() -> None:
    # Every check inside the benchmark asserts its verdict, so a run is also a test that
    # distinct, freshly keyed tags verify through the one entry point.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--count", "40"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert figures["tags_per_figure"] == "40"
    for name in FIGURES:
        assert float(figures[name]) > 0, name
