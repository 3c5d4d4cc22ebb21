"""/v1/trades under concurrency: two opens of one item, two deposits by one party; the trade
list's pages. On SQLite (writers take the lock at BEGIN) and PostgreSQL (the partial unique
index decides), with the embedded chain."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from provenance_api import chain
from provenance_api.models import ChainWrite, Trade
from provenance_api.schemas import Role
from provenance_api.services.trade_rules import page_token
from provenance_api.services.trades import action_key
from tests.integration.api_support import GTIN, Api
from tests.integration.test_api_trades import DEPOSIT, ETHER, PRICE, settle
from tests.integration.test_api_transfers import org_of, world

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def api(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    made = world(tmp_path, url)
    made.maker, made.shop = org_of(made, made.supplier), org_of(made, made.retailer)
    chain.fund_for_development(made.rt.w3, made.maker["address"], ETHER)
    made.operator_writer = made.rt.new_writer()
    made.custodial = made.rt.new_custodial_writers()
    yield made
    made.custodial.release()
    made.operator_writer.release()
    made.rt.close()


def opening(serial: str, buyer_id: int) -> dict:
    return {
        "gtin": GTIN,
        "serial": serial,
        "buyer_organization_id": buyer_id,
        "deposit": str(DEPOSIT),
        "price": str(PRICE),
    }


def at_once(api: Api, requests: list[tuple[str, str, str, dict | None]]) -> list:
    """Each (method, url, key, json) from its own thread, released together; the answers."""
    start = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def send(index: int, method: str, url: str, key: str, body: dict | None) -> None:
        client = api.app.test_client()
        start.wait()
        answer = client.open(
            url, method=method, headers={"Authorization": f"Bearer {key}"}, json=body
        )
        answers[index] = (answer.status_code, answer.get_json())

    threads = [
        threading.Thread(target=send, args=(index, *request))
        for index, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def writes(api: Api, function: str) -> list[ChainWrite]:
    with Session(api.rt.engine) as session:
        return list(session.exec(select(ChainWrite).where(ChainWrite.function == function)))


def trades_of(api: Api, serial: str) -> list[Trade]:
    with api.uow() as uow:
        item_id = uow.items.get(GTIN, serial).id
    with Session(api.rt.engine) as session:
        return list(session.exec(select(Trade).where(Trade.item_id == item_id)))


def test_two_opens_of_one_item_at_once_one_201_one_409_naming_the_winner(api):
    body = opening("S2", api.shop["id"])
    answers = at_once(api, [("POST", "/v1/trades", api.supplier, body)] * 2)
    assert sorted(status for status, _ in answers) == [201, 409], answers
    (won,) = [answer for status, answer in answers if status == 201]
    (lost,) = [answer for status, answer in answers if status == 409]
    assert lost["fields"] == {"serial": f"in trade {won['id']}"}, lost
    assert [trade.id for trade in trades_of(api, "S2")] == [won["id"]]
    assert [write.idempotency_key for write in writes(api, "open")] == [
        action_key(won["id"], "open")
    ]
    # Many at once: still exactly one, on another item.
    answers = at_once(
        api, [("POST", "/v1/trades", api.supplier, opening("S3", api.shop["id"]))] * 4
    )
    assert sorted(status for status, _ in answers) == [201, 409, 409, 409], answers
    assert len(writes(api, "open")) == 2


def test_a_trade_settled_on_chain_but_not_read_since_does_not_block_a_new_one(api):
    first = api.call("POST", "/v1/trades", api.supplier, json=opening("S2", api.shop["id"]))
    assert first.status_code == 201, first.get_json()
    tid = first.get_json()["id"]
    # Still opening (its open owed): it holds the item.
    again = api.call("POST", "/v1/trades", api.supplier, json=opening("S2", api.shop["id"]))
    assert again.status_code == 409 and again.get_json()["fields"] == {"serial": f"in trade {tid}"}
    settle(api)
    cancelled = api.call("POST", f"/v1/trades/{tid}/cancel", api.supplier)
    assert cancelled.status_code == 202, cancelled.get_json()
    settle(api)
    # The chain says settled; the cache still says open until something reads it.
    with Session(api.rt.engine) as session:
        assert session.get(Trade, tid).state == "open"
    second = api.call("POST", "/v1/trades", api.supplier, json=opening("S2", api.shop["id"]))
    assert second.status_code == 201, second.get_json()
    with Session(api.rt.engine) as session:
        assert session.get(Trade, tid).state == "settled"


def test_two_deposits_by_one_custodial_party_at_once_owe_one_write(api):
    opened = api.call("POST", "/v1/trades", api.supplier, json=opening("S2", api.shop["id"]))
    tid = opened.get_json()["id"]
    settle(api)
    url = f"/v1/trades/{tid}/deposit"
    answers = at_once(api, [("POST", url, api.retailer, None)] * 3)
    assert [status for status, _ in answers] == [202, 202, 202], answers
    key = action_key(tid, "deposit", "buyer")
    assert {tuple(w["key"] for w in answer["writes"]) for _, answer in answers} == {(key,)}
    deposits = [w for w in writes(api, "deposit") if w.idempotency_key == key]
    assert len(deposits) == 1 and int(deposits[0].value) == DEPOSIT + PRICE


# --- Paging ---------------------------------------------------------------------------------


def new_items(api: Api, count: int, prefix: str) -> list[str]:
    serials = [f"{prefix}{index}" for index in range(count)]
    items = [{"gtin": GTIN, "serial": serial, "tag": "qr"} for serial in serials]
    made = api.call("POST", "/v1/items", api.supplier, json={"items": items}).get_json()
    assert made["created"] == count, made
    return serials


def page(api: Api, key: str, **query) -> dict:
    answer = api.call("GET", "/v1/trades", key, query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_pages_go_newest_first_without_duplicates_or_gaps_while_trades_are_opened(api):
    buyer = api.key(Role.RETAILER, "Pager")
    buyer_id = org_of(api, buyer)["id"]
    serials = new_items(api, 12, "P")
    opened = []
    for serial in serials[:7]:
        made = api.call("POST", "/v1/trades", api.supplier, json=opening(serial, buyer_id))
        assert made.status_code == 201, made.get_json()
        opened.append(made.get_json()["id"])
    everything = page(api, buyer)
    assert [t["id"] for t in everything["items"]] == sorted(opened, reverse=True)
    assert everything["next_page_token"] is None

    seen, token, later = [], None, iter(serials[7:])
    while True:
        query = {"limit": 3} | ({"page_token": token} if token else {})
        shown = page(api, buyer, **query)
        assert len(shown["items"]) <= 3
        seen += [t["id"] for t in shown["items"]]
        token = shown["next_page_token"]
        if token is None:
            break
        # Trades opened between pages are newer: they never push one into the next page.
        serial = next(later)
        made = api.call("POST", "/v1/trades", api.supplier, json=opening(serial, buyer_id))
        assert made.status_code == 201, made.get_json()
    assert seen == sorted(opened, reverse=True)
    # The newest trades are on a new first page.
    first = page(api, buyer, limit=2)
    assert first["items"][0]["id"] > max(opened) and first["next_page_token"] is not None
    # A page that ends exactly at the last trade says there is nothing more.
    total = len(page(api, buyer, limit=100)["items"])
    assert page(api, buyer, limit=total)["next_page_token"] is None
    # A stranger's list is empty; the token names no trade of anyone's.
    stranger = api.key(Role.RETAILER, "Stranger")
    assert page(api, stranger, page_token=page_token(max(opened) + 1))["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"page_token": ""}, "page_token"),
        ({"page_token": "NDI"}, "page_token"),  # an EPCIS export's token is not one of ours
        ({"page_token": "not a token!"}, "page_token"),
        ({"page_token": page_token(1)[:-2]}, "page_token"),
        ({"page_token": "A" * 65}, "page_token"),
        ({"page_token": page_token(10**19)}, "page_token"),  # past BIGINT: not a 500
        ({"page": "2"}, "page"),
    ],
)
def test_bad_paging_values_are_422_naming_the_field(api, query, field):
    answer = api.call("GET", "/v1/trades", api.retailer, query_string=query)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()


def test_two_deposits_by_the_seller_minting_into_escrow_at_once_owe_one_mint(api):
    opened = api.call("POST", "/v1/trades", api.supplier, json=opening("S2", api.shop["id"]))
    tid = opened.get_json()["id"]
    settle(api)
    url = f"/v1/trades/{tid}/deposit"
    answers = at_once(api, [("POST", url, api.supplier, None)] * 3)
    assert [status for status, _ in answers] == [202, 202, 202], answers
    assert len(writes(api, "mintWithConsent")) == 1
    assert len(writes(api, "deposit")) == 1
