"""The chain writer against real chains: embedded py-evm and anvil, SQLite and PostgreSQL.

The crash test runs the writer in child processes that are killed with SIGKILL at points
drawn at random (seeded; the seed is printed, and PROVENANCE_CRASH_SEED replays a run), then
checks on-chain that every owed write was mined exactly once, in order.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session, select

from provenance_api import chain, db
from provenance_api.app import create_app
from provenance_api.chain_writer import ChainWriter, WriterSettings, lease_status
from provenance_api.cli import ensure_deployed, fund_operator
from provenance_api.models import ChainTxAttempt, ChainWrite
from provenance_api.services.chain_writes import owe_write, unsettled_count

ROOT = Path(__file__).resolve().parents[2]


def rpc(url: str, method: str, params: list | None = None) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        reply = json.load(response)
    assert "error" not in reply, reply
    return reply["result"]


class Miner:
    """Mines an anvil block every `interval` seconds (automine off), like a real network."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        self.url, self.interval = url, interval
        self.stop = threading.Event()
        rpc(url, "evm_setAutomine", [False])
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            rpc(self.url, "evm_mine")

    def __enter__(self) -> Miner:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def make_app(tmp_path: Path, chain_url: str = "", database_url: str = "", **extra):
    settings = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "CHAIN_URL": chain_url,
        "OPERATOR_KEY": Account.create().key.hex(),
        "WRITER_POLL_SECONDS": 0.05,
        **extra,
    }
    if database_url:
        settings["DATABASE_URL"] = database_url
    app = create_app(settings)
    db.upgrade(app.config["DATABASE_URL"])
    rt = app.extensions["provenance"]
    fund_operator(rt)
    ensure_deployed(rt)
    return app, rt


def owe_anchors(rt, roots: list[bytes], prefix: str = "anchor") -> None:
    with db.session_scope(rt.engine) as session:
        for index, root in enumerate(roots):
            owe_write(
                session,
                sender=rt.operator.address,
                contract="CustodyLedger",
                function="anchor",
                args=[root, 1, os.urandom(32)],
                idempotency_key=f"{prefix}-{index}",
            )


def rows(rt) -> list[ChainWrite]:
    """The owed writes of a test, without the deployments `make_app` owed."""
    with Session(rt.engine) as session:
        query = select(ChainWrite).where(ChainWrite.function != "constructor")
        return list(session.exec(query.order_by(ChainWrite.id)))


def attempts_of(rt, write_id: int) -> list[ChainTxAttempt]:
    with Session(rt.engine) as session:
        return list(
            session.exec(
                select(ChainTxAttempt)
                .where(ChainTxAttempt.write_id == write_id)
                .order_by(ChainTxAttempt.id)
            )
        )


def drain(writer: ChainWriter, rt, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        writer.tick()
        with Session(rt.engine) as session:
            if unsettled_count(session, rt.operator.address) == 0:
                return
        assert time.monotonic() < deadline, "writes still unsettled"
        time.sleep(0.05)


def anchored_roots(rt) -> list[bytes]:
    with Session(rt.engine) as session:
        from provenance_api.services.deployments import known_addresses

        address = known_addresses(session, rt.w3.eth.chain_id)["CustodyLedger"]
    ledger = chain.contract(rt.w3, "CustodyLedger", address)
    logs = ledger.events.RootAnchored().get_logs(from_block=0)
    ordered = sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
    return [bytes(log["args"]["root"]) for log in ordered]


def test_embedded_writes_confirm_in_order_and_reverts_fail_with_reason(tmp_path):
    _app, rt = make_app(tmp_path)
    roots = [os.urandom(32) for _ in range(5)]
    owe_anchors(rt, roots)
    owe_anchors(rt, [roots[0]], prefix="duplicate")  # the ledger refuses a root twice
    after = os.urandom(32)
    owe_anchors(rt, [after], prefix="after")
    writer = rt.new_writer()
    drain(writer, rt)
    settled = rows(rt)
    assert [r.status for r in settled] == ["confirmed"] * 5 + ["failed", "confirmed"]
    assert "LedgerRootAlreadyAnchored" in settled[5].error
    start = rt.w3.eth.get_transaction_count(rt.operator.address) - len(settled)
    # The reverted write consumed its nonce; the one after it is still valid.
    assert [r.nonce for r in settled] == list(range(start, start + 7))
    assert anchored_roots(rt) == [*roots, after]
    for row in settled:
        receipt = rt.w3.eth.get_transaction_receipt(row.mined_tx_hash)
        assert receipt["blockNumber"] == row.block_number
    rt.close()


def test_unencodable_write_fails_without_consuming_a_nonce(tmp_path):
    _app, rt = make_app(tmp_path)
    with db.session_scope(rt.engine) as session:
        for key, contract, function, args in [
            ("a", "CustodyLedger", "anchor", ["0x" + "01" * 32, 1, "0x" + "00" * 32]),
            ("b", "CustodyLedger", "anchor", ["not hex", 1, "0x"]),
            ("c", "NoSuchContract", "anchor", []),
            ("d", "CustodyLedger", "noSuchFunction", []),
            ("e", "CustodyLedger", "anchor", ["0x" + "02" * 32, 1, "0x" + "03" * 32]),
        ]:
            owe_write(
                session,
                sender=rt.operator.address,
                contract=contract,
                function=function,
                args=args,
                idempotency_key=key,
            )
    drain(rt.new_writer(), rt)
    settled = rows(rt)
    assert [r.status for r in settled] == ["confirmed", "failed", "failed", "failed", "confirmed"]
    assert "anchor(bytes32,uint32,bytes32)" in settled[1].error
    assert "NoSuchContract" in settled[2].error
    assert "noSuchFunction" in settled[3].error
    assert settled[4].nonce == settled[0].nonce + 1
    assert all(r.nonce is None for r in settled[1:4])
    rt.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_one_writer_per_key(tmp_path, request, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    _app, rt = make_app(tmp_path, database_url=url)
    first, second = rt.new_writer(), rt.new_writer()
    assert first.take_lease()
    assert not second.take_lease()
    assert second.tick() is False  # no lease: signs nothing
    assert lease_status(rt.engine, rt.operator.address)["holder"] == first.holder
    first.release()
    assert second.take_lease()
    assert not first.take_lease()
    rt.close()


@pytest.mark.anvil
@pytest.mark.postgres
def test_anvil_and_postgres_with_confirmation_depth(tmp_path, anvil_url, postgres_url):
    with Miner(anvil_url, 0.1):
        _app, rt = make_app(tmp_path, anvil_url, postgres_url, CONFIRMATIONS=3)
        roots = [os.urandom(32) for _ in range(12)]
        owe_anchors(rt, roots)
        writer = rt.new_writer()
        drain(writer, rt)
        head = rt.w3.eth.block_number
        for row in rows(rt):
            assert row.status == "confirmed"
            assert row.confirmations >= 3
            assert head - row.block_number >= 3
        assert anchored_roots(rt) == roots
    rt.close()


@pytest.mark.anvil
def test_dropped_tx_is_resent_then_replaced_with_higher_fees(tmp_path, anvil_url):
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0)
    rpc(anvil_url, "evm_setAutomine", [False])
    root = os.urandom(32)
    owe_anchors(rt, [root])
    settings = WriterSettings(rebroadcast_seconds=0.2, bump_seconds=1.0, fee_bump_percent=12.5)
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings)
    writer.tick()
    (row,) = rows(rt)
    (first,) = attempts_of(rt, row.id)
    assert row.status == "sent"
    assert rt.w3.eth.get_transaction(first.tx_hash)["nonce"] == row.nonce

    rpc(anvil_url, "anvil_dropTransaction", [first.tx_hash])
    time.sleep(0.3)
    writer.tick()  # not known any more: the recorded raw tx goes out again, unchanged
    assert rt.w3.eth.get_transaction(first.tx_hash)["hash"].to_0x_hex() == first.tx_hash
    assert len(attempts_of(rt, row.id)) == 1

    rpc(anvil_url, "anvil_dropTransaction", [first.tx_hash])
    time.sleep(1.1)
    writer.tick()  # stuck too long: same nonce, fees up by 12.5%
    _first_again, second = attempts_of(rt, row.id)
    assert second.nonce == first.nonce
    assert second.max_fee_per_gas * 100 >= first.max_fee_per_gas * 112
    assert second.max_priority_fee_per_gas * 100 >= first.max_priority_fee_per_gas * 112
    rpc(anvil_url, "evm_mine")
    writer.tick()
    (row,) = rows(rt)
    assert row.status == "confirmed"
    assert row.mined_tx_hash == second.tx_hash
    assert rt.w3.eth.get_transaction_count(rt.operator.address) == row.nonce + 1
    assert anchored_roots(rt) == [root]
    rt.close()


@pytest.mark.anvil
def test_whichever_attempt_is_mined_settles_the_row(tmp_path, anvil_url):
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0)
    rpc(anvil_url, "evm_setAutomine", [False])
    owe_anchors(rt, [os.urandom(32)])
    settings = WriterSettings(rebroadcast_seconds=0.1, bump_seconds=0.3)
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings)
    writer.tick()
    (row,) = rows(rt)
    (first,) = attempts_of(rt, row.id)
    rpc(anvil_url, "anvil_dropTransaction", [first.tx_hash])
    time.sleep(0.4)
    writer.tick()  # records and sends a replacement
    _, second = attempts_of(rt, row.id)
    # The network mines the ORIGINAL after all (it was still in some other node's pool).
    rpc(anvil_url, "anvil_dropTransaction", [second.tx_hash])
    rt.w3.eth.send_raw_transaction(bytes.fromhex(first.raw_tx[2:]))
    rpc(anvil_url, "evm_mine")
    writer.tick()
    (row,) = rows(rt)
    assert row.status == "confirmed"
    assert row.mined_tx_hash == first.tx_hash
    assert rt.w3.eth.get_transaction_count(rt.operator.address) == row.nonce + 1
    rt.close()


CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from provenance_api.app import create_app
    from provenance_api.services.chain_writes import unsettled_count
    from sqlmodel import Session

    mode, at = sys.argv[1], int(sys.argv[2])
    rt = create_app().extensions["provenance"]
    writer = rt.new_writer()
    calls = {"n": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def counted(real, before):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if before and calls["n"] == at:
                die()
            result = real(*args, **kwargs)
            if not before and calls["n"] == at:
                die()
            return result
        return wrapper

    if mode == "before_broadcast":  # recorded and committed, never sent
        writer.w3.eth.send_raw_transaction = counted(writer.w3.eth.send_raw_transaction, True)
    elif mode == "after_broadcast":  # sent, the DB does not know it was
        writer.w3.eth.send_raw_transaction = counted(writer.w3.eth.send_raw_transaction, False)
    elif mode == "mid_batch":  # some rows of a batch signed, the transaction not committed
        writer._sign = counted(writer._sign, True)
    while True:
        writer.tick()
        with Session(rt.engine) as session:
            if unsettled_count(session) == 0:
                break
        time.sleep(0.05)
    """
)


@pytest.mark.anvil
@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_killed_writer_never_loses_duplicates_or_reorders(tmp_path, anvil_url, request, backend):
    seed = int(os.environ.get("PROVENANCE_CRASH_SEED") or random.randrange(2**32))
    print(f"crash test seed: {seed} (PROVENANCE_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    kills = [
        (rng.choice(["before_broadcast", "after_broadcast", "mid_batch"]), rng.randint(1, 4))
        for _ in range(5)
    ]
    run_for = rng.uniform(0.3, 2.5)
    where = f"seed {seed}: kills {kills}, then a kill after {run_for:.2f} s"
    n = 36
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    with Miner(anvil_url, 0.15):
        app, rt = make_app(tmp_path, anvil_url, url, CONFIRMATIONS=1)
        deployed_nonce = rt.w3.eth.get_transaction_count(rt.operator.address)
        roots = [os.urandom(32) for _ in range(n)]
        owe_anchors(rt, roots)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PROVENANCE_DATA_DIR": app.config["DATA_DIR"],
            "PROVENANCE_DATABASE_URL": app.config["DATABASE_URL"],
            "PROVENANCE_CHAIN_URL": anvil_url,
            "PROVENANCE_CONFIRMATIONS": "1",
            "PROVENANCE_OPERATOR_KEY": app.config["OPERATOR_KEY"],
            "PROVENANCE_SECRET_KEY": "test",
            "PROVENANCE_KEY_ENCRYPTION_KEY": app.config["KEY_ENCRYPTION_KEY"],
            "PROVENANCE_WRITER_BATCH": "6",
            "PROVENANCE_WRITER_REBROADCAST_SECONDS": "0.5",
            "PROVENANCE_WRITER_BUMP_SECONDS": "600",
            # A killed holder's lease is waited out: keep the test short.
            "PROVENANCE_WRITER_LEASE_SECONDS": "1",
        }

        def child(mode: str, at: int = 0) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-c", CHILD, mode, str(at)],
                env=env,
                cwd=tmp_path,
                stderr=subprocess.PIPE,
                text=True,
            )

        for mode, at in kills:
            process = child(mode, at)
            _, err = process.communicate(timeout=90)
            assert process.returncode == -signal.SIGKILL, (
                f"{mode} at {at} not reached ({where}): {err[-2000:]}"
            )
        process = child("run")
        time.sleep(run_for)  # a kill at whatever moment the writer happens to be in
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        process = child("run")
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"{where}: {err[-3000:]}"

        settled = rows(rt)
        assert [r.status for r in settled] == ["confirmed"] * n, where
        # Contiguous nonces in the order the writes were owed.
        assert [r.nonce for r in settled] == list(range(deployed_nonce, deployed_nonce + n)), where
        for row in settled:
            attempts = attempts_of(rt, row.id)
            # Restarts re-sent the recorded transaction; none was signed twice.
            assert len(attempts) == 1, where
            assert row.mined_tx_hash == attempts[0].tx_hash, where
            tx = rt.w3.eth.get_transaction(row.mined_tx_hash)
            assert tx["nonce"] == row.nonce, where
        assert anchored_roots(rt) == roots, where  # each root exactly once, in order
        assert rt.w3.eth.get_transaction_count(rt.operator.address) == deployed_nonce + n, where
    rt.close()


@pytest.mark.anvil
def test_refused_send_is_retried_and_reported_without_blocking(tmp_path, anvil_url):
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0)
    poor = Account.create()  # no coin: the node refuses its transactions
    with db.session_scope(rt.engine) as session:
        owe_write(
            session,
            sender=poor.address,
            contract="CustodyLedger",
            function="anchor",
            args=["0x" + "05" * 32, 1, "0x" + "06" * 32],
            idempotency_key="poor",
        )
    writer = ChainWriter(rt.engine, rt.w3, poor, WriterSettings(poll_seconds=0.01))
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while lease_status(rt.engine, poor.address)["last_error"] is None:
            assert time.monotonic() < deadline, "the refusal was not reported"
            time.sleep(0.05)
        assert "insufficient funds" in lease_status(rt.engine, poor.address)["last_error"].lower()
        (row,) = rows(rt)
        assert row.status == "signed"  # recorded, not lost, waiting to be sent
        chain.fund_for_development(rt.w3, poor.address, 10**18)
        while rows(rt)[0].status not in ("confirmed", "failed"):
            assert time.monotonic() < deadline + 20, "the write was not retried"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    (row,) = rows(rt)
    # Mined once funded; the ledger refuses a sender without OPERATOR_ROLE, and says so.
    assert row.status == "failed"
    assert "AccessControlUnauthorizedAccount" in row.error
    assert len(attempts_of(rt, row.id)) == 1
    assert lease_status(rt.engine, poor.address)["running"] is False  # released on stop
    rt.close()
