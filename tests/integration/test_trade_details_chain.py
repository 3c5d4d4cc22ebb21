"""A trade's details against a real trade on the embedded chain: the hash recorded on-chain, the
arbiter the escrow proposed refused and the one both accepted admitted (the trade's cached
state refreshed from the chain at each access), and a settlement that stays verifiable after
erasure."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, select

from contracts_abi.escrow import Outcome, State, Status, Terms
from contracts_abi.passport import passport_id
from provenance_api import chain, trade_vault
from provenance_api.chain.embedded import dev_accounts
from provenance_api.models import ChainWrite, Organization, Trade, WriteStatus
from provenance_api.schemas import Role
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api
from tests.integration.test_chain_writer import drain, make_app

DEPOSIT = 10**18
WINDOW = 3600


def send(w3, account: LocalAccount, call, value: int = 0):
    """Sign `call` with `account` and wait for it; it must succeed."""
    tx = call.build_transaction(
        {
            "from": account.address,
            "value": value,
            "gas": 1_000_000,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt.status == 1
    return receipt


def settle_writes(rt) -> None:
    writer = rt.new_writer()
    try:
        drain(writer, rt)
    finally:
        writer.release()


@pytest.fixture
def w(tmp_path) -> Iterator[SimpleNamespace]:
    """The app on the embedded chain; a seller with a minted passport, a buyer, two arbiters
    registered on-chain; each organization's key (held by the API) funded for gas."""
    app, rt = make_app(tmp_path)
    api = Api(app, lambda: SqlUnitOfWork(rt.engine))
    keys = {
        "seller": api.key(Role.SUPPLIER, "Seller"),
        "buyer": api.key(Role.RETAILER, "Buyer"),
        "judge": api.key(Role.ARBITER, "Judge"),
        "other_judge": api.key(Role.ARBITER, "Other judge"),
    }
    product = {"gtin": GTIN, "name": "Tea"}
    assert api.call("POST", "/v1/products", keys["seller"], json=product).status_code == 201
    items = {"items": [{"gtin": GTIN, "serial": "S1", "tag": "qr"}]}
    assert api.call("POST", "/v1/items", keys["seller"], json=items).get_json()["created"] == 1
    minted = api.call("POST", f"/v1/items/{GTIN}/S1/passport", keys["seller"], json={})
    assert minted.status_code == 201, minted.get_json()
    settle_writes(rt)
    w3 = rt.w3
    with Session(rt.engine) as session:
        addresses = known_addresses(session, w3.eth.chain_id)
        orgs = {}
        for name, key in keys.items():
            org_id = api.call("GET", "/v1/me", key).get_json()["organization"]["id"]
            orgs[name] = session.get(Organization, org_id)
    accounts = {
        name: Account.from_key(rt.keybox.open(org.encrypted_key, org.address))
        for name, org in orgs.items()
    }
    bank = dev_accounts()[0]
    for account in accounts.values():
        tx = {
            "from": bank.address,
            "to": account.address,
            "value": 10 * DEPOSIT,
            "gas": 21_000,
            "nonce": w3.eth.get_transaction_count(bank.address, "pending"),
            "chainId": w3.eth.chain_id,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
        }
        raw = bank.sign_transaction(tx).raw_transaction
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    escrow = chain.contract(w3, "TradeEscrow", addresses["TradeEscrow"])
    passport = chain.contract(w3, "ProductPassport", addresses["ProductPassport"])
    for name in ("judge", "other_judge"):
        send(w3, accounts[name], escrow.functions.registerArbiter(f"https://arb.example/{name}"))
    yield SimpleNamespace(
        api=api,
        rt=rt,
        w3=w3,
        keys=keys,
        orgs=orgs,
        accounts=accounts,
        escrow=escrow,
        passport=passport,
    )
    rt.close()


def open_funded(w: SimpleNamespace) -> tuple[int, int]:
    """The seller opens a trade on its passport, both deposit; (chain trade id, trade row id)."""
    seller, buyer = w.accounts["seller"], w.accounts["buyer"]
    token_id = passport_id(GTIN, "S1")
    assert w.passport.functions.ownerOf(token_id).call() == seller.address
    terms = Terms(token_id, seller.address, buyer.address, DEPOSIT, 0, *[WINDOW] * 5)
    send(w.w3, seller, w.escrow.functions.open(terms.as_tuple()))
    chain_id = w.escrow.functions.tradeCount().call()
    send(w.w3, seller, w.passport.functions.approve(w.escrow.address, token_id))
    send(w.w3, seller, w.escrow.functions.deposit(chain_id), DEPOSIT)
    send(w.w3, buyer, w.escrow.functions.deposit(chain_id), DEPOSIT)
    assert status(w, chain_id).state == State.FUNDED
    s, b = w.orgs["seller"], w.orgs["buyer"]
    with w.api.uow() as uow:
        item = uow.items.get(GTIN, "S1")
        trade = Trade(
            item_id=item.id,
            seller_organization_id=s.id,
            buyer_organization_id=b.id,
            seller_address=s.address,
            buyer_address=b.address,
            deposit=DEPOSIT,
            price=0,
            deposit_window=WINDOW,
            ship_window=WINDOW,
            confirm_window=WINDOW,
            agree_window=WINDOW,
            rule_window=WINDOW,
            opened_by_organization_id=s.id,
            open_write_key=f"trade-open-test-{chain_id}",
            escrow_address=w.escrow.address,
            chain_trade_id=chain_id,
            state="funded",
        )
        uow.trades.add(trade)
        uow.commit()
        return chain_id, trade.id


def status(w: SimpleNamespace, chain_id: int) -> Status:
    return Status.from_tuple(w.escrow.functions.statusOf(chain_id).call())


def details_hash(w: SimpleNamespace, trade_id: int) -> str:
    with w.api.uow() as uow:
        return uow.trades.get(trade_id).details_hash


def on_chain(w: SimpleNamespace, chain_id: int) -> str:
    return "0x" + bytes(w.escrow.functions.detailsHashOf(chain_id).call()).hex()


def test_a_disputed_trade_s_details_from_first_record_to_erasure(w: SimpleNamespace) -> None:
    api, keys = w.api, w.keys
    chain_id, trade_id = open_funded(w)
    url = f"/v1/trades/{trade_id}/details"
    details = {"kind": "details", "details": {"name": "Bo Buyer", "address": "2 Main St"}}
    assert api.call("POST", url, keys["buyer"], json=details).status_code == 201
    message = {"kind": "message", "text": "Shipping Monday."}
    assert api.call("POST", url, keys["seller"], json=message).status_code == 201
    settle_writes(w.rt)
    assert on_chain(w, chain_id) == details_hash(w, trade_id)

    # The buyer disputes; the escrow proposes an arbiter. Proposed is not accepted: 403, logged.
    send(w.w3, w.accounts["buyer"], w.escrow.functions.dispute(chain_id))
    proposed = status(w, chain_id).arbiter
    judge = next(n for n in ("judge", "other_judge") if w.accounts[n].address == proposed)
    other = "other_judge" if judge == "judge" else "judge"
    refused = api.call("GET", url, keys[judge])
    assert refused.status_code == 403, refused.get_json()
    assert api.call("GET", url, keys[other]).status_code == 404  # never named: a stranger

    # Both accept it: it reads, and adds evidence whose hash goes on-chain too.
    for party in ("buyer", "seller"):
        accept = w.escrow.functions.acceptArbiter(chain_id, proposed)
        send(w.w3, w.accounts[party], accept)
    assert status(w, chain_id).state == State.ARBITRATION
    read = api.call("GET", url, keys[judge])
    assert read.status_code == 200 and len(read.get_json()["records"]) == 2
    note = {"kind": "evidence", "content_type": "text/plain", "data": "U2VlbiBib3RoIHNpZGVzLg=="}
    assert api.call("POST", url, keys[judge], json=note).status_code == 201
    settle_writes(w.rt)
    assert on_chain(w, chain_id) == details_hash(w, trade_id)
    with Session(w.rt.engine) as session:
        writes = session.exec(
            select(ChainWrite)
            .where(ChainWrite.idempotency_key.startswith("trade-details:"))
            .order_by(ChainWrite.id)
        ).all()
        assert [(x.function, x.status) for x in writes] == [
            ("recordDetails", WriteStatus.CONFIRMED.value)
        ] * 3
        # Each waits for the one before: a later hash never lands before an earlier one.
        assert [x.after_write_id for x in writes] == [None, writes[0].id, writes[1].id]

    # The arbiter rules; the trade settles. No more records; the parties may erase.
    send(w.w3, w.accounts[judge], w.escrow.functions.rule(chain_id, True))
    assert api.call("POST", url, keys["buyer"], json=message).status_code == 409
    recorded = on_chain(w, chain_id)
    erased = api.call("DELETE", url, keys["seller"])
    assert erased.status_code == 200, erased.get_json()
    # Nothing above told the database: each access refreshed the trade from the chain.
    with w.api.uow() as uow:
        row = uow.trades.get(trade_id)
        cached = (row.state, row.outcome, row.arbiter_organization_id)
    assert cached == ("settled", "for_buyer", w.orgs[judge].id)
    assert api.call("GET", url, keys["buyer"]).status_code == 410
    assert api.call("GET", url, keys[judge]).status_code == 410

    # The settlement stays verifiable: the hash on-chain is unchanged and is the chain of the
    # kept digests; the escrow's state, outcome, credits and passport say how it ended.
    assert on_chain(w, chain_id) == recorded == erased.get_json()["details_hash"]
    with w.api.uow() as uow:
        digests = [(r.sequence, bytes(r.digest)) for r in uow.trade_details.records(trade_id)]
    assert "0x" + trade_vault.chain_hash(digests).hex() == recorded
    final = status(w, chain_id)
    assert (final.state, final.outcome) == (State.SETTLED, Outcome.FOR_BUYER)
    assert w.escrow.functions.creditOf(proposed).call() == DEPOSIT
    assert w.escrow.functions.creditOf(w.accounts["buyer"].address).call() == DEPOSIT
    token_id = passport_id(GTIN, "S1")
    assert w.passport.functions.ownerOf(token_id).call() == w.accounts["seller"].address
    log = api.call("GET", f"/v1/trades/{trade_id}/access-log", keys["buyer"]).get_json()
    assert [(e["role"], e["action"]) for e in log["items"]] == [
        ("buyer", "write"),
        ("seller", "write"),
        ("arbiter", "refused"),
        ("arbiter", "read"),
        ("arbiter", "write"),
        ("seller", "erase"),
    ]
