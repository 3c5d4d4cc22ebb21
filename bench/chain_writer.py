"""Owed writes per second through the chain-writer outbox, embedded chain and anvil.

Run: python bench/chain_writer.py [--writes N] [--block-writes N]
Prints `chain_writer_embedded_writes_per_s: N` and `chain_writer_anvil_writes_per_s: N`
(automine, no confirmations), then `rpc_writes_per_s_2s_blocks: N`: anvil mining a block
every 2 s, CONFIRMATIONS=2, the default settings otherwise; timed from the first signature to
the last write confirmed at depth, so it includes the last writes' 2 confirmations.
Also `gas_per_custody_event_at_1000`: one anchor of 1,000 salted custody leaves sent through
the writer on the embedded chain, its receipt's gas divided by 1,000, and one event's
inclusion checked on-chain with `CustodyLedger.verifyEvent`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from sqlmodel import Session  # noqa: E402

from contracts_abi.merkle import custody_tree  # noqa: E402
from provenance_api import chain, db  # noqa: E402
from provenance_api.app import create_app  # noqa: E402
from provenance_api.cli import ensure_deployed, fund_operator  # noqa: E402
from provenance_api.models import ChainWrite  # noqa: E402
from provenance_api.services.chain_writes import owe_write, unsettled_count  # noqa: E402
from provenance_api.services.deployments import known_addresses  # noqa: E402

ANVIL = (
    ROOT / "contracts_abi" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_anvil(*extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    deadline = time.monotonic() + 20
    while True:
        try:
            request = urllib.request.Request(
                url, data=body.encode(), headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=1).close()
            return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("anvil did not start") from None
            time.sleep(0.05)


def writes_per_second(data_dir: Path, chain_url: str, writes: int, confirmations: int = 0) -> float:
    """Owe `writes` anchors in one transaction, then time the writer until all are confirmed."""
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data_dir),
            "CHAIN_URL": chain_url,
            "CONFIRMATIONS": confirmations,
            "OPERATOR_KEY": Account.create().key.hex(),
        }
    )
    rt = app.extensions["provenance"]
    db.upgrade(app.config["DATABASE_URL"])
    fund_operator(rt)
    ensure_deployed(rt)
    with db.session_scope(rt.engine) as session:
        for index in range(writes):
            owe_write(
                session,
                sender=rt.operator.address,
                contract="CustodyLedger",
                function="anchor",
                args=[os.urandom(32), 1, os.urandom(32)],
                idempotency_key=f"bench-{index}",
            )
    writer = rt.new_writer()
    began = time.perf_counter()
    while True:
        writer.tick()
        with Session(rt.engine) as session:
            if unsettled_count(session) == 0:
                break
    elapsed = time.perf_counter() - began
    rt.close()
    return writes / elapsed


def gas_per_salted_event(data_dir: Path, events: int = 1000) -> int:
    """Gas of one anchor of `events` salted leaves, per event, sent through the writer."""
    app = create_app(
        {"TESTING": True, "DATA_DIR": str(data_dir), "OPERATOR_KEY": Account.create().key.hex()}
    )
    rt = app.extensions["provenance"]
    db.upgrade(app.config["DATABASE_URL"])
    fund_operator(rt)
    ensure_deployed(rt)
    # Distinct event digests and a fresh random salt each, as the anchoring service makes them.
    leaves = [(os.urandom(32), os.urandom(32)) for _ in range(events)]
    tree = custody_tree(leaves)
    with db.session_scope(rt.engine) as session:
        write = owe_write(
            session,
            sender=rt.operator.address,
            contract="CustodyLedger",
            function="anchor",
            args=[tree.root, events, os.urandom(32)],
            idempotency_key="bench-salted-anchor",
        )
        write_id = write.id
    writer = rt.new_writer()
    while True:
        writer.tick()
        with Session(rt.engine) as session:
            if unsettled_count(session) == 0:
                row = session.get(ChainWrite, write_id)
                assert row is not None and row.status == "confirmed", row
                mined = row.mined_tx_hash
                addresses = known_addresses(session, rt.w3.eth.chain_id)
                break
    gas = rt.w3.eth.get_transaction_receipt(mined)["gasUsed"]
    ledger = chain.contract(rt.w3, "CustodyLedger", addresses["CustodyLedger"])
    index = events // 2
    digest, salt = leaves[index]
    assert ledger.functions.verifyEvent(tree.root, digest, salt, tree.proof(index)).call()
    rt.close()
    return gas // events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200, help="owed writes per backend")
    parser.add_argument(
        "--block-writes", type=int, default=2000, help="owed writes with 2 s blocks"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate = writes_per_second(Path(tmp) / "embedded", "", args.writes)
        print(f"chain_writer_embedded_writes_per_s: {rate:.1f}")
        gas = gas_per_salted_event(Path(tmp) / "salted")
        print(f"gas_per_custody_event_at_1000: {gas}")
        if not ANVIL.exists():
            print(f"anvil not installed at {ANVIL}; run npm ci in contracts_abi", file=sys.stderr)
            return
        anvil, url = start_anvil()
        try:
            rate = writes_per_second(Path(tmp) / "anvil", url, args.writes)
            print(f"chain_writer_anvil_writes_per_s: {rate:.1f}")
        finally:
            anvil.terminate()
            anvil.wait(timeout=10)
        anvil, url = start_anvil("--block-time", "2")
        try:
            rate = writes_per_second(Path(tmp) / "blocks", url, args.block_writes, 2)
            print(f"rpc_writes_per_s_2s_blocks: {rate:.1f}")
        finally:
            anvil.terminate()
            anvil.wait(timeout=10)


if __name__ == "__main__":
    main()
