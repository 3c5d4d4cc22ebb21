"""Gas is deterministic, so the gas benchmark doubles as a regression guard on the target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gas.py"


def test_gas_per_custody_event_stays_under_target() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH)], capture_output=True, text=True, timeout=300, check=True
    )
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert int(figures["gas_per_custody_event_at_1000"]) < 100
    # An anchor costs the same whatever the batch size: the root is all that goes on-chain.
    assert int(figures["gas_anchor_batch_1000"]) < 100_000
    # Checking one salted event of a 1,000-event batch, as a transaction would.
    assert int(figures["gas_verify_event_at_1000"]) < 50_000
    # The lazy first transfer (one mintWithConsent to the buyer) beats mint + transfer.
    lazy = int(figures["gas_lazy_first_transfer"])
    assert lazy < int(figures["gas_eager_mint_then_transfer"]) * 2 // 3
