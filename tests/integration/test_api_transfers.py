"""/v1/transfers and /v1/items/{gtin}/{serial}/passport: ownership through to the chain."""

from __future__ import annotations

import threading
import time

import pytest
from eth_account import Account
from sqlmodel import Session

from contracts_abi import eip712
from contracts_abi.passport import passport_id, tag_commitment
from provenance_api import chain
from provenance_api.models import Organization
from provenance_api.schemas import Role
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api
from tests.integration.test_chain_writer import drain, make_app

UID = "04A1B2C3D4E5F6"


def world(tmp_path, database_url: str = "", chain_url: str = "", **extra) -> Api:
    """The API with the contracts deployed, a supplier with GTIN and items S1..S3."""
    app, rt = make_app(tmp_path, chain_url, database_url, **extra)
    api = Api(app, lambda: SqlUnitOfWork(rt.engine))
    api.rt = rt
    api.supplier = api.key(Role.SUPPLIER, "Maker")
    api.retailer = api.key(Role.RETAILER, "Shop")
    api.carrier = api.key(Role.CARRIER, "Haul")
    product = {"gtin": GTIN, "name": "Tea"}
    assert api.call("POST", "/v1/products", api.supplier, json=product).status_code == 201
    items = [{"gtin": GTIN, "serial": "S1", "tag": "ntag21x", "uid": UID}]
    items += [{"gtin": GTIN, "serial": s, "tag": "qr"} for s in ("S2", "S3")]
    created = api.call("POST", "/v1/items", api.supplier, json={"items": items}).get_json()
    assert created["created"] == 3, created
    return api


def org_of(api: Api, key: str) -> dict:
    return api.call("GET", "/v1/me", key).get_json()["organization"]


def passport(api: Api):
    rt = api.rt
    with Session(rt.engine) as session:
        address = known_addresses(session, rt.w3.eth.chain_id)["ProductPassport"]
    return chain.contract(rt.w3, "ProductPassport", address)


def settle(api: Api) -> None:
    """Run the chain writer's tick until every owed write is confirmed or failed."""
    writer = api.rt.new_writer()
    try:
        drain(writer, api.rt)
    finally:
        writer.release()


def transfer(api: Api, key: str, serial: str = "S1", **body):
    return api.call("POST", "/v1/transfers", key, json={"gtin": GTIN, "serial": serial, **body})


@pytest.fixture
def api(tmp_path):
    made = world(tmp_path)
    yield made
    made.rt.close()


@pytest.mark.parametrize(
    "where",
    [
        "embedded+sqlite",
        pytest.param("anvil+postgres", marks=[pytest.mark.postgres, pytest.mark.anvil]),
    ],
)
def test_first_transfer_mints_to_the_new_owner_and_the_next_relays_a_consent(
    tmp_path, request, where
):
    if where == "embedded+sqlite":
        api = world(tmp_path)
    else:
        api = world(
            tmp_path,
            request.getfixturevalue("postgres_url"),
            request.getfixturevalue("anvil_url"),
            CONFIRMATIONS=0,
        )
    maker, shop = org_of(api, api.supplier), org_of(api, api.retailer)
    first = transfer(api, api.supplier, to_organization_id=shop["id"])
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    token_id = passport_id(GTIN, "S1")
    assert body["token_id"] == hex(token_id)
    assert (body["sequence"], body["mints"], body["chain"]) == (1, True, "owed")
    assert (body["from_address"], body["to_address"]) == (maker["address"], shop["address"])
    assert body["to_organization_id"] == shop["id"] and body["nonce"] == 0
    settle(api)
    contract = passport(api)
    assert contract.functions.ownerOf(token_id).call() == shop["address"]
    tag = tag_commitment("ntag21x", bytes.fromhex(UID))
    assert contract.functions.tagCommitmentOf(token_id).call() == tag
    assert contract.functions.supplierOf(GTIN).call() == maker["address"]

    # The shop sells to a buyer's wallet: a consented transfer, the shop's first nonce.
    buyer = Account.create().address
    second = transfer(api, api.retailer, to_address=buyer.lower())
    assert second.status_code == 201, second.get_json()
    assert (second.get_json()["mints"], second.get_json()["to_address"]) == (False, buyer)
    settle(api)
    assert contract.functions.ownerOf(token_id).call() == buyer
    listed = api.call(
        "GET", "/v1/transfers", api.supplier, query_string={"gtin": GTIN, "serial": "S1"}
    )
    rows = listed.get_json()["items"]
    assert [(r["sequence"], r["chain"]) for r in rows] == [(1, "confirmed"), (2, "confirmed")]
    assert (
        api.call(
            "GET", "/v1/transfers", api.retailer, query_string={"gtin": GTIN, "serial": "S1"}
        ).get_json()
        == listed.get_json()
    )

    seen = api.call("GET", f"/v1/items/{GTIN}/S1/passport", api.retailer).get_json()
    assert (seen["owner_address"], seen["owner_organization_id"]) == (buyer, None)
    assert (seen["minted"], seen["transfers"], seen["token_id"]) == (True, 2, hex(token_id))
    assert api.call("GET", f"/v1/items/{GTIN}/S1/passport", api.carrier).status_code == 404
    fresh = api.call("GET", f"/v1/items/{GTIN}/S2/passport", api.supplier).get_json()
    assert (fresh["owner_address"], fresh["minted"]) == (maker["address"], False)

    # Neither former owner may move it again; a party that never held it is not told it exists.
    for key in (api.supplier, api.retailer):
        again = transfer(api, key, to_organization_id=shop["id"])
        assert again.status_code == 409, again.get_json()
        assert again.get_json()["fields"] == {"serial": "not the current owner"}
    assert transfer(api, api.carrier, to_organization_id=shop["id"]).status_code == 404
    outsider = api.call(
        "GET", "/v1/transfers", api.carrier, query_string={"gtin": GTIN, "serial": "S1"}
    )
    assert outsider.status_code == 404
    api.rt.close()


def test_the_supplier_mints_on_request_then_transfers(api):
    maker, shop = org_of(api, api.supplier), org_of(api, api.retailer)
    minted = api.call("POST", f"/v1/items/{GTIN}/S2/passport", api.supplier, json={})
    assert minted.status_code == 201, minted.get_json()
    assert minted.get_json()["to_address"] == maker["address"] and minted.get_json()["mints"]
    again = api.call("POST", f"/v1/items/{GTIN}/S2/passport", api.supplier, json={})
    assert again.status_code == 409
    assert again.get_json()["fields"] == {"serial": "passport already minted"}
    moved = transfer(api, api.supplier, "S2", to_organization_id=shop["id"])
    assert moved.status_code == 201 and moved.get_json()["nonce"] == 1  # the mint spent 0
    settle(api)
    assert passport(api).functions.ownerOf(passport_id(GTIN, "S2")).call() == shop["address"]
    # Only the supplier (the route's role) and only its own items.
    rival = api.key(Role.SUPPLIER, "Rival")
    assert api.call("POST", f"/v1/items/{GTIN}/S3/passport", rival, json={}).status_code == 404
    assert (
        api.call("POST", f"/v1/items/{GTIN}/S3/passport", api.retailer, json={}).status_code == 403
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to_address": "0x" + "00" * 20}, "to_address"),
        ({"to_address": "0x1234"}, "to_address"),
        ({}, "to_organization_id"),
        ({"to_organization_id": 1, "to_address": "0x" + "11" * 20}, "to_organization_id"),
        ({"to_address": "0x" + "11" * 20, "signature": "0x1234"}, "signature"),
        ({"to_address": "0x" + "11" * 20, "deadline": 1}, "deadline"),
        ({"to_address": "0x" + "11" * 20, "surprise": 1}, "surprise"),
        ({"to_address": "0x" + "11" * 20, "nonce": -1}, "nonce"),
    ],
)
def test_malformed_transfers_are_422_naming_the_field(api, body, field):
    answer = transfer(api, api.supplier, **body)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()


def test_a_body_without_gtin_and_an_unknown_item_or_organization(api):
    answer = api.call("POST", "/v1/transfers", api.supplier, json={"serial": "S1"})
    assert answer.status_code == 422 and "gtin" in answer.get_json()["fields"]
    assert transfer(api, api.supplier, "NOPE", to_address="0x" + "11" * 20).status_code == 404
    unknown_org = transfer(api, api.supplier, to_organization_id=99_999)
    assert unknown_org.status_code == 404
    assert unknown_org.get_json()["fields"] == {"to_organization_id": "not found"}
    to_self = transfer(api, api.supplier, to_organization_id=org_of(api, api.supplier)["id"])
    assert to_self.status_code == 422
    by_address = transfer(api, api.supplier, "S2", to_address=org_of(api, api.retailer)["address"])
    assert by_address.get_json()["to_organization_id"] == org_of(api, api.retailer)["id"]
    assert transfer(api, api.retailer, "S2", to_address="0x" + "11" * 20).status_code == 201
    # Nothing was recorded by the refusals: the first real transfer is still sequence 1.
    ok = transfer(api, api.supplier, to_address="0x" + "11" * 20)
    assert ok.status_code == 201 and ok.get_json()["sequence"] == 1


def test_another_suppliers_item_is_404_and_stays_put(api):
    rival = api.key(Role.SUPPLIER, "Rival")
    answer = transfer(api, rival, to_address=Account.create().address)
    assert answer.status_code == 404
    listed = api.call(
        "GET", "/v1/transfers", api.supplier, query_string={"gtin": GTIN, "serial": "S1"}
    )
    assert listed.get_json() == {"items": []}


def _own_key(api: Api, key: str):
    """Make the caller's organization one that holds its own key (the API has none of it)."""
    account = Account.create()
    org_id = org_of(api, key)["id"]
    uow = api.uow()
    with uow:
        org: Organization = uow.organizations.get(org_id)
        org.address, org.encrypted_key = account.address, None
        uow.organizations.add(org)
        uow.commit()
    return account


def test_an_owner_with_its_own_key_signs_and_a_bad_signature_is_refused(api):
    account = _own_key(api, api.supplier)
    contract = passport(api)
    buyer = Account.create().address
    unsigned = transfer(api, api.supplier, to_address=buyer)
    assert unsigned.status_code == 422 and unsigned.get_json()["fields"] == {
        "signature": "required"
    }
    deadline = int(time.time()) + 3600
    consent = {
        "chain_id": api.rt.w3.eth.chain_id,
        "passport": contract.address,
        "to": buyer,
        "token_id": passport_id(GTIN, "S1"),
        "tag_commitment": tag_commitment("ntag21x", bytes.fromhex(UID)),
        "nonce": 0,
        "deadline": deadline,
    }
    forged = eip712.sign_mint_consent(Account.create().key, **consent)
    for signature in (
        forged,
        eip712.sign_mint_consent(account.key, **{**consent, "to": Account.create().address}),
    ):
        bad = transfer(
            api,
            api.supplier,
            to_address=buyer,
            nonce=0,
            deadline=deadline,
            signature="0x" + signature.hex(),
        )
        assert bad.status_code == 422, bad.get_json()
        assert bad.get_json()["fields"] == {"signature": "not the owner's MintConsent"}
    good = "0x" + eip712.sign_mint_consent(account.key, **consent).hex()
    stale = transfer(
        api, api.supplier, to_address=buyer, nonce=5, deadline=deadline, signature=good
    )
    assert stale.status_code == 409 and stale.get_json()["fields"] == {"nonce": "expected 0"}
    no_nonce = transfer(api, api.supplier, to_address=buyer, deadline=deadline, signature=good)
    assert no_nonce.status_code == 422 and "nonce" in no_nonce.get_json()["fields"]
    ok = transfer(api, api.supplier, to_address=buyer, nonce=0, deadline=deadline, signature=good)
    assert ok.status_code == 201, ok.get_json()
    settle(api)
    assert contract.functions.ownerOf(passport_id(GTIN, "S1")).call() == buyer


def race(api: Api, serial: str, targets: list[int]) -> list[int]:
    """The supplier transfers (GTIN, serial) to each target at once, from one thread each."""
    start = threading.Barrier(len(targets))
    statuses: list[int] = []

    def send(target: int) -> None:
        client = api.app.test_client()
        start.wait()
        answer = client.post(
            "/v1/transfers",
            headers={"Authorization": f"Bearer {api.supplier}"},
            json={"gtin": GTIN, "serial": serial, "to_organization_id": target},
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=send, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_double_transfer_race_has_exactly_one_winner(tmp_path, request, database):
    url = request.getfixturevalue("postgres_url") if database == "postgres" else ""
    api = world(tmp_path, url)
    targets = [org_of(api, api.retailer)["id"], org_of(api, api.carrier)["id"]]
    for serial in ("S1", "S2", "S3"):
        assert sorted(race(api, serial, targets)) == [201, 409]
        query = {"gtin": GTIN, "serial": serial}
        rows = api.call("GET", "/v1/transfers", api.supplier, query_string=query).get_json()
        assert len(rows["items"]) == 1
    # Every mint consent took its own nonce of the supplier's, and all three reach the chain.
    settle(api)
    contract = passport(api)
    owners = {contract.functions.ownerOf(passport_id(GTIN, f"S{n}")).call() for n in (1, 2, 3)}
    assert owners <= {org_of(api, api.retailer)["address"], org_of(api, api.carrier)["address"]}
    api.rt.close()
