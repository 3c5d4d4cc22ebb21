"""TradeEscrow joins the deployed contracts: on first start, and on an existing installation's
next start, after the passport and the ledger whose addresses it takes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session, select

from contracts_abi import CONTRACT_NAMES, DEPLOYED_NAMES
from provenance_api import chain, db
from provenance_api.app import create_app
from provenance_api.cli import ensure_deployed, fund_operator
from provenance_api.models import ChainWrite
from provenance_api.outbox import FINAL
from provenance_api.services.chain_writes import owe_write
from provenance_api.services.deployments import (
    constructor_args,
    known_addresses,
    store_addresses,
)


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain_url(request: pytest.FixtureRequest) -> str:
    """The embedded chain ("") or a fresh anvil."""
    if request.param == "embedded":
        return ""
    return request.getfixturevalue("anvil_url")


def new_app(tmp_path: Path, chain_url: str):
    """An app on a migrated database with a funded operator and nothing deployed yet."""
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path / "data"),
            "CHAIN_URL": chain_url,
            "OPERATOR_KEY": Account.create().key.hex(),
            # anvil mines only on a transaction: no blocks come to confirm the last one.
            "CONFIRMATIONS": 0,
        }
    )
    db.upgrade(app.config["DATABASE_URL"])
    rt = app.extensions["provenance"]
    fund_operator(rt)
    return app, rt


def deploy_the_first_two(rt) -> dict[str, str]:
    """Deploy the passport and the ledger only, as releases before the escrow did."""
    chain_id = rt.w3.eth.chain_id
    args = constructor_args(rt.operator.address, rt.operator.address)
    with db.session_scope(rt.engine) as session:
        ids = [
            owe_write(
                session,
                sender=rt.operator.address,
                contract=name,
                function="constructor",
                args=args[name],
                idempotency_key=f"deploy-{chain_id}-{name}-0",
            ).id
            for name in CONTRACT_NAMES
        ]
    writer = rt.new_writer()
    try:
        deadline = time.monotonic() + 60
        while True:
            writer.tick()
            with Session(rt.engine) as session:
                rows = [session.get(ChainWrite, write_id) for write_id in ids]
            if all(row.status in FINAL for row in rows):
                break
            assert time.monotonic() < deadline, [row.status for row in rows]
            time.sleep(0.05)
    finally:
        writer.release()
    assert [row.status for row in rows] == ["confirmed"] * len(CONTRACT_NAMES)
    addresses = {row.contract: row.contract_address for row in rows}
    with db.session_scope(rt.engine) as session:
        store_addresses(session, chain_id, addresses)
    return addresses


def constructor_writes(rt) -> list[ChainWrite]:
    with Session(rt.engine) as session:
        query = select(ChainWrite).where(ChainWrite.function == "constructor")
        return list(session.exec(query.order_by(ChainWrite.id)))


def test_first_start_deploys_the_escrow_after_the_two_it_uses(tmp_path, chain_url) -> None:
    app, rt = new_app(tmp_path, chain_url)
    addresses = ensure_deployed(rt)
    assert list(addresses) == list(DEPLOYED_NAMES)
    escrow = addresses["TradeEscrow"]
    assert chain.escrow_bound_to(
        rt.w3, escrow, addresses["ProductPassport"], addresses["CustodyLedger"]
    )
    writes = constructor_writes(rt)
    assert [w.contract for w in writes][-1] == "TradeEscrow"
    assert max(w.nonce for w in writes if w.contract != "TradeEscrow") < writes[-1].nonce
    body = app.test_client().get("/healthz").get_json()
    assert body["chain"]["contracts"] == addresses
    rt.close()


def test_an_installation_with_the_first_two_gets_the_escrow_on_its_next_start(
    tmp_path, chain_url
) -> None:
    app, rt = new_app(tmp_path, chain_url)
    before = deploy_the_first_two(rt)
    with Session(rt.engine) as session:
        assert set(known_addresses(session, rt.w3.eth.chain_id)) == set(CONTRACT_NAMES)

    addresses = ensure_deployed(rt)

    assert {name: addresses[name] for name in CONTRACT_NAMES} == before  # not redeployed
    assert chain.escrow_bound_to(rt.w3, addresses["TradeEscrow"], *before.values())
    assert [w.contract for w in constructor_writes(rt)] == [*CONTRACT_NAMES, "TradeEscrow"]
    with Session(rt.engine) as session:
        assert known_addresses(session, rt.w3.eth.chain_id) == addresses
    assert app.test_client().get("/healthz").get_json()["chain"]["contracts"] == addresses
    # The start after that deploys nothing.
    assert ensure_deployed(rt) == addresses
    assert len(constructor_writes(rt)) == len(DEPLOYED_NAMES)
    rt.close()


def test_another_passport_gets_a_new_escrow(tmp_path) -> None:
    _app, rt = new_app(tmp_path, "")
    first = ensure_deployed(rt)
    # The service is pointed at another passport (e.g. one restored from elsewhere).
    other = Account.create()
    chain.fund_for_development(rt.w3, other.address, 10**18)
    passport = chain.deploy_contracts(rt.w3, other, {}, admin=other.address)["ProductPassport"]
    with db.session_scope(rt.engine) as session:
        store_addresses(session, rt.w3.eth.chain_id, {"ProductPassport": passport})

    second = ensure_deployed(rt)

    assert second["CustodyLedger"] == first["CustodyLedger"]
    assert second["ProductPassport"] == passport
    # The old escrow trades the old passport's tokens: a new one is bound to the new passport.
    assert second["TradeEscrow"] != first["TradeEscrow"]
    assert chain.escrow_bound_to(
        rt.w3, second["TradeEscrow"], second["ProductPassport"], second["CustodyLedger"]
    )
    assert ensure_deployed(rt) == second
    rt.close()
