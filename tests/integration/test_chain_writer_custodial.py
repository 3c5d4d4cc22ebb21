"""The chain writer's coin, prerequisites and custodial senders, on the embedded chain."""

from __future__ import annotations

import json
import os
import time

import pytest
from eth_account import Account
from sqlmodel import Session, select

from contracts_abi import ESCROW_NAME
from contracts_abi.escrow import Status, Terms
from provenance_api import chain, db, outbox
from provenance_api.chain_writer import lease_status
from provenance_api.models import ChainWrite, Organization, OrganizationCreate, OrgKind
from provenance_api.services import organizations, wallets
from provenance_api.services.chain_writes import owe_write, retry_write, unsettled_count
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import Conflict
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.escrow_support import DEPOSIT, PRICE, WINDOWS
from tests.integration.test_chain_writer import drain, make_app


def anchor_args(root: bytes | None = None) -> list:
    return [root or os.urandom(32), 1, os.urandom(32)]


def get(rt, write_id: int) -> ChainWrite:
    with Session(rt.engine) as session:
        row = session.get(ChainWrite, write_id)
        assert row is not None
        return row


def test_an_operator_payment_carries_its_value(tmp_path):
    _app, rt = make_app(tmp_path)
    payee = Account.create().address
    with db.session_scope(rt.engine) as session:
        paid = owe_write(
            session,
            sender=rt.operator.address,
            contract=outbox.COIN,
            function=outbox.PAY,
            args=[payee],
            idempotency_key="pay-1",
            value=12345,
        ).id
    drain(rt.new_writer(), rt)
    row = get(rt, paid)
    assert row.status == "confirmed", row.error
    assert row.value == 12345 and row.to_address == payee
    assert rt.w3.eth.get_balance(payee) == 12345
    tx = rt.w3.eth.get_transaction(row.mined_tx_hash)
    assert tx["value"] == 12345 and tx["to"] == payee
    rt.close()


def test_a_failed_prerequisite_fails_its_dependents_unsigned(tmp_path):
    _app, rt = make_app(tmp_path)
    root = os.urandom(32)
    with db.session_scope(rt.engine) as session:
        kwargs = {"sender": rt.operator.address, "contract": "CustodyLedger", "function": "anchor"}
        first = owe_write(session, args=anchor_args(root), idempotency_key="a", **kwargs)
        doomed_prereq = owe_write(session, args=anchor_args(root), idempotency_key="b", **kwargs)
        doomed = owe_write(
            session, args=anchor_args(), idempotency_key="c", after=doomed_prereq, **kwargs
        )
        fine = owe_write(session, args=anchor_args(), idempotency_key="d", after=first, **kwargs)
        ids = first.id, doomed_prereq.id, doomed.id, fine.id
    drain(rt.new_writer(), rt)
    first_row, prereq_row, doomed_row, fine_row = (get(rt, i) for i in ids)
    assert first_row.status == "confirmed"
    assert prereq_row.status == "failed"  # the ledger refuses a root twice
    assert doomed_row.status == "failed" and doomed_row.nonce is None
    assert f"prerequisite write {prereq_row.id} failed" in doomed_row.error
    assert fine_row.status == "confirmed" and fine_row.error is None
    assert fine_row.nonce == prereq_row.nonce + 1  # the doomed write consumed no nonce
    rt.close()


def test_a_retry_keeps_the_value_and_the_prerequisite(tmp_path):
    _app, rt = make_app(tmp_path)
    with db.session_scope(rt.engine) as session:
        kwargs = {"sender": rt.operator.address, "contract": outbox.COIN, "function": outbox.PAY}
        prereq = owe_write(session, args=["0x" + "00" * 20], idempotency_key="p", value=1, **kwargs)
        row = owe_write(
            session,
            args=[Account.create().address],
            idempotency_key="q",
            value=7,
            after=prereq,
            **kwargs,
        )
        row.status = "failed"
        session.add(row)
        session.flush()
        again = retry_write(session, row.id)
        assert (again.value, again.after_write_id) == (7, prereq.id)
    rt.close()


def test_the_same_key_with_another_value_is_a_conflict(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    payee = Account.create().address
    kwargs = {
        "sender": Account.create().address,
        "contract": outbox.COIN,
        "function": outbox.PAY,
        "args": [payee],
        "idempotency_key": "k",
    }
    with db.session_scope(engine) as session:
        first = owe_write(session, value=5, **kwargs).id
        assert owe_write(session, value=5, **kwargs).id == first
        with pytest.raises(Conflict):
            owe_write(session, value=6, **kwargs)
        with pytest.raises(ValueError):
            owe_write(session, **{**kwargs, "idempotency_key": "neg"}, value=-1)
    engine.dispose()


# -- custodial senders ---------------------------------------------------------------------


def custodial_org(rt, name: str, kind: OrgKind = OrgKind.RETAILER) -> Organization:
    created = organizations.create_organization(
        SqlUnitOfWork(rt.engine), rt.keybox, OrganizationCreate(name=name, kind=kind)
    )
    with Session(rt.engine) as session:
        org = session.get(Organization, created.organization.id)
        assert org is not None and org.encrypted_key is not None
        return org


def escrow_address(rt) -> str:
    with Session(rt.engine) as session:
        return known_addresses(session, rt.w3.eth.chain_id)[ESCROW_NAME]


def terms(seller: str, buyer: str, *, deposit: int = DEPOSIT, token_id: int = 1) -> list:
    return list(Terms(token_id, seller, buyer, deposit, PRICE, *WINDOWS.values()).as_tuple())


def drain_all(rt, writers: list, timeout: float = 60.0) -> None:
    """Tick every writer until no write of theirs is owed any more."""
    deadline = time.monotonic() + timeout
    while True:
        for writer in writers:
            writer.tick()
        with Session(rt.engine) as session:
            if unsettled_count(session) == 0:
                return
        assert time.monotonic() < deadline, "writes still unsettled"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_custodial_buyer_deposits_coin_after_the_operators_open(tmp_path, request, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    _app, rt = make_app(tmp_path, database_url=url)
    seller, buyer = custodial_org(rt, "Seller"), custodial_org(rt, "Buyer")
    paid = DEPOSIT + PRICE
    with db.session_scope(rt.engine) as session:
        fund = wallets.fund_organization(
            session, buyer.id, paid + 10**18, operator=rt.operator.address
        )
        opened = owe_write(
            session,
            sender=rt.operator.address,
            contract=ESCROW_NAME,
            function="open",
            args=[terms(seller.address, buyer.address)],
            idempotency_key="open-1",
        )
        deposit = owe_write(
            session,
            sender=buyer.address,
            contract=ESCROW_NAME,
            function="deposit",
            args=[1],
            value=paid,
            after=opened,
            idempotency_key="deposit-1",
        )
        # Owed later by the same sender, waiting for nothing: still behind the deposit.
        later = owe_write(
            session,
            sender=buyer.address,
            contract=outbox.COIN,
            function=outbox.PAY,
            args=[rt.operator.address],
            value=1,
            idempotency_key="later-1",
        )
        ids = fund.id, opened.id, deposit.id, later.id
    custodial = rt.new_custodial_writers()
    custodial.tick()  # the operator has not opened the trade yet: the deposit waits
    waiting, behind = get(rt, ids[2]), get(rt, ids[3])
    assert (waiting.status, behind.status) == ("pending", "pending")
    assert f"waits for write {ids[1]}" in waiting.error
    assert list(custodial.writers) == [buyer.address]

    drain_all(rt, [rt.new_writer(), custodial])
    fund_row, open_row, deposit_row, later_row = (get(rt, i) for i in ids)
    assert [r.status for r in (fund_row, open_row, deposit_row, later_row)] == ["confirmed"] * 4
    assert deposit_row.error is None
    assert deposit_row.block_number > open_row.block_number
    assert later_row.nonce == deposit_row.nonce + 1 == 1  # the buyer's own nonces, in order
    tx = rt.w3.eth.get_transaction(deposit_row.mined_tx_hash)
    assert tx["from"] == buyer.address and tx["value"] == paid
    escrow = chain.contract(rt.w3, ESCROW_NAME, escrow_address(rt))
    status = Status.from_tuple(escrow.functions.statusOf(1).call())
    assert status.buyer_deposited and status.held == paid
    custodial.release()
    rt.close()


def test_a_failed_operator_write_fails_the_custodial_write_waiting_for_it(tmp_path):
    _app, rt = make_app(tmp_path)
    seller, buyer = custodial_org(rt, "Seller"), custodial_org(rt, "Buyer")
    with db.session_scope(rt.engine) as session:
        wallets.fund_organization(session, seller.id, 10**18, operator=rt.operator.address)
        bad_open = owe_write(
            session,
            sender=rt.operator.address,
            contract=ESCROW_NAME,
            function="open",
            args=[terms(seller.address, buyer.address, deposit=0)],  # EscrowInvalidTerms
            idempotency_key="open-bad",
        )
        deposit = owe_write(
            session,
            sender=seller.address,
            contract=ESCROW_NAME,
            function="deposit",
            args=[1],
            value=DEPOSIT,
            after=bad_open,
            idempotency_key="deposit-bad",
        )
        later = owe_write(
            session,
            sender=seller.address,
            contract=outbox.COIN,
            function=outbox.PAY,
            args=[rt.operator.address],
            value=5,
            idempotency_key="later",
        )
        ids = bad_open.id, deposit.id, later.id
    custodial = rt.new_custodial_writers()
    drain_all(rt, [rt.new_writer(), custodial])
    open_row, deposit_row, later_row = (get(rt, i) for i in ids)
    assert open_row.status == "failed" and "EscrowInvalidTerms" in open_row.error
    assert deposit_row.status == "failed" and deposit_row.nonce is None
    assert f"prerequisite write {open_row.id} failed" in deposit_row.error
    assert later_row.status == "confirmed" and later_row.nonce == 0
    custodial.release()
    rt.close()


def test_writes_of_a_sender_nobody_here_can_sign_for_fail_with_the_reason(tmp_path):
    _app, rt = make_app(tmp_path)
    stranger = Account.create().address
    with db.session_scope(rt.engine) as session:
        self_custody = Organization(
            name="Own keys", kind=OrgKind.CARRIER, address=Account.create().address
        )
        session.add(self_custody)
        session.flush()
        ids = [
            owe_write(
                session,
                sender=sender,
                contract=outbox.COIN,
                function=outbox.PAY,
                args=[rt.operator.address],
                value=1,
                idempotency_key=f"from-{sender}",
            ).id
            for sender in (stranger, self_custody.address, stranger.lower())
        ]
    custodial = rt.new_custodial_writers()
    assert custodial.tick() is False
    unknown, own, lowercase = (get(rt, i) for i in ids)
    assert lowercase.status == "failed" and "not an EIP-55 checksummed" in lowercase.error
    assert unknown.status == "failed" and unknown.nonce is None
    assert "neither the operator nor an organization whose key" in unknown.error
    assert "unknown" in unknown.error
    assert own.status == "failed" and "self-custody" in own.error
    assert custodial.writers == {}
    rt.close()


def test_run_signs_custodial_writes_in_its_own_threads(tmp_path):
    app, rt = make_app(tmp_path)
    org = custodial_org(rt, "Threaded")
    with db.session_scope(rt.engine) as session:
        fund = wallets.fund_organization(session, org.id, 10**17, operator=rt.operator.address)
        back = owe_write(
            session,
            sender=org.address,
            contract=outbox.COIN,
            function=outbox.PAY,
            args=[rt.operator.address],
            value=10**16,
            after=fund,
            idempotency_key="back",
        )
        ids = fund.id, back.id
    rt.start_writer()
    try:
        deadline = time.monotonic() + 60
        while get(rt, ids[1]).status not in outbox.FINAL:
            assert time.monotonic() < deadline, "custodial write still unsettled"
            time.sleep(0.05)
        assert rt.custodial is not None and org.address in rt.custodial.writers
        assert lease_status(rt.engine, org.address)["running"]
        shown = app.test_client().get("/healthz").get_json()["custodial_writers"]
        assert shown == {
            "running": True,
            "writers": 1,
            "pending": 0,
            "failed": 0,
            "last_error": None,
        }
    finally:
        rt.stop_writer()
    back_row = get(rt, ids[1])
    assert back_row.status == "confirmed", back_row.error
    receipt = rt.w3.eth.get_transaction_receipt(back_row.mined_tx_hash)
    gas_paid = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert rt.w3.eth.get_balance(org.address) == 10**17 - 10**16 - gas_paid
    rt.close()


def test_wallets_fund_and_balance_through_the_cli(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from provenance_api import config
    from provenance_api.cli import cli

    for name in config.SECRET_SETTINGS:
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli, ["chain", "deploy"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["org", "create", "Payee", "--kind", "retailer", "--json"], env=env)
    assert result.exit_code == 0, result.output
    org = json.loads(result.stdout)

    result = runner.invoke(cli, ["wallets", "balance", str(org["id"]), "--json"], env=env)
    assert result.exit_code == 0, result.output
    before = json.loads(result.stdout)
    assert before == {
        "organization_id": org["id"],
        "address": org["address"],
        "custodial": True,
        "wei": "0",
        "ether": "0",
    }
    result = runner.invoke(
        cli, ["wallets", "fund", str(org["id"]), "--ether", "0.25", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    owed = json.loads(result.stdout)
    assert (owed["wei"], owed["to"]) == (str(25 * 10**16), org["address"])
    assert owed["write"]["status"] == "pending" and owed["write"]["value"] == 25 * 10**16
    result = runner.invoke(cli, ["wallets", "fund", str(org["id"]), "--wei", "7"], env=env)
    assert result.exit_code == 0 and "owed write" in result.output
    for _ in range(2):  # sign and send, then settle
        result = runner.invoke(cli, ["worker", "--once"], env=env)
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["writes", "list"], env=env)
    assert f"pay 7 wei to {org['address']}" in result.output
    result = runner.invoke(cli, ["wallets", "balance", str(org["id"])], env=env)
    assert result.exit_code == 0, result.output
    assert f"wei: {25 * 10**16 + 7}" in result.output
    assert "ether: 0.250000000000000007" in result.output

    for args, code, words in [
        (["wallets", "fund", "999999", "--ether", "1"], 1, "no organization 999999"),
        (["wallets", "balance", "999999"], 1, "no organization 999999"),
        (["wallets", "fund", str(org["id"]), "--ether", "abc"], 1, "not a number"),
        (["wallets", "fund", str(org["id"]), "--ether", "-1"], 1, "not a positive"),
        (["wallets", "fund", str(org["id"]), "--wei", "0.5"], 1, "not a whole number"),
        (["wallets", "fund", str(org["id"])], 1, "ether or in wei"),
        (["wallets", "fund", str(org["id"]), "--ether", "1", "--wei", "1"], 1, "ether or in wei"),
        (["wallets", "fund", "abc", "--ether", "1"], 2, "not a valid integer"),
    ]:
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == code, (args, result.output)
        assert words in result.output
        assert "Traceback" not in result.output


def test_one_writer_per_custodial_key_across_supervisors(tmp_path):
    _app, rt = make_app(tmp_path)
    org = custodial_org(rt, "Leased")
    with db.session_scope(rt.engine) as session:
        fund = wallets.fund_organization(session, org.id, 10**18, operator=rt.operator.address)
        for index in range(3):
            owe_write(
                session,
                sender=org.address,
                contract=outbox.COIN,
                function=outbox.PAY,
                args=[rt.operator.address],
                value=index + 1,
                after=fund,
                idempotency_key=f"pay-{index}",
            )
    drain(rt.new_writer(), rt)
    first, second = rt.new_custodial_writers(), rt.new_custodial_writers()
    first.tick()
    second.tick()  # the first holds the organization's lease: this one signs nothing
    holder = lease_status(rt.engine, org.address)["holder"]
    assert holder == first.writers[org.address].holder != second.writers[org.address].holder
    drain_all(rt, [first, second])
    with Session(rt.engine) as session:
        nonces = [
            r.nonce
            for r in session.exec(select(ChainWrite).where(ChainWrite.sender == org.address))
        ]
    assert sorted(nonces) == [0, 1, 2]
    assert rt.w3.eth.get_transaction_count(org.address) == 3
    first.release()
    second.release()
    rt.close()
