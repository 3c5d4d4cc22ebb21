"""/v1/trades and /v1/arbiters on the embedded chain: trades to completion, to a ruling, to a
timeout; a self-custody buyer signing its own transactions; refusals."""

from __future__ import annotations

import itertools
import time

import pytest
import sqlalchemy as sa
from eth_account import Account
from sqlmodel import Session, func, select

from contracts_abi.passport import passport_id
from provenance_api import chain
from provenance_api.models import ChainWrite, Organization, Trade
from provenance_api.schemas import Role
from provenance_api.services.chain_writes import unsettled_count
from provenance_api.services.deployments import known_addresses
from tests.integration.api_support import GTIN
from tests.integration.events_support import MASTER, World, serial_of, uid_of
from tests.integration.test_api_transfers import org_of, passport, transfer, world

ETHER = 10**18
DEPOSIT = 10**15
PRICE = 5 * 10**15


def trading_world(path, **config):
    """A world whose supplier (`maker`) and shop have coin, with the writers `settle` ticks."""
    made = world(path, **config)
    made.custodial = made.rt.new_custodial_writers()
    made.operator_writer = made.rt.new_writer()
    made.maker, made.shop = org_of(made, made.supplier), org_of(made, made.retailer)
    for org in (made.maker, made.shop):
        chain.fund_for_development(made.rt.w3, org["address"], ETHER)
    made.serials = itertools.count(1)
    return made


def close_world(made) -> None:
    """Release the writers' leases and close the runtime of a `trading_world`."""
    made.custodial.release()
    made.operator_writer.release()
    made.rt.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    # A batch per event: a shipment proof's event is anchored at the anchorer's next tick.
    made = trading_world(tmp_path_factory.mktemp("trades"), ANCHOR_BATCH_MAX=1)
    made.arbiters = []
    for index in range(3):
        key = made.key(Role.ARBITER, f"Arbiter {index}")
        chain.fund_for_development(made.rt.w3, org_of(made, key)["address"], ETHER)
        body = {
            "display_name": f"Arbiter {index}",
            "profile": {"summary": "Decides trade disputes.", "languages": ["en"]},
        }
        registered = made.call("POST", "/v1/arbiters", key, json=body)
        assert registered.status_code == 202, registered.get_json()
        made.arbiters.append((key, registered.get_json()["arbiter"]))
    settle(made)
    yield made
    close_world(made)


def new_item(api) -> str:
    """A fresh item of the supplier's (tests do not share items); its serial."""
    serial = f"T{next(api.serials)}"
    items = [{"gtin": GTIN, "serial": serial, "tag": "qr"}]
    created = api.call("POST", "/v1/items", api.supplier, json={"items": items}).get_json()
    assert created["created"] == 1, created
    return serial


def settle(api, timeout: float = 60.0) -> None:
    """Tick the operator's and the custodial organizations' writers until nothing is owed."""
    deadline = time.monotonic() + timeout
    while True:
        api.operator_writer.tick()
        api.custodial.tick()
        with Session(api.rt.engine) as session:
            if unsettled_count(session) == 0:
                return
        assert time.monotonic() < deadline, "writes still unsettled"
        time.sleep(0.05)


def writes_count(api) -> int:
    with Session(api.rt.engine) as session:
        return int(session.exec(select(func.count()).select_from(ChainWrite)).one())


def open_trade(api, serial: str, buyer_id: int, **extra):
    body = {
        "gtin": GTIN,
        "serial": serial,
        "buyer_organization_id": buyer_id,
        "deposit": str(DEPOSIT),
        "price": str(PRICE),
        **extra,
    }
    return api.call("POST", "/v1/trades", api.supplier, json=body)


def act(api, key: str, trade_id: int, action: str, **body):
    return api.call("POST", f"/v1/trades/{trade_id}/{action}", key, json=body)


def get(api, key: str, trade_id: int) -> dict:
    answer = api.call("GET", f"/v1/trades/{trade_id}", key)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def credit(api, key: str) -> int:
    return int(api.call("GET", "/v1/trades/credit", key).get_json()["credit"])


def test_a_trade_completes_and_the_buyer_owns_the_passport(api):
    serial = new_item(api)
    opened = open_trade(api, serial, api.shop["id"])
    assert opened.status_code == 201, opened.get_json()
    trade = opened.get_json()
    assert (trade["state"], trade["viewer"], trade["next_actions"]) == ("opening", "seller", [])
    assert (trade["deposit"], trade["price"]) == (str(DEPOSIT), str(PRICE))
    assert trade["windows"]["ship_window"] == 7 * 86400
    tid = trade["id"]
    settle(api)
    seen = get(api, api.supplier, tid)
    assert seen["state"] == "open" and seen["chain_trade_id"] >= 1
    assert seen["next_actions"] == ["deposit", "cancel"]
    assert get(api, api.retailer, tid)["viewer"] == "buyer"

    # The passport is not minted: the supplier's MintConsent puts it straight into escrow.
    deposited = act(api, api.supplier, tid, "deposit")
    assert deposited.status_code == 202, deposited.get_json()
    assert deposited.get_json()["transactions"] == []
    paid = act(api, api.retailer, tid, "deposit")
    assert paid.status_code == 202, paid.get_json()
    # A retried POST owes nothing twice.
    before = writes_count(api)
    assert act(api, api.retailer, tid, "deposit").status_code == 202
    assert act(api, api.supplier, tid, "deposit").status_code == 202
    assert writes_count(api) == before
    # Nobody moves the item outside the trade.
    moved = transfer(api, api.supplier, serial, to_organization_id=api.shop["id"])
    assert moved.status_code == 409, moved.get_json()
    assert moved.get_json()["fields"] == {"serial": f"in trade {tid}"}
    code = api.call("POST", f"/v1/items/{GTIN}/{serial}/claim-codes", api.supplier, json={})
    assert code.status_code == 409, code.get_json()
    settle(api)
    funded = get(api, api.retailer, tid)
    assert funded["state"] == "funded" and funded["passport_held"], funded
    assert funded["held"] == str(2 * DEPOSIT + PRICE)
    assert funded["seller"]["deposited"] and funded["buyer"]["deposited"]
    assert funded["next_actions"] == ["confirm", "dispute"]
    assert all(write["state"] == "confirmed" for write in funded["writes"]), funded["writes"]

    assert act(api, api.supplier, tid, "ship").status_code == 202
    settle(api)
    assert get(api, api.supplier, tid)["state"] == "shipped"
    assert act(api, api.retailer, tid, "confirm").status_code == 202
    settle(api)
    done = get(api, api.retailer, tid)
    assert (done["state"], done["outcome"]) == ("settled", "completed")
    assert done["settled_at"] is not None and done["next_actions"] == ["withdraw"]
    token_id = passport_id(GTIN, serial)
    assert passport(api).functions.ownerOf(token_id).call() == api.shop["address"]
    owner = api.call("GET", f"/v1/items/{GTIN}/{serial}/passport", api.retailer).get_json()
    assert owner["owner_organization_id"] == api.shop["id"]

    assert credit(api, api.supplier) == DEPOSIT + PRICE
    assert credit(api, api.retailer) == DEPOSIT
    balance = api.rt.w3.eth.get_balance(api.maker["address"])
    withdrawn = api.call("POST", "/v1/withdrawals", api.supplier)
    assert withdrawn.status_code == 202, withdrawn.get_json()
    assert api.call("POST", "/v1/withdrawals", api.supplier).status_code == 202  # same write
    settle(api)
    assert credit(api, api.supplier) == 0
    assert api.rt.w3.eth.get_balance(api.maker["address"]) > balance
    again = api.call("POST", "/v1/withdrawals", api.supplier)
    assert again.status_code == 409, again.get_json()

    # The escrow's move to the buyer is on record as done on-chain, not as a write still owed.
    query = f"/v1/transfers?gtin={GTIN}&serial={serial}"
    moves = api.call("GET", query, api.retailer).get_json()
    assert [(m["from_address"], m["chain"]) for m in moves["items"]][-1] == (
        get_escrow(api),
        "confirmed",
    )

    # The buyer owns it now: it can pass it on, with its own consent.
    onward = transfer(api, api.retailer, serial, to_organization_id=org_of(api, api.carrier)["id"])
    assert onward.status_code == 201, onward.get_json()
    settle(api)
    assert passport(api).functions.ownerOf(token_id).call() == org_of(api, api.carrier)["address"]


def test_a_dispute_goes_to_the_arbiter_both_accepted(api):
    serial = new_item(api)
    minted = api.call("POST", f"/v1/items/{GTIN}/{serial}/passport", api.supplier, json={})
    assert minted.status_code == 201, minted.get_json()
    settle(api)
    tid = open_trade(api, serial, api.shop["id"]).get_json()["id"]
    settle(api)
    # A minted passport: the seller approves the escrow, then deposits (its own two writes).
    assert act(api, api.supplier, tid, "deposit").status_code == 202
    assert act(api, api.retailer, tid, "deposit").status_code == 202
    settle(api)
    assert act(api, api.retailer, tid, "dispute").status_code == 202
    settle(api)
    disputed = get(api, api.supplier, tid)
    assert disputed["state"] == "disputed"
    first = disputed["proposed_arbiter"]
    assert first["id"] is not None and first["display_name"].startswith("Arbiter")
    assert disputed["next_actions"] == ["decline_arbiter", "accept_arbiter"]

    assert act(api, api.supplier, tid, "arbiter/decline").status_code == 202
    settle(api)
    second = get(api, api.supplier, tid)["proposed_arbiter"]
    assert second["address"] != first["address"]
    declined = act(api, api.retailer, tid, "arbiter/accept", arbiter_id=first["id"])
    assert declined.status_code == 409 and "arbiter_id" in declined.get_json()["fields"]
    for key in (api.supplier, api.retailer):
        accepted = act(api, key, tid, "arbiter/accept", arbiter_id=second["id"])
        assert accepted.status_code == 202, accepted.get_json()
    settle(api)
    appointed = get(api, api.retailer, tid)
    assert appointed["state"] == "arbitration"
    assert appointed["accepted_arbiter"]["address"] == second["address"]

    arbiter_key = next(key for key, row in api.arbiters if row["id"] == second["id"])
    other_key = next(key for key, row in api.arbiters if row["id"] != second["id"])
    assert api.call("GET", f"/v1/trades/{tid}", other_key).status_code == 404
    assert act(api, other_key, tid, "rule", for_buyer=True).status_code == 404
    assert act(api, api.supplier, tid, "rule", for_buyer=False).status_code == 403
    assert act(api, arbiter_key, tid, "rule", for_buyer="yes").status_code == 422
    seen = get(api, arbiter_key, tid)
    assert (seen["viewer"], seen["next_actions"]) == ("arbiter", ["rule"])
    ruled = act(api, arbiter_key, tid, "rule", for_buyer=True)
    assert ruled.status_code == 202, ruled.get_json()
    settle(api)
    done = get(api, arbiter_key, tid)
    assert (done["state"], done["outcome"]) == ("settled", "for_buyer")
    assert credit(api, arbiter_key) == DEPOSIT
    assert credit(api, api.retailer) >= DEPOSIT + PRICE
    token_id = passport_id(GTIN, serial)
    assert passport(api).functions.ownerOf(token_id).call() == api.maker["address"]
    owner = api.call("GET", f"/v1/items/{GTIN}/{serial}/passport", api.supplier).get_json()
    assert owner["owner_organization_id"] == api.maker["id"]
    listed = api.call("GET", "/v1/trades", arbiter_key).get_json()["items"]
    assert [row["id"] for row in listed] == [tid]


def self_custody(api, name: str):
    """A retailer that holds its own key: the API builds its transactions."""
    key = api.key(Role.RETAILER, name)
    account = Account.create()
    with Session(api.rt.engine) as session:
        org = session.get(Organization, org_of(api, key)["id"])
        org.address, org.encrypted_key = account.address, None
        session.add(org)
        session.commit()
    chain.fund_for_development(api.rt.w3, account.address, ETHER)
    return key, account


def send(api, account, transaction: dict) -> None:
    w3 = api.rt.w3
    signed = account.sign_transaction(
        {
            "to": transaction["to"],
            "data": transaction["data"],
            "value": int(transaction["value"]),
            "chainId": transaction["chain_id"],
            "nonce": w3.eth.get_transaction_count(account.address),
            "gas": 500_000,
            **chain.fee_fields(w3),
        }
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1


def test_a_self_custody_buyer_signs_and_the_window_times_out(api):
    key, account = self_custody(api, "Own Keys")
    buyer_id = org_of(api, key)["id"]
    serial = new_item(api)
    opened = open_trade(api, serial, buyer_id, deposit_window=6)
    assert opened.status_code == 201, opened.get_json()
    tid = opened.get_json()["id"]
    settle(api)
    built = act(api, key, tid, "deposit")
    assert built.status_code == 200, built.get_json()
    [transaction] = built.get_json()["transactions"]
    assert transaction["value"] == str(DEPOSIT + PRICE)
    send(api, account, transaction)
    seen = get(api, key, tid)
    assert seen["buyer"]["deposited"] and seen["buyer"]["self_custody"]
    assert seen["held"] == str(DEPOSIT + PRICE)
    early = act(api, key, tid, "timeout")
    assert early.status_code == 409 and "runs until" in early.get_json()["message"]

    deadline = time.mktime(time.strptime(seen["deadline"][:19], "%Y-%m-%dT%H:%M:%S"))
    time.sleep(max(0.0, deadline - time.mktime(time.gmtime())) + 1.5)
    late = act(api, api.supplier, tid, "deposit")
    assert late.status_code == 409, late.get_json()
    assert "only timeout can settle it now" in late.get_json()["message"]
    assert get(api, key, tid)["next_actions"] == ["timeout"]
    relayed = act(api, key, tid, "timeout")
    assert relayed.status_code == 202, relayed.get_json()
    settle(api)
    done = get(api, key, tid)
    assert (done["state"], done["outcome"]) == ("settled", "cancelled")
    assert credit(api, key) == DEPOSIT + PRICE
    built = api.call("POST", "/v1/withdrawals", key)
    assert built.status_code == 200, built.get_json()
    send(api, account, built.get_json()["transactions"][0])
    assert credit(api, key) == 0
    # Settled without the passport ever leaving the supplier: it may transfer it again.
    again = transfer(api, api.supplier, serial, to_organization_id=api.shop["id"])
    assert again.status_code == 201, again.get_json()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deposit": "0"}, "deposit"),
        ({"deposit": str(2**96)}, "deposit"),
        ({"deposit": "-1"}, "deposit"),
        ({"deposit": 5}, "deposit"),
        ({"price": str(2**96)}, "price"),
        ({"price": "1.5"}, "price"),
        ({"deposit_window": 0}, "deposit_window"),
        ({"rule_window": 365 * 86400 + 1}, "rule_window"),
        ({"ship_window": "soon"}, "ship_window"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_amounts_and_windows_are_422_naming_the_field(api, changes, field):
    body = {
        "gtin": GTIN,
        "serial": "S1",
        "buyer_organization_id": api.shop["id"],
        "deposit": "1",
        **changes,
    }
    answer = api.call("POST", "/v1/trades", api.supplier, json=body)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()


def test_parties_strangers_and_wrong_parties(api):
    serial = new_item(api)
    assert open_trade(api, serial, api.maker["id"]).get_json()["fields"] == {
        "buyer_organization_id": "the seller itself"
    }
    arbiter_id = org_of(api, api.arbiters[0][0])["id"]
    assert open_trade(api, serial, arbiter_id).status_code == 422
    assert open_trade(api, serial, 99_999).status_code == 404
    assert open_trade(api, "NOPE", api.shop["id"]).status_code == 404
    # The carrier never held the item: it is not told it exists.
    body = {"gtin": GTIN, "serial": serial, "buyer_organization_id": api.shop["id"], "deposit": "1"}
    assert api.call("POST", "/v1/trades", api.carrier, json=body).status_code == 404

    tid = open_trade(api, serial, api.shop["id"]).get_json()["id"]
    assert open_trade(api, serial, api.shop["id"]).status_code == 409  # already in a live trade
    settle(api)
    assert api.call("GET", f"/v1/trades/{tid}", api.carrier).status_code == 404
    assert act(api, api.carrier, tid, "cancel").status_code == 404
    assert api.call("GET", "/v1/trades/999999", api.supplier).status_code == 404
    early = act(api, api.retailer, tid, "confirm")
    assert early.status_code == 409 and "funded or shipped" in early.get_json()["message"]
    assert act(api, api.retailer, tid, "ship").status_code == 403
    assert act(api, api.supplier, tid, "confirm").status_code == 403
    cancelled = act(api, api.retailer, tid, "cancel")
    assert cancelled.status_code == 202, cancelled.get_json()
    settle(api)
    assert get(api, api.supplier, tid)["outcome"] == "cancelled"
    assert api.call("GET", "/v1/arbiters").status_code == 200
    profile = api.call("GET", f"/v1/arbiters/{api.arbiters[0][1]['id']}").get_json()
    assert profile["registered"] == "confirmed" and profile["profile_uri"].endswith(
        f"/v1/arbiters/{profile['id']}"
    )
    operator = api.key(Role.OPERATOR)
    tie = {"organization_id": api.shop["id"], "reason": "works for the shop"}
    path = f"/v1/arbiters/{profile['id']}/ties"
    assert api.call("POST", path, operator, json=tie).status_code == 201
    assert api.call("POST", path, operator, json=tie).status_code == 409
    assert api.call("POST", path, api.supplier, json=tie).status_code == 403
    settle(api)


def test_the_anchored_handoff_to_the_buyer_proves_the_shipment(api):
    sun = api.call("POST", "/v1/sun-keys", api.supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    n = 100
    rows = [{"gtin": GTIN, "serial": serial_of(n), "tag": "ntag424", "uid": uid_of(n).hex()}]
    created = api.call("POST", "/v1/items", api.supplier, json={"items": rows}).get_json()
    assert created["created"] == 1, created
    tid = open_trade(api, serial_of(n), api.shop["id"]).get_json()["id"]
    settle(api)
    for key in (api.supplier, api.retailer):
        assert act(api, key, tid, "deposit").status_code == 202
    settle(api)

    events = World(api, api.supplier, api.carrier, None, 0)  # type: ignore[arg-type]
    events.reader = events.reader_for(api.carrier)
    elsewhere = events.event(n, to_party=org_of(api, api.carrier)["address"])
    handoff = events.event(n, from_party=api.maker["address"], to_party=api.shop["address"])
    for event in (elsewhere, handoff):
        posted = events.post([event])
        assert posted.status_code == 200, posted.get_json()
    proof = {"proof": "custody_event", "event_id": handoff["event_id"]}
    waiting = act(api, api.retailer, tid, "ship", **proof)
    assert waiting.status_code == 409 and "anchored" in waiting.get_json()["message"]
    while api.rt.new_anchorer().tick():
        pass
    settle(api)
    wrong = act(
        api, api.retailer, tid, "ship", proof="custody_event", event_id=elsewhere["event_id"]
    )
    assert wrong.status_code == 409 and wrong.get_json()["fields"] == {
        "event_id": "not to the buyer"
    }
    assert act(api, api.retailer, tid, "ship", proof="custody_event").status_code == 422
    proved = act(api, api.retailer, tid, "ship", **proof)  # anyone: here the buyer
    assert proved.status_code == 202, proved.get_json()
    settle(api)
    shipped = get(api, api.supplier, tid)
    assert shipped["state"] == "shipped", shipped["writes"]


def test_a_self_custody_arbiter_registers_and_retires_with_its_own_transactions(api):
    key = api.key(Role.ARBITER, "Own Key Arbiter")
    account = Account.create()
    with Session(api.rt.engine) as session:
        org = session.get(Organization, org_of(api, key)["id"])
        org.address, org.encrypted_key = account.address, None
        session.add(org)
        session.commit()
    chain.fund_for_development(api.rt.w3, account.address, ETHER)
    body = {"display_name": "Own Key", "profile": {"summary": "Signs itself."}, "ties": [99_999]}
    assert api.call("POST", "/v1/arbiters", key, json=body).status_code == 404
    body["ties"] = [api.shop["id"], api.shop["id"]]
    registered = api.call("POST", "/v1/arbiters", key, json=body)
    assert registered.status_code == 200, registered.get_json()
    answer = registered.get_json()
    assert answer["arbiter"]["ties"][0]["organization_id"] == api.shop["id"]
    assert len(answer["arbiter"]["ties"]) == 1
    send(api, account, answer["transactions"][0])
    settle(api)  # the operator's setTie
    escrow = chain.contract(api.rt.w3, "TradeEscrow", get_escrow(api))
    assert escrow.functions.isTied(account.address, api.shop["address"]).call()
    count = escrow.functions.arbiterCount().call()
    assert escrow.functions.arbiterAt(count - 1).call() == [
        account.address,
        answer["arbiter"]["profile_uri"],
        True,
    ]
    assert api.call("POST", "/v1/arbiters", key, json=body).status_code == 409
    retired = api.call("DELETE", "/v1/arbiters/me", key)
    assert retired.status_code == 200, retired.get_json()
    send(api, account, retired.get_json()["transactions"][0])
    assert not escrow.functions.arbiterAt(count - 1).call()[2]
    listed = api.call("GET", "/v1/arbiters").get_json()["items"]
    assert answer["arbiter"]["id"] not in [row["id"] for row in listed]


def get_escrow(api) -> str:
    with Session(api.rt.engine) as session:
        return known_addresses(session, api.rt.w3.eth.chain_id)["TradeEscrow"]


def test_a_self_custody_seller_approves_and_deposits_its_passport_itself(api):
    key, account = self_custody(api, "Own Keys Seller")
    serial = new_item(api)
    moved = transfer(api, api.supplier, serial, to_organization_id=org_of(api, key)["id"])
    assert moved.status_code == 201, moved.get_json()
    settle(api)
    body = {
        "gtin": GTIN,
        "serial": serial,
        "buyer_organization_id": api.shop["id"],
        "deposit": str(DEPOSIT),
    }
    opened = api.call("POST", "/v1/trades", key, json=body)
    assert opened.status_code == 201, opened.get_json()
    tid = opened.get_json()["id"]
    settle(api)
    built = act(api, key, tid, "deposit")
    assert built.status_code == 200, built.get_json()
    approve, deposit = built.get_json()["transactions"]
    assert approve["to"] == passport(api).address and deposit["value"] == str(DEPOSIT)
    send(api, account, approve)
    send(api, account, deposit)
    seen = get(api, key, tid)
    assert seen["seller"]["deposited"] and seen["passport_held"], seen
    assert seen["next_actions"] == ["cancel"]
    token_id = passport_id(GTIN, serial)
    assert passport(api).functions.ownerOf(token_id).call() == get_escrow(api)


def test_a_trade_in_an_earlier_escrow_is_shown_as_last_read_and_not_acted_on(api):
    serial = new_item(api)
    tid = open_trade(api, serial, api.shop["id"]).get_json()["id"]
    settle(api)
    assert get(api, api.supplier, tid)["state"] == "open"
    # As after a redeployment of TradeEscrow: the trade stays in the escrow it was opened in.
    earlier = "0x" + "ee" * 20
    with Session(api.rt.engine) as session:
        session.exec(sa.update(Trade).where(Trade.id == tid).values(escrow_address=earlier))
        session.commit()
    seen = get(api, api.supplier, tid)
    assert (seen["state"], seen["escrow_address"]) == ("open", earlier)
    before = writes_count(api)
    refused = act(api, api.retailer, tid, "cancel")
    assert refused.status_code == 409 and "earlier TradeEscrow" in refused.get_json()["message"]
    assert writes_count(api) == before
