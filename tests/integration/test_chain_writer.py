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
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from eth_account import Account
from sqlmodel import Session, select

from provenance_api import chain, db
from provenance_api.app import create_app
from provenance_api.chain_writer import (
    ChainWriter,
    WriterSettings,
    lease_status,
    settings_from_config,
)
from provenance_api.cli import ensure_deployed, fund_operator
from provenance_api.models import ChainTxAttempt, ChainWrite
from provenance_api.services.chain_writes import (
    list_writes,
    owe_write,
    retry_write,
    unsettled_count,
)
from provenance_api.services.deployments import constructor_args, known_addresses

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
        query = select(ChainWrite).where(~ChainWrite.idempotency_key.startswith("deploy-"))
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


def unsettled(rt) -> int:
    with Session(rt.engine) as session:
        return unsettled_count(session, rt.operator.address)


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


def test_the_lease_holder_is_a_random_instance_id_and_a_dead_one_is_waited_out(tmp_path):
    _app, rt = make_app(tmp_path)
    clock = Clock()
    settings = WriterSettings(lease_seconds=15)
    first = ChainWriter(rt.engine, rt.w3, rt.operator, settings, clock=clock)
    second = ChainWriter(rt.engine, rt.w3, rt.operator, settings, clock=clock)
    # Containers share host names and PIDs: nothing of either is in the holder's name.
    assert len({first.holder, second.holder}) == 2
    assert socket.gethostname() not in first.holder and str(os.getpid()) not in first.holder
    assert first.take_lease()  # ...and then first dies without releasing
    clock.advance(14)
    assert not second.take_lease()
    clock.advance(2)
    assert second.take_lease()
    rt.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_fee_amounts_of_any_uint256_are_stored_exactly(tmp_path, request, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    url = url or f"sqlite:///{tmp_path / 'wei.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    amounts = [0, 2**63 - 1, 2**63, 10**30 + 7, 2**256 - 1]
    with db.session_scope(engine) as session:
        write = owe_write(
            session,
            sender=Account.create().address,
            contract="CustodyLedger",
            function="anchor",
            args=[],
            idempotency_key="wei",
        )
        for index, amount in enumerate(amounts):
            session.add(
                ChainTxAttempt(
                    write_id=write.id,
                    tx_hash=f"0x{index:064x}",
                    nonce=0,
                    gas=21_000,
                    max_fee_per_gas=amount,
                    max_priority_fee_per_gas=amount,
                    raw_tx="0x",
                )
            )
    with Session(engine) as session:
        stored = session.exec(select(ChainTxAttempt).order_by(ChainTxAttempt.id)).all()
    assert [a.max_fee_per_gas for a in stored] == amounts
    assert [a.max_priority_fee_per_gas for a in stored] == amounts
    engine.dispose()


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


class Clock:
    """The writer's clock, moved by the test: an hour passes in a few seconds."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.anvil
def test_an_hour_without_funds_then_a_top_up_pays_the_normal_fee(tmp_path, anvil_url):
    cap = 20 * 10**9
    app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0, WRITER_MAX_FEE_PER_GAS_WEI=cap)
    operator = rt.operator.address
    balance = rt.w3.eth.get_balance(operator)
    rpc(anvil_url, "anvil_setBalance", [operator, "0x0"])
    roots = [os.urandom(32) for _ in range(4)]
    owe_anchors(rt, roots)
    clock = Clock()
    writer = ChainWriter(
        rt.engine, rt.w3, rt.operator, settings_from_config(app.config), clock=clock
    )
    for _ in range(60):  # a tick a minute for an hour, every send refused
        writer.tick()
        clock.advance(60)
    for row in rows(rt):
        assert row.status == "signed"
        assert "insufficient funds" in row.error.lower()  # on the row, not only in the log
    first_fees = {r.id: attempts_of(rt, r.id)[0].max_fee_per_gas for r in rows(rt)}
    assert all(len(attempts_of(rt, r.id)) == 1 for r in rows(rt))  # nothing accepted, no bump

    rpc(anvil_url, "anvil_setBalance", [operator, hex(balance)])
    deadline = time.monotonic() + 30
    while any(r.status != "confirmed" for r in rows(rt)):
        assert time.monotonic() < deadline, [(r.status, r.error) for r in rows(rt)]
        writer.tick()
        clock.advance(1)
    assert anchored_roots(rt) == roots  # the queue moved on, in order
    for row in rows(rt):
        (attempt,) = attempts_of(rt, row.id)
        assert attempt.max_fee_per_gas == first_fees[row.id] <= cap
        assert row.error is None
        tx = rt.w3.eth.get_transaction(row.mined_tx_hash)
        assert tx["maxFeePerGas"] <= cap
    rt.close()


@pytest.mark.anvil
def test_fees_stop_at_the_cap_while_a_write_is_stuck(tmp_path, anvil_url):
    cap = 3 * 10**9
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0)
    rpc(anvil_url, "evm_setAutomine", [False])
    owe_anchors(rt, [os.urandom(32)])
    settings = WriterSettings(bump_seconds=60, max_fee_per_gas=cap, max_fee_per_write=None)
    clock = Clock()
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings, clock=clock)
    for _ in range(120):  # two hours unmined
        writer.tick()
        clock.advance(60)
    (row,) = rows(rt)
    attempts = attempts_of(rt, row.id)
    assert 1 < len(attempts) < 12
    assert all(a.max_fee_per_gas <= cap for a in attempts)
    rpc(anvil_url, "evm_mine")
    writer.tick()
    assert rows(rt)[0].status == "confirmed"
    rt.close()


@pytest.mark.anvil
def test_fallback_gas_above_the_block_gas_limit_is_clamped(tmp_path, anvil_url):
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0, WRITER_FALLBACK_GAS=10**9)
    root = os.urandom(32)
    owe_anchors(rt, [root])
    with db.session_scope(rt.engine) as session:  # estimation reverts: the fallback gas is used
        owe_write(
            session,
            sender=rt.operator.address,
            contract="CustodyLedger",
            function="anchor",
            args=[os.urandom(32), 0, os.urandom(32)],
            idempotency_key="empty batch",
        )
    after = os.urandom(32)
    owe_anchors(rt, [after], prefix="after")
    drain(rt.new_writer(), rt)
    first, empty, last = rows(rt)
    assert (first.status, empty.status, last.status) == ("confirmed", "failed", "confirmed")
    limit = rt.w3.eth.get_block("latest")["gasLimit"]
    assert attempts_of(rt, empty.id)[0].gas == limit
    assert "LedgerInvalidBatch" in empty.error
    assert anchored_roots(rt) == [root, after]
    rt.close()


@pytest.mark.anvil
def test_a_write_the_node_always_refuses_is_filled_and_failed_and_the_queue_moves_on(
    tmp_path, anvil_url
):
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0)
    rpc(anvil_url, "evm_setAutomine", [False])
    owe_anchors(rt, [os.urandom(32)], prefix="before")
    with db.session_scope(rt.engine) as session:  # a big one: a contract creation
        owe_write(
            session,
            sender=rt.operator.address,
            contract="CustodyLedger",
            function="constructor",
            args=constructor_args(rt.operator.address, rt.operator.address)["CustodyLedger"],
            idempotency_key="big",
        )
    later = [os.urandom(32) for _ in range(3)]
    owe_anchors(rt, later, prefix="later")
    settings = WriterSettings(rebroadcast_seconds=0.0, bump_seconds=3600, max_refusals=3)
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings)
    writer.tick()
    before, big, *rest = rows(rt)
    (attempt,) = attempts_of(rt, big.id)
    assert attempt.gas > 500_000 and big.status == "sent"
    # The node forgets it, and the network lowers its block gas limit: from now on every
    # send of the recorded transaction is refused for good.
    rpc(anvil_url, "anvil_dropTransaction", [attempt.tx_hash])
    rpc(anvil_url, "anvil_setBlockGasLimit", [hex(500_000)])
    deadline = time.monotonic() + 60
    while unsettled(rt):
        assert time.monotonic() < deadline, [(r.status, r.error) for r in rows(rt)]
        rpc(anvil_url, "evm_mine")
        writer.tick()
    before, big, *rest = rows(rt)
    assert before.status == "confirmed"
    assert [r.status for r in rest] == ["confirmed"] * 3
    assert big.status == "failed"
    assert "intrinsic gas too high" in big.error
    # Its nonce went to a 0-value transfer to self; the nonces stay contiguous.
    filler = attempts_of(rt, big.id)[-1]
    assert filler.filler and big.mined_tx_hash == filler.tx_hash
    tx = rt.w3.eth.get_transaction(filler.tx_hash)
    assert (tx["to"], tx["value"], tx["nonce"]) == (rt.operator.address, 0, big.nonce)
    assert [r.nonce for r in rows(rt)] == list(range(before.nonce, before.nonce + 5))
    assert anchored_roots(rt)[-3:] == later

    # The operator sees it and owes it again.
    client = _app.test_client()
    assert client.get("/healthz").get_json()["writer"]["failed"] == 1
    with db.session_scope(rt.engine) as session:
        assert [w.id for w in list_writes(session, failed=True)] == [big.id]
        retry = retry_write(session, big.id)
        assert retry_write(session, big.id).id == retry.id  # retrying twice is one retry
    assert client.get("/healthz").get_json()["writer"]["failed"] == 0
    rt.close()


@pytest.mark.anvil
def test_a_reorg_within_the_confirmation_depth_loses_and_repeats_nothing(tmp_path, anvil_url):
    with Miner(anvil_url, 0.1):
        _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=3)
    roots = [os.urandom(32) for _ in range(4)]
    owe_anchors(rt, roots)
    settings = WriterSettings(confirmations=3, rebroadcast_seconds=0.0, bump_seconds=3600)
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings)
    writer.tick()
    rpc(anvil_url, "evm_mine")
    writer.tick()
    mined = rows(rt)
    assert [r.status for r in mined] == ["mined"] * 4
    originals = {r.id: attempts_of(rt, r.id)[0] for r in mined}

    # The block goes; in the new one the operator's key spent the first write's nonce on
    # something else (a double spend the writer must not take as final).
    foreign = rt.operator.sign_transaction(
        {
            "type": 2,
            "chainId": rt.w3.eth.chain_id,
            "nonce": mined[0].nonce,
            "to": rt.operator.address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    rpc(anvil_url, "anvil_reorg", [1, [["0x" + bytes(foreign.raw_transaction).hex(), 0]]])
    for _ in range(3):
        writer.tick()
        assert not any(r.status in ("failed", "confirmed") for r in rows(rt)), "judged on one look"
        rpc(anvil_url, "evm_mine")
    # ...and that fork loses: the canonical chain holds the writes after all, once each.
    raw = [["0x" + originals[r.id].raw_tx.removeprefix("0x"), 0] for r in mined]
    rpc(anvil_url, "anvil_reorg", [4, raw])
    deadline = time.monotonic() + 30
    while unsettled(rt):
        assert time.monotonic() < deadline, [(r.status, r.error) for r in rows(rt)]
        rpc(anvil_url, "evm_mine")
        writer.tick()
    settled = rows(rt)
    assert [r.status for r in settled] == ["confirmed"] * 4
    for row in settled:
        assert row.mined_tx_hash == originals[row.id].tx_hash
        assert len(attempts_of(rt, row.id)) == 1
        assert rt.w3.eth.get_block_number() - row.block_number >= 3
    assert anchored_roots(rt) == roots
    rt.close()


@pytest.mark.anvil
def test_a_reorg_that_drops_mined_writes_sends_them_back_and_mines_them_once(tmp_path, anvil_url):
    with Miner(anvil_url, 0.1):
        _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=2)
    roots = [os.urandom(32) for _ in range(5)]
    owe_anchors(rt, roots)
    settings = WriterSettings(confirmations=2, rebroadcast_seconds=0.0, bump_seconds=3600)
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings)
    writer.tick()
    rpc(anvil_url, "evm_mine")
    writer.tick()
    assert [r.status for r in rows(rt)] == ["mined"] * 5
    rpc(anvil_url, "anvil_reorg", [1, []])  # the block is replaced by an empty one
    rpc(anvil_url, "evm_mine")
    rpc(anvil_url, "evm_mine")
    writer.tick()  # deep enough to look again: no receipt, back to sent, re-sent as recorded
    assert [r.status for r in rows(rt)] == ["sent"] * 5
    deadline = time.monotonic() + 30
    while unsettled(rt):
        assert time.monotonic() < deadline, [(r.status, r.error) for r in rows(rt)]
        rpc(anvil_url, "evm_mine")
        writer.tick()
    assert [r.status for r in rows(rt)] == ["confirmed"] * 5
    assert all(len(attempts_of(rt, r.id)) == 1 for r in rows(rt))
    assert anchored_roots(rt) == roots
    rt.close()


def test_an_already_anchored_batch_is_done_not_failed(tmp_path):
    _app, rt = make_app(tmp_path)
    root, batch = os.urandom(32), os.urandom(32)
    other = os.urandom(32)
    with db.session_scope(rt.engine) as session:
        for key, args in [
            ("first", [root, 1, batch]),
            ("retried", [root, 1, batch]),  # the same batch, owed again under another key
            ("other-batch", [root, 1, other]),  # the same root for another batch: an error
        ]:
            owe_write(
                session,
                sender=rt.operator.address,
                contract="CustodyLedger",
                function="anchor",
                args=args,
                idempotency_key=key,
            )
    drain(rt.new_writer(), rt)
    first, retried, other_batch = rows(rt)
    assert first.status == "confirmed" and first.error is None
    assert retried.status == "confirmed"
    assert "already done" in retried.error
    assert other_batch.status == "failed"
    assert "LedgerRootAlreadyAnchored" in other_batch.error
    rt.close()


def test_deploys_go_through_the_outbox(tmp_path):
    _app, rt = make_app(tmp_path)  # make_app deployed
    with Session(rt.engine) as session:
        deploys = list(session.exec(select(ChainWrite).where(ChainWrite.function == "constructor")))
        addresses = known_addresses(session, rt.w3.eth.chain_id)
    assert sorted(d.contract for d in deploys) == sorted(addresses)
    for row in deploys:
        assert row.status == "confirmed"
        assert row.contract_address == addresses[row.contract]
        assert row.to_address is None
    assert sorted(r.nonce for r in deploys) == [0, 1, 2]  # the operator's first nonces
    assert ensure_deployed(rt) == addresses  # nothing owed twice
    with Session(rt.engine) as session:
        count = session.exec(select(sa.func.count()).select_from(ChainWrite)).one()
    assert count == len(deploys)
    rt.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_simultaneous_enqueues_of_one_key_answer_with_one_write(tmp_path, request, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    url = url or f"sqlite:///{tmp_path / 'race.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url, pool_size=20) if backend == "postgres" else db.make_engine(url)
    sender = Account.create().address
    threads = 12
    barrier = threading.Barrier(threads)
    results: list[object] = []

    def enqueue() -> None:
        try:
            if backend == "sqlite":
                # A write transaction holds SQLite's one write lock from its BEGIN: meet first.
                barrier.wait(timeout=10)
            with db.session_scope(engine) as session:
                if backend == "postgres":
                    # Each looks before any inserts: the window the race needs.
                    query = select(ChainWrite).where(ChainWrite.idempotency_key == "k")
                    assert session.exec(query).first() is None
                    barrier.wait(timeout=10)
                row = owe_write(
                    session,
                    sender=sender,
                    contract="CustodyLedger",
                    function="anchor",
                    args=["0x" + "01" * 32, 1, "0x" + "02" * 32],
                    idempotency_key="k",
                )
                row_id = row.id
            results.append(row_id)
        except Exception as exc:
            results.append(exc)

    for _round in range(3):
        results.clear()
        with db.session_scope(engine) as session:
            session.exec(sa.delete(ChainWrite))
        barrier.reset()
        workers = [threading.Thread(target=enqueue) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors
        with Session(engine) as session:
            (only,) = session.exec(select(ChainWrite)).all()
        assert set(results) == {only.id}
    engine.dispose()


def test_writes_list_and_retry_through_the_cli(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from provenance_api import config
    from provenance_api.cli import cli

    for name in config.SECRET_SETTINGS:
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    settings = config.build({"DATA_DIR": str(tmp_path)})
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli, ["chain", "deploy"], env=env)
    assert result.exit_code == 0, result.output
    operator = Account.from_key(settings["OPERATOR_KEY"]).address
    engine = db.make_engine(settings["DATABASE_URL"])
    with db.session_scope(engine) as session:
        for key, count in [("good", 1), ("empty", 0)]:  # an empty batch reverts
            owe_write(
                session,
                sender=operator,
                contract="CustodyLedger",
                function="anchor",
                args=[os.urandom(32), count, os.urandom(32)],
                idempotency_key=key,
            )
    result = runner.invoke(cli, ["worker", "--once"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["worker", "--once"], env=env)  # settles what was sent
    assert result.exit_code == 0, result.output

    result = runner.invoke(cli, ["writes", "list", "--failed", "--json"], env=env)
    assert result.exit_code == 0, result.output
    (failed,) = json.loads(result.output)
    assert failed["status"] == "failed" and "LedgerInvalidBatch" in failed["error"]
    result = runner.invoke(cli, ["writes", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "failed" in result.output and "LedgerInvalidBatch" in result.output
    assert result.output.count("confirmed") == 4  # three deployments and the good anchor

    result = runner.invoke(cli, ["writes", "retry", str(failed["id"]), "--json"], env=env)
    assert result.exit_code == 0, result.output
    retried = json.loads(result.output)
    assert (retried["status"], retried["retry_of"]) == ("pending", failed["id"])
    assert retried["args"] == failed["args"]
    again = runner.invoke(cli, ["writes", "retry", str(failed["id"])], env=env)
    assert again.exit_code == 0 and f"as write {retried['id']}" in again.output
    result = runner.invoke(cli, ["writes", "list", "--failed"], env=env)
    assert result.output.strip() == "no failed writes"

    for args, code, words in [
        (["writes", "retry", "999999"], 1, "no chain write 999999"),
        (["writes", "retry", str(retried["id"])], 1, "only a failed write"),
        (["writes", "retry", "abc"], 2, "not a valid integer"),
        (["writes", "list", "--limit", "0"], 2, "--limit"),
    ]:
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == code, result.output
        assert words in result.output
        assert "Traceback" not in result.output
    with Session(engine) as session:
        assert unsettled_count(session, operator) == 1  # the retry, owed once
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20000000000", 20 * 10**9), (7, 7), ("0", None)],
)
def test_fee_caps_from_the_environment(tmp_path, value, expected):
    from provenance_api import config

    settings = config.build({"DATA_DIR": str(tmp_path), "WRITER_MAX_FEE_PER_GAS_WEI": value})
    assert settings_from_config(settings).max_fee_per_gas == expected


@pytest.mark.parametrize("value", ["twenty gwei", "-1", "1.5"])
def test_a_bad_fee_cap_is_named(tmp_path, value):
    from provenance_api import config

    with pytest.raises(config.ConfigError, match="PROVENANCE_WRITER_MAX_FEE_PER_WRITE_WEI"):
        config.build({"DATA_DIR": str(tmp_path), "WRITER_MAX_FEE_PER_WRITE_WEI": value})


@pytest.mark.anvil
def test_a_cap_below_the_base_fee_is_said_on_the_row_and_waits(tmp_path, anvil_url):
    _app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0)
    owe_anchors(rt, [os.urandom(32)])
    settings = WriterSettings(max_fee_per_gas=7, bump_seconds=0.0, rebroadcast_seconds=0.0)
    writer = ChainWriter(rt.engine, rt.w3, rt.operator, settings)
    for _ in range(3):
        writer.tick()
    (row,) = rows(rt)
    assert row.status == "signed"  # anvil refuses it for now; others may keep it pending
    assert "base fee" in row.error
    assert [a.max_fee_per_gas for a in attempts_of(rt, row.id)] == [7]  # never bumped
    rpc(anvil_url, "anvil_setNextBlockBaseFeePerGas", ["0x1"])
    rpc(anvil_url, "evm_mine")
    for _ in range(3):
        writer.tick()
    (row,) = rows(rt)
    assert (row.status, row.error) == ("confirmed", None)
    rt.close()
