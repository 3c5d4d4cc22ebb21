"""The embedded chain keeps its state across restarts, and a killed process leaves it whole.

Each scenario runs the chain in child Python processes, as the service runs it, so that a
restart is a real restart (nothing cached in the test's interpreter) and SIGKILL is real.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound

from provenance_api import chain
from provenance_api.chain.embedded import STATE_FILE, EmbeddedProvider
from tests.conftest import ROOT

# The child: `setup` deploys and anchors one batch, `check` reads it back, `hammer` anchors
# batches until killed, printing one JSON line per mined transaction.
CHILD = r"""
import json, os, sys
from pathlib import Path

from eth_account import Account
from eth_hash.auto import keccak

from contracts_abi.merkle import custody_tree
from provenance_api import chain

command, state_dir, key = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
w3 = chain.connect(None, state_dir)
deployer = Account.from_key(key)


def send(to, data):
    transaction = {
        "to": to, "data": data, "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
        "gas": 200_000, **chain.fee_fields(w3),
    }
    signed = deployer.sign_transaction(transaction)
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))


def deploy():
    return chain.deploy_contracts(w3, deployer, {}, admin=deployer.address)


def anchor(ledger, seed):
    tree = custody_tree([[seed, bytes(31) + b"\x05"], [bytes(31) + b"\x02", bytes(31) + b"\x06"]])
    # Batch id from the seed: with a fixed deployer, a block's database writes are the same
    # on every run, which the crash test counts on.
    batch_id = keccak(b"batch" + seed)
    data = ledger.functions.anchor(tree.root, 2, batch_id)._encode_transaction_data()
    return tree, send(ledger.address, data)


if command == "setup":
    chain.fund_for_development(w3, deployer.address, 10**20)
    addresses = deploy()
    ledger = chain.contract(w3, "CustodyLedger", addresses["CustodyLedger"])
    tree, receipt = anchor(ledger, b"\x01" * 32)
    print(json.dumps({
        "addresses": addresses,
        "root": tree.root.hex(), "digest": tree.values[0][0].hex(), "salt": tree.values[0][1].hex(),
        "proof": [p.hex() for p in tree.proof(0)],
        "tx": receipt["transactionHash"].hex(), "status": chain.chain_status(w3),
    }))
elif command == "check":
    request = json.loads(sys.stdin.read())
    ledger = chain.contract(w3, "CustodyLedger", request["addresses"]["CustodyLedger"])
    print(json.dumps({
        "status": chain.chain_status(w3),
        "code": {n: w3.eth.get_code(a).hex() for n, a in request["addresses"].items()},
        "verified": ledger.functions.verifyEvent(
            bytes.fromhex(request["root"]), bytes.fromhex(request["digest"]),
            bytes.fromhex(request["salt"]),
            [bytes.fromhex(p) for p in request["proof"]],
        ).call(),
        "receipt_status": w3.eth.get_transaction_receipt(request["tx"])["status"],
    }))
elif command == "die":
    # Exit abruptly right after a given share of the next block's writes: mid-state,
    # mid-header or just before the commit. A first block counts how many writes one takes.
    from provenance_api.chain import statedb

    chain.fund_for_development(w3, deployer.address, 10**20)
    ledger = chain.contract(
        w3, "CustodyLedger", deploy()["CustodyLedger"]
    )
    share, writes, write = float(sys.argv[4]), [0], statedb.SqliteKV.__setitem__

    def counting_write(self, key, value):
        write(self, key, value)
        writes[0] += 1

    statedb.SqliteKV.__setitem__ = counting_write
    anchor(ledger, b"\x04" * 32)
    per_block, die_after = writes[0], max(1, round(writes[0] * share))
    print(json.dumps({
        "block": w3.eth.block_number,
        "nonce": w3.eth.get_transaction_count(deployer.address),
        "ledger": ledger.address,
        "writes_per_block": per_block,
    }), flush=True)
    writes[0] = 0

    def dying_write(self, key, value):
        write(self, key, value)
        writes[0] += 1
        if writes[0] == die_after:
            os._exit(137)

    statedb.SqliteKV.__setitem__ = dying_write
    anchor(ledger, b"\x05" * 32)
    sys.exit(f"the write to die after never came ({writes[0]} of {per_block} expected)")
elif command == "hammer":
    if w3.eth.get_balance(deployer.address) == 0:
        chain.fund_for_development(w3, deployer.address, 10**20)
    ledger = chain.contract(
        w3, "CustodyLedger", deploy()["CustodyLedger"]
    )
    while True:
        tree, receipt = anchor(ledger, os.urandom(32))
        print(json.dumps({
            "tx": receipt["transactionHash"].hex(), "block": receipt["blockNumber"],
            "root": tree.root.hex(), "ledger": ledger.address,
        }), flush=True)
"""
# No chain.close() in the child: an exit without an orderly shutdown must lose nothing mined.


def run_child(tmp_path: Path, *args: str, stdin: str = "") -> dict:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_state_survives_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    key = Account.create().key.hex()

    written = run_child(tmp_path, "setup", str(state_dir), key)
    read = run_child(tmp_path, "check", str(state_dir), key, stdin=json.dumps(written))

    assert read["status"] == written["status"]
    assert read["status"]["chain_id"] == chain.EMBEDDED_CHAIN_ID
    assert read["status"]["block"] == 5  # fund, three deployments (escrow after), anchor
    assert read["verified"] is True
    assert read["receipt_status"] == 1
    for name, code in read["code"].items():
        assert len(code) > 1000, name


def audit(w3, deployer: str, mined: list[dict]) -> None:
    """Every recorded block is whole, and every transaction the killed process saw mined."""
    head = w3.eth.block_number
    assert head >= max((entry["block"] for entry in mined), default=0)
    sent_by_deployer = 0
    for number in range(1, head + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        assert block["number"] == number
        assert block["parentHash"] == w3.eth.get_block(number - 1)["hash"]
        for transaction in block["transactions"]:
            receipt = w3.eth.get_transaction_receipt(transaction["hash"])
            assert receipt["blockNumber"] == number
            sent_by_deployer += transaction["from"] == deployer
    # The account state agrees with the blocks: one nonce per transaction of the deployer.
    assert w3.eth.get_transaction_count(deployer) == sent_by_deployer
    for entry in mined:
        assert w3.eth.get_transaction_receipt(entry["tx"])["status"] == 1


@pytest.mark.slow
def test_sigkill_while_sending_leaves_a_whole_chain(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    deployer = Account.create()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    mined: list[dict] = []
    rng = random.Random(7)
    for _round in range(3):
        with subprocess.Popen(
            [sys.executable, str(script), "hammer", str(state_dir), deployer.key.hex()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ) as child:
            try:
                for _ in range(rng.randrange(5, 20)):
                    line = child.stdout.readline()
                    assert line, child.stderr.read()
                    mined.append(json.loads(line))
            finally:
                # Killed at whatever point it has reached: sending, mining or committing.
                time.sleep(rng.random() * 0.05)
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL

        w3 = chain.connect(None, state_dir)
        try:
            audit(w3, deployer.address, mined)
            for entry in mined:
                ledger = chain.contract(w3, "CustodyLedger", entry["ledger"])
                assert ledger.functions.anchoredAt(bytes.fromhex(entry["root"])).call() > 0
        finally:
            chain.close(w3)


@pytest.mark.slow
# An anchor's block takes about 10 writes while the transaction runs, then about 7 while the
# block is stored (header, canonical number, head pointer, transaction index, ...), then the
# commit: the shares land in each of those phases, the last one just before the commit.
@pytest.mark.parametrize("share", [0.3, 0.65, 0.85, 1.0])
def test_crash_in_the_middle_of_a_block_leaves_the_block_before(
    tmp_path: Path, share: float
) -> None:
    state_dir = tmp_path / "chain"
    # A fixed key: the trie paths, hence the writes per block, do not vary between runs.
    deployer = Account.from_key(b"\x07" * 32)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    result = subprocess.run(
        [sys.executable, str(script), "die", str(state_dir), deployer.key.hex(), str(share)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 137, result.stderr
    before = json.loads(result.stdout)

    w3 = chain.connect(None, state_dir)
    try:
        assert w3.eth.block_number == before["block"]
        audit(w3, deployer.address, [])
        assert w3.eth.get_transaction_count(deployer.address) == before["nonce"]
        # The chain goes on from there: the same nonce is free again.
        ledger = chain.contract(w3, "CustodyLedger", before["ledger"])
        transaction = ledger.functions.anchor(b"\x05" * 32, 1, b"\x06" * 32).build_transaction(
            {"from": deployer.address, "nonce": before["nonce"]}
        )
        tx_hash = w3.eth.send_raw_transaction(
            deployer.sign_transaction(transaction).raw_transaction
        )
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["blockNumber"] == before["block"] + 1
    finally:
        chain.close(w3)


def test_state_of_another_chain_is_refused_in_words(tmp_path: Path) -> None:
    w3 = chain.connect(None, tmp_path)
    chain.close(w3)
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        db.execute("UPDATE meta SET value = '1' WHERE name = 'chain_id'")
    db.close()
    with pytest.raises(chain.ChainStateIncompatible, match="holds chain 1 in format 1"):
        chain.connect(None, tmp_path)
    # The refusal released the directory: nothing stays locked.
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        db.execute(f"UPDATE meta SET value = '{chain.EMBEDDED_CHAIN_ID}' WHERE name = 'chain_id'")
    db.close()
    chain.close(chain.connect(None, tmp_path))


def test_orderly_close_seals_the_pending_block(tmp_path: Path) -> None:
    """Without automine a transaction waits in the pending block; close seals it."""
    provider = EmbeddedProvider(tmp_path, automine=False)
    w3 = Web3(provider)
    sender = chain.dev_accounts()[2]
    transaction = {
        "to": sender.address,
        "gas": 21_000,
        "nonce": 0,
        "chainId": chain.EMBEDDED_CHAIN_ID,
        **chain.fee_fields(w3),
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(transaction).raw_transaction)
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(tx_hash)  # pending: no receipt yet
    assert w3.eth.get_transaction_count(sender.address, "pending") == 1
    provider.close()

    reopened = chain.connect(None, tmp_path)
    try:
        assert reopened.eth.get_transaction_receipt(tx_hash)["status"] == 1
        assert reopened.eth.get_transaction_count(sender.address) == 1
    finally:
        chain.close(reopened)


def test_a_file_that_is_not_chain_state_is_refused_in_words(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(chain.ChainStateIncompatible, match="not a readable chain state"):
        chain.connect(None, tmp_path)


def test_a_state_dir_that_is_a_file_is_refused_in_words(tmp_path: Path) -> None:
    (tmp_path / "chain").write_text("")
    with pytest.raises(chain.ChainConfigError, match="cannot create chain state directory"):
        chain.connect(None, tmp_path / "chain")
