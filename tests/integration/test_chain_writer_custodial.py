"""The chain writer's coin, prerequisites and custodial senders, on the embedded chain."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from sqlmodel import Session

from provenance_api import db, outbox
from provenance_api.models import ChainWrite
from provenance_api.services.chain_writes import owe_write, retry_write
from provenance_api.services.errors import Conflict
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
