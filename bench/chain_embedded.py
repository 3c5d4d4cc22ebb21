"""Embedded chain: start time cold and warm, and signed raw transaction throughput.

Usage: python bench/chain_embedded.py [--transactions N]
Prints `name: value` lines. Transactions are CustodyLedger.anchor calls signed locally with
EIP-1559 fees and sent raw, as the chain writer sends them.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from eth_account import Account  # noqa: E402
from web3 import Web3  # noqa: E402

from provenance_api import chain  # noqa: E402
from provenance_api.chain.embedded import STATE_FILE, EmbeddedProvider  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _T0


def anchor_transactions(w3, deployer, ledger, count: int) -> list[bytes]:
    """Sign `count` anchor transactions with consecutive nonces."""
    nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    fees = chain.fee_fields(w3)
    chain_id = w3.eth.chain_id
    signed = []
    for offset in range(count):
        data = ledger.functions.anchor(
            os.urandom(32), 10, os.urandom(32)
        )._encode_transaction_data()
        transaction = {
            "to": ledger.address,
            "data": data,
            "gas": 120_000,
            "nonce": nonce + offset,
            "chainId": chain_id,
            **fees,
        }
        signed.append(deployer.sign_transaction(transaction).raw_transaction)
    return signed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=300)
    count = parser.parse_args().transactions
    print(f"import_web3_pyevm_s: {IMPORT_SECONDS:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / "chain"
        start = time.perf_counter()
        w3 = chain.connect(None, state_dir)
        chain.chain_status(w3)
        print(f"start_cold_s: {time.perf_counter() - start:.3f}")

        deployer = Account.create()
        chain.fund_for_development(w3, deployer.address, 10**21)
        ledger = chain.contract(
            w3,
            "CustodyLedger",
            chain.deploy_contracts(w3, deployer, {}, admin=deployer.address)["CustodyLedger"],
        )

        # One at a time: sign, send, wait for the receipt; each is sealed in its own block.
        start = time.perf_counter()
        hashes = []
        for raw in anchor_transactions(w3, deployer, ledger, count):
            hashes.append(w3.eth.send_raw_transaction(raw))
            w3.eth.wait_for_transaction_receipt(hashes[-1])
        sequential = count / (time.perf_counter() - start)
        print(f"tx_per_s_one_block_each: {sequential:.1f}")
        print(f"blocks: {w3.eth.block_number}")
        chain.close(w3)
        print(f"state_file_bytes: {(state_dir / STATE_FILE).stat().st_size}")

        start = time.perf_counter()
        w3 = chain.connect(None, state_dir)
        block = chain.chain_status(w3)["block"]
        print(f"start_warm_s: {time.perf_counter() - start:.3f}")
        # A receipt lookup deep in history uses py-evm's index, not a scan.
        start = time.perf_counter()
        w3.eth.get_transaction_receipt(hashes[0])
        print(f"receipt_lookup_ms: {(time.perf_counter() - start) * 1000:.2f}")
        print(f"warm_block: {block}")
        chain.close(w3)

    # A burst back to back: still one block per transaction, and block time stays on the wall
    # clock (blocks share a second) rather than running a second ahead per block.
    with tempfile.TemporaryDirectory() as tmp:
        w3 = Web3(EmbeddedProvider(Path(tmp)))
        deployer = chain.dev_accounts()[1]
        ledger = chain.contract(
            w3,
            "CustodyLedger",
            chain.deploy_contracts(w3, deployer, {}, admin=deployer.address)["CustodyLedger"],
        )
        first = w3.eth.block_number + 1
        burst(w3, anchor_transactions(w3, deployer, ledger, count), "tx_per_s_burst")
        lead = w3.eth.get_block("latest")["timestamp"] - time.time()
        print(f"burst_blocks_for_{count}_tx: {w3.eth.block_number - first + 1}")
        print(f"block_time_ahead_of_clock_s_after_burst: {lead:.1f}")
        w3.provider.close()


def burst(w3, raws: list[bytes], name: str) -> list[bytes]:
    """Send pre-signed transactions back to back, then wait for every receipt."""
    start = time.perf_counter()
    hashes = [w3.eth.send_raw_transaction(raw) for raw in raws]
    receipts = [w3.eth.wait_for_transaction_receipt(h, poll_latency=0.05) for h in hashes]
    assert all(receipt["status"] == 1 for receipt in receipts)
    print(f"{name}: {len(raws) / (time.perf_counter() - start):.1f}")
    return hashes


if __name__ == "__main__":
    main()
