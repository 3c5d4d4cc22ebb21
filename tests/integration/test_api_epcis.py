"""GET /v1/epcis/events: EPCIS 2.0 documents of the caller's readable events, filtered and paged,
each valid under GS1's schema, each event's proof checkable on the chain from the document alone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from sqlmodel import Session

from provenance_api import chain, db, unit_of_work
from provenance_api.epcis.capture import hash_context
from provenance_api.epcis.event_hash import event_hash_id
from provenance_api.epcis.export import HASH_IGNORE
from provenance_api.schemas import Role
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api, make_api
from tests.integration.events_support import make_world, serial_of
from tests.integration.test_chain_writer import drain, make_app

SCHEMA = Path(__file__).resolve().parents[1] / "vectors" / "epcis" / "EPCIS-JSON-Schema.json"
VALIDATOR = jsonschema_rs.Draft7Validator(
    json.loads(SCHEMA.read_text(encoding="utf-8")), validate_formats=True
)
URL = "/v1/epcis/events"


@pytest.fixture(params=["sqlite", "fake", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path):
    """The API over the SQL adapter (SQLite, PostgreSQL) and over the in-memory fake."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    if request.param == "fake":
        # The route reads where the contracts are deployed from the database, fake or not.
        db.upgrade(made.app.config["DATABASE_URL"])
    yield made
    made.app.extensions["provenance"].close()


@pytest.fixture(params=["gathered", "probed"])
def shape(request, monkeypatch):
    """Both shapes of the readable-events query: items gathered first, or probed per event."""
    if request.param == "probed":  # every organization "touches many" rows
        monkeypatch.setattr(unit_of_work, "MANY_ROWS", 0)
    return request.param


def fetch(api: Api, key: str, url: str) -> tuple[list[dict[str, Any]], str | None]:
    """One page: its events (the document checked against GS1's schema) and its next URL."""
    response = api.call("GET", url, key)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/ld+json"
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    document = json.loads(response.get_data())
    errors = [f"{e.instance_path}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert errors == []
    events = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    for event in events:
        body = {key: value for key, value in event.items() if key != "eventID"}
        # A captured event carries the context entries of its own document (custom prefixes).
        context = hash_context(document["@context"], event)
        assert event["eventID"] == event_hash_id(body, context, HASH_IGNORE)
    link = response.headers.get("Link")
    if link is None:
        return events, None
    match = re.fullmatch(r'<http://localhost(/[^>]+)>; rel="next"', link)
    assert match, link
    return events, match.group(1)


def fetch_all(api: Api, key: str, url: str) -> list[dict[str, Any]]:
    """Every page, following `Link: rel=next`."""
    events: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        page, next_url = fetch(api, key, next_url)
        events += page
    return events


def uuids(events: list[dict[str, Any]]) -> list[str]:
    return [event["prov:eventUUID"].removeprefix("urn:uuid:") for event in events]


def test_filters_and_pages_see_every_readable_event_once(backend, shape):
    api = backend
    world = make_world(api, items=3)
    times = ["2026-11-01T10:00:00+01:00", "2026-11-02T10:00:00+01:00", "2026-11-03T10:00:00+01:00"]
    posted = [
        world.event(1, biz_step="shipping", disposition="in_transit", event_time=times[0]),
        world.event(2, event_time=times[1]),
        world.event(1, event_time=times[2]),
        world.event(3, biz_step="shipping", disposition="in_transit", event_time=times[2]),
    ]
    assert [r["status"] for r in world.post(posted).get_json()["results"]] == ["accepted"] * 4
    posted_ids = [event["event_id"] for event in posted]

    everything = fetch_all(api, world.carrier, URL)
    assert len(everything) == 4 + 3  # the events, and the three items' commissioning
    for per_page in (1, 2, 3, 7, 8):
        paged = fetch_all(api, world.carrier, f"{URL}?perPage={per_page}")
        assert uuids(paged) == uuids(everything), per_page
    assert set(posted_ids) <= set(uuids(everything))

    shipping = f"{URL}?EQ_bizStep=shipping&perPage=1"
    assert uuids(fetch_all(api, world.carrier, shipping)) == [posted_ids[0], posted_ids[3]]
    cbv = f"{URL}?EQ_bizStep=https://ref.gs1.org/cbv/BizStep-shipping,receiving"
    assert set(uuids(fetch_all(api, world.carrier, cbv))) == set(posted_ids)
    window = f"{URL}?GE_eventTime=2026-11-02T09:00:00Z&LT_eventTime=2026-11-03T09:00:00Z"
    assert uuids(fetch_all(api, world.carrier, window)) == [posted_ids[1]]
    one = f"{URL}?MATCH_epc=https://id.gs1.org/01/{GTIN}/21/{serial_of(1)}&EQ_bizStep=receiving"
    assert uuids(fetch_all(api, world.carrier, one)) == [posted_ids[2]]
    sgtin = f"{URL}?MATCH_epc=urn:epc:id:sgtin:9506000.013435.{serial_of(3)}&perPage=1"
    assert [e["bizStep"] for e in fetch_all(api, world.carrier, sgtin)] == [
        "commissioning",
        "shipping",
    ]
    assert fetch_all(api, world.carrier, f"{URL}?eventType=AggregationEvent") == []
    assert len(fetch_all(api, world.carrier, f"{URL}?eventType=ObjectEvent")) == 7


def test_the_epc_is_an_sgtin_uri_when_the_product_states_its_prefix_length(api):
    world = make_world(api, items=1)
    patch = {"attributes": {"gs1_company_prefix_length": 7}}
    assert api.call("PATCH", f"/v1/products/{GTIN}", world.supplier, json=patch).status_code == 200
    (event,) = fetch_all(api, world.supplier, URL)
    assert event["epcList"] == [f"urn:epc:id:sgtin:9506000.013435.{serial_of(1)}"]
    as_json = api.call("GET", URL, world.supplier, headers={"Accept": "application/json"})
    assert as_json.mimetype == "application/json"
    assert as_json.get_json()["type"] == "EPCISQueryDocument"


def test_another_tenants_events_are_not_returned(backend, shape):
    api = backend
    world = make_world(api, items=2)
    world.post([world.event(1)])
    stranger = api.key(Role.RETAILER)
    assert fetch_all(api, stranger, URL) == []
    rival = api.key(Role.SUPPLIER)
    rival_gtin = "04006381333931"
    api.call("POST", "/v1/products", rival, json={"gtin": rival_gtin, "name": "Rival"})
    rows = {"items": [{"gtin": rival_gtin, "serial": "R1", "tag": "qr"}]}
    assert api.call("POST", "/v1/items", rival, json=rows).status_code == 200
    (theirs,) = fetch_all(api, rival, URL)
    assert theirs["epcList"] == [f"https://id.gs1.org/01/{rival_gtin}/21/R1"]
    mine = fetch_all(api, world.supplier, URL)
    assert len(mine) == 3 and theirs["eventID"] not in {e["eventID"] for e in mine}
    # Naming the other tenant's item is no way in either.
    other = f"{URL}?MATCH_epc=https://id.gs1.org/01/{rival_gtin}/21/R1"
    assert fetch_all(api, world.supplier, other) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("eventType=Bogus", "eventType"),
        ("GE_eventTime=yesterday", "GE_eventTime"),
        ("LT_eventTime=2026-11-02T09:00:00", "LT_eventTime"),  # no time zone
        ("EQ_bizStep=flying", "EQ_bizStep"),
        ("MATCH_epc=urn:epc:id:sgtin:nope", "MATCH_epc"),
        ("perPage=0", "perPage"),
        ("perPage=1001", "perPage"),
        ("nextPageToken=%21%21", "nextPageToken"),
        ("orderBy=eventTime", "orderBy"),
    ],
)
def test_a_bad_parameter_is_a_422_naming_it(api, query, field):
    key = api.key(Role.SUPPLIER)
    response = api.call("GET", f"{URL}?{query}", key)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_input" and list(body["fields"]) == [field], body


def test_exported_proofs_verify_on_the_chain_with_the_ledger(tmp_path):
    app, rt = make_app(tmp_path, ANCHOR_BATCH_MAX=2, ANCHOR_MAX_AGE_SECONDS=0)
    api = Api(app, lambda: SqlUnitOfWork(rt.engine))
    world = make_world(api, items=2)
    world.post([world.event(1), world.event(2), world.event(1)])
    pending = fetch_all(api, world.carrier, URL)
    assert {e["prov:anchoring"]["prov:state"] for e in pending} == {"pending"}

    rt.new_anchorer().tick()
    writer = rt.new_writer()
    drain(writer, rt)
    writer.release()
    anchored = fetch_all(api, world.carrier, URL)
    assert [e["eventID"] for e in anchored] == [e["eventID"] for e in pending]
    with Session(rt.engine) as session:
        address = known_addresses(session, rt.w3.eth.chain_id)["CustodyLedger"]
    for event in anchored:
        proof = event["prov:anchoring"]
        assert proof["prov:state"] == "confirmed", proof
        assert (proof["prov:chainId"], proof["prov:contract"]) == (rt.w3.eth.chain_id, address)
        receipt = rt.w3.eth.get_transaction_receipt(proof["prov:transaction"])
        assert receipt["blockNumber"] == proof["prov:blockNumber"]
        # A partner holding only the document: the chain id, contract and proof are in it.
        ledger = chain.contract(rt.w3, "CustodyLedger", proof["prov:contract"])
        assert ledger.functions.verifyEvent(
            bytes.fromhex(proof["prov:root"][2:]),
            bytes.fromhex(event["prov:digest"][2:]),
            bytes.fromhex(proof["prov:salt"][2:]),
            [bytes.fromhex(node[2:]) for node in proof["prov:proof"]],
        ).call()
        # ...and a tampered digest does not verify.
        assert not ledger.functions.verifyEvent(
            bytes.fromhex(proof["prov:root"][2:]),
            bytes(32),
            bytes.fromhex(proof["prov:salt"][2:]),
            [bytes.fromhex(node[2:]) for node in proof["prov:proof"]],
        ).call()

    # Title to item 2 makes its events readable to the new owner, and nothing else.
    owner = api.key(Role.RETAILER)
    me = api.call("GET", "/v1/me", owner).get_json()["organization"]["id"]
    body = {"gtin": GTIN, "serial": serial_of(2), "to_organization_id": me}
    assert api.call("POST", "/v1/transfers", world.supplier, json=body).status_code == 201
    seen = fetch_all(api, owner, URL)
    assert {tuple(e["epcList"]) for e in seen} == {(f"https://id.gs1.org/01/{GTIN}/21/S2",)}
    assert len(seen) == 2  # its commissioning and the carrier's event
    app.extensions["provenance"].close()
