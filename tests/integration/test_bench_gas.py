"""Gas is deterministic, so the gas benchmark doubles as a regression guard on the target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gas.py"


@pytest.fixture(scope="module")
def figures() -> dict[str, str]:
    """The benchmark's printed figures, name -> value (it runs once for the module)."""
    result = subprocess.run(
        [sys.executable, str(BENCH)], capture_output=True, text=True, timeout=300, check=True
    )
    return dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)


def test_gas_per_custody_event_stays_under_target(figures: dict[str, str]) -> None:
    assert int(figures["gas_per_custody_event_at_1000"]) < 100
    # An anchor costs the same whatever the batch size: the root is all that goes on-chain.
    assert int(figures["gas_anchor_batch_1000"]) < 100_000
    # Checking one salted event of a 1,000-event batch, as a transaction would.
    assert int(figures["gas_verify_event_at_1000"]) < 50_000
    # The lazy first transfer (one mintWithConsent to the buyer) beats mint + transfer.
    lazy = int(figures["gas_lazy_first_transfer"])
    assert lazy < int(figures["gas_eager_mint_then_transfer"]) * 2 // 3


TRADE_PATHS = (
    "completed",
    "completed_by_timeout",
    "shipment_proved",
    "minted_into_escrow",
    "ruled_for_buyer",
    "ruled_for_seller",
    "cancelled",
    "never_deposited",
    "never_shipped",
    "no_arbiter_agreed",
    "arbiter_never_ruled",
)


def test_every_trade_path_has_a_gas_figure_within_budget(figures: dict[str, str]) -> None:
    paths = {name: int(figures[f"trade_{name}_gas"]) for name in TRADE_PATHS}
    # A whole trade, withdrawals included, stays under a million gas whichever way it ends.
    assert max(paths.values()) < 1_000_000
    assert paths["completed"] < 650_000
    # Proving the shipment with a custody event of a 1,000-event batch costs little more.
    assert int(figures["trade_prove_shipped_at_1000_gas"]) < 100_000
    assert int(figures["trade_withdraw_gas"]) < 40_000
    assert int(figures["trade_record_details_gas"]) < 60_000
