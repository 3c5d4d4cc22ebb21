"""POST /v1/epcis/capture: other systems' EPCIS documents captured as jobs, exported again with
the same hash IDs, shown in verification as not device-signed, and anchored on the chain."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from provenance_api import chain, db
from provenance_api.app import create_app
from provenance_api.epcis.capture import HEADER, hash_context
from provenance_api.epcis.event_hash import event_hash_id
from provenance_api.schemas import Role
from provenance_api.services import capture as capture_service
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api, make_api
from tests.integration.events_support import make_world, serial_of
from tests.integration.test_api_epcis import URL, VALIDATOR, fetch, fetch_all
from tests.integration.test_api_verify import BERLIN, MADRID, codes, verify
from tests.integration.test_chain_writer import drain, make_app

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
EXAMPLES = sorted((VECTORS / "epcis").glob("Example*.jsonld"))
CAPTURE = "/v1/epcis/capture"
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
# What export adds to a captured event: our hash ID, proof, its context, when we recorded it.
PROV_FIELDS = ("eventID", "prov:anchoring", "@context", "recordTime")


@pytest.fixture(params=["sqlite", "fake", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path):
    """The API over the SQL adapter (SQLite, PostgreSQL) and over the in-memory fake."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    if request.param == "fake":
        db.upgrade(made.app.config["DATABASE_URL"])  # the export reads deployments from SQL
    yield made
    made.app.extensions["provenance"].close()


def document(*events: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """An EPCISDocument holding `events`."""
    return {
        "@context": context or CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-01T10:00:00.000Z",
        "epcisBody": {"eventList": list(events)},
    }


def object_event(epc: str, when: str = "2026-11-20T10:00:00.250+01:00", **fields: Any) -> dict:
    """A schema-valid ObjectEvent about `epc`."""
    return {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": "+01:00",
        "epcList": [epc],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        **fields,
    }


def capture(api: Api, key: str, body: Any, behaviour: str | None = None, status: int = 202):
    """One capture; its job (the 202 body), checked against what polling the job answers."""
    headers = {HEADER: behaviour} if behaviour is not None else {}
    response = api.call("POST", CAPTURE, key, json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    job = response.get_json()
    if status == 202:
        location = response.headers["Location"]
        assert location == f"{CAPTURE}/{job['captureID']}"
        polled = api.call("GET", location, key)
        assert polled.status_code == 200 and polled.get_json() == job
    return job


def ours(event: dict[str, Any], context: Any) -> str:
    """The event's hash ID, as this service computes it."""
    return event_hash_id({k: v for k, v in event.items() if k != "eventID"}, context)


def without_prov(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key not in PROV_FIELDS}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_gs1_examples_capture_and_export_again_with_the_same_events(backend, path):
    api = backend
    key = api.key(Role.WAREHOUSE)
    original = json.loads(path.read_text(encoding="utf-8"))
    assert VALIDATOR.is_valid(original)
    events = original["epcisBody"]["eventList"]
    expected = [ours(event, original["@context"]) for event in events]
    stated = [event.get("eventID") for event in events]

    job = capture(api, key, original)
    # GS1's example eventIDs are not the events' hash IDs (GS1's own reference vectors agree
    # with ours: see tests/vectors/epcis/SOURCE.md): stored under ours, with a warning each.
    warned = [(w["index"], w["eventID"]) for w in job["warnings"]]
    assert warned == [(i, given) for i, given in enumerate(stated) if given]
    for warning in job["warnings"]:
        assert expected[warning["index"]] in warning["message"]
    assert (job["status"], job["success"], job["running"]) == ("succeeded", True, False)
    assert (job["eventCount"], job["capturedCount"], job["errors"]) == (
        len(events),
        len(events),
        [],
    )

    exported = fetch_all(api, key, URL)  # each page valid under the schema, hash IDs recomputed
    assert [event["eventID"] for event in exported] == expected
    assert [without_prov(event) for event in exported] == [
        {k: v for k, v in event.items() if k != "eventID"} for event in events
    ]
    received = [e["prov:anchoring"].get("prov:receivedEventID") for e in exported]
    assert received == stated
    extra = [entry for entry in original["@context"] if isinstance(entry, dict)]
    for event in exported:
        assert event.get("@context", []) == extra  # custom prefixes travel with the event
        assert event["prov:anchoring"]["prov:deviceSigned"] is False
        assert event["prov:anchoring"]["prov:state"] == "pending"
        recorded = datetime.fromisoformat(event["recordTime"])
        assert abs(datetime.now(UTC) - recorded) < timedelta(minutes=5)
    if "TransactionEvents" in path.stem:
        only = fetch_all(api, key, f"{URL}?eventType=TransactionEvent&EQ_bizStep=transporting")
        assert [event["eventID"] for event in only] == [expected[1]]
        assert fetch_all(api, key, f"{URL}?eventType=ObjectEvent") == []


def test_rollback_keeps_nothing_and_proceed_keeps_the_good_events(backend):
    api = backend
    key = api.key(Role.RETAILER)
    good = [object_event(f"urn:epc:id:sgtin:4012345.011111.{n}") for n in range(3)]
    # A Digital Link whose GTIN's check digit is wrong names an item that cannot exist.
    bad = object_event("https://id.gs1.org/01/04012345111119/21/99")
    body = document(good[0], bad, good[1], good[2])

    rolled = capture(api, key, body)  # rollback is the default
    error = {
        "index": 1,
        "eventID": None,
        "message": "EPC 'https://id.gs1.org/01/04012345111119/21/99' is not a valid SGTIN:"
        f" {rolled['errors'][0]['message'].split('SGTIN: ', 1)[-1]}",
    }
    assert "check digit" in rolled["errors"][0]["message"]
    assert rolled["captureErrorBehaviour"] == "rollback"
    assert (rolled["status"], rolled["capturedCount"], rolled["errors"]) == ("failed", 0, [error])
    assert fetch_all(api, key, URL) == []
    assert capture(api, key, body, "rollback")["capturedCount"] == 0

    proceeded = capture(api, key, body, "proceed")
    assert proceeded["captureErrorBehaviour"] == "proceed"
    assert (proceeded["status"], proceeded["success"]) == ("failed", False)
    assert (proceeded["capturedCount"], proceeded["errors"]) == (3, [error])
    exported = fetch_all(api, key, URL)
    assert [event["eventID"] for event in exported] == [ours(e, CONTEXT) for e in good]

    # A stated hash ID that is not the event's is a warning: stored under ours, theirs kept.
    wrong = "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"
    misnamed = object_event("urn:epc:id:sgtin:4012345.011111.6", eventID=wrong)
    warned = capture(api, key, document(misnamed))
    assert (warned["status"], warned["capturedCount"], warned["errors"]) == ("succeeded", 1, [])
    assert warned["warnings"] == [
        {
            "index": 0,
            "eventID": wrong,
            "message": f"eventID {wrong} is not this event's hash ID: GS1's event hash algorithm"
            f" gives {ours(misnamed, CONTEXT)}, under which it is stored and exported (yours is"
            " kept as prov:receivedEventID)",
        }
    ]
    (stored,) = fetch_all(api, key, f"{URL}?MATCH_epc=urn:epc:id:sgtin:4012345.011111.6")
    assert stored["eventID"] == ours(misnamed, CONTEXT)
    assert stored["prov:anchoring"]["prov:receivedEventID"] == wrong

    # A stated hash ID that is right, and a urn:uuid eventID, are both fine; the uuid is kept.
    right = object_event("urn:epc:id:sgtin:4012345.011111.7")
    right["eventID"] = ours(right, CONTEXT)
    named = object_event("urn:epc:id:sgtin:4012345.011111.8")
    named["eventID"] = "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"
    assert capture(api, key, document(right, named))["status"] == "succeeded"
    (last,) = fetch_all(api, key, f"{URL}?MATCH_epc=urn:epc:id:sgtin:4012345.011111.8")
    assert last["eventID"] == ours(named, CONTEXT)
    assert last["prov:anchoring"]["prov:receivedEventID"] == named["eventID"]
    (first,) = fetch_all(api, key, f"{URL}?MATCH_epc=urn:epc:id:sgtin:4012345.011111.7")
    assert "prov:receivedEventID" not in first["prov:anchoring"]


def test_capturing_the_same_events_again_stores_them_once(backend):
    api = backend
    key = api.key(Role.CARRIER)
    events = [object_event(f"urn:epc:id:sgtin:4012345.011111.{n}") for n in range(2)]
    first = capture(api, key, document(*events))
    assert (first["capturedCount"], first["duplicateCount"]) == (2, 0)
    again = capture(api, key, document(events[1], events[0], events[0]))
    assert (again["status"], again["capturedCount"], again["duplicateCount"]) == (
        "succeeded",
        3,
        3,
    )
    assert first["captureID"] != again["captureID"]
    assert len(fetch_all(api, key, URL)) == 2
    # Another organization capturing the same event stores its own statement of it.
    other = api.key(Role.CARRIER)
    assert capture(api, other, document(events[0]))["duplicateCount"] == 0
    assert len(fetch_all(api, other, URL)) == 1


@pytest.mark.postgres
def test_a_capture_racing_another_of_the_same_events_stores_them_once(postgres_url, tmp_path):
    api = make_api("postgres", tmp_path, postgres_url)
    key = api.key(Role.WAREHOUSE)
    me = api.call("GET", "/v1/me", key).get_json()["organization"]["id"]
    events = [object_event(f"urn:epc:id:sgtin:4012345.011111.{n}") for n in range(3)]
    body = document(*events)
    calls = []

    def now() -> datetime:
        # The second call is ours, after reading what was known and before inserting: the
        # racing request of the same organization commits the same events right then.
        calls.append(1)
        if len(calls) == 2:
            racing = capture_service.capture(api.uow(), me, body, "rollback")
            assert (racing.status, racing.duplicateCount) == ("succeeded", 0)
        return datetime.now(UTC)

    job = capture_service.capture(api.uow(), me, body, "rollback", now=now)
    assert (job.status, job.capturedCount, job.duplicateCount) == ("succeeded", 3, 3)
    assert len(fetch_all(api, key, URL)) == 3
    api.app.extensions["provenance"].close()


def test_a_job_that_cannot_be_stored_ends_failed_and_keeps_nothing(api):
    key = api.key(Role.WAREHOUSE)
    me = api.call("GET", "/v1/me", key).get_json()["organization"]["id"]

    def broken_salt() -> bytes:
        raise OSError("no entropy")

    body = document(object_event("urn:epc:id:sgtin:4012345.011111.1"))
    job = capture_service.capture(api.uow(), me, body, "rollback", salt=broken_salt)
    assert (job.status, job.running, job.capturedCount) == ("failed", False, 0)
    (error,) = job.errors
    assert error.index is None and "(OSError)" in error.message
    polled = api.call("GET", f"{CAPTURE}/{job.captureID}", key).get_json()
    assert polled["status"] == "failed" and polled["errors"][0]["index"] is None
    assert fetch_all(api, key, URL) == []


def test_only_the_capturer_polls_its_job(api):
    key = api.key(Role.WAREHOUSE)
    job = capture(api, key, document(object_event("urn:epc:id:sgtin:4012345.011111.1")))
    stranger = api.key(Role.WAREHOUSE)
    response = api.call("GET", f"{CAPTURE}/{job['captureID']}", stranger)
    assert response.status_code == 404
    assert response.get_json()["fields"] == {"capture_id": "not found"}
    assert api.call("GET", f"{CAPTURE}/{job['captureID']}").status_code == 401
    operator = api.key(Role.OPERATOR)
    assert api.call("GET", f"{CAPTURE}/{job['captureID']}", operator).status_code == 403
    assert api.call("POST", CAPTURE, operator, json=document()).status_code == 403
    # Nor does the stranger see the captured events.
    assert fetch_all(api, stranger, URL) == []


@pytest.mark.parametrize("header", ["ROLLBACK", " proceed "])
def test_the_header_is_read_without_regard_to_case(api, header):
    key = api.key(Role.WAREHOUSE)
    job = capture(api, key, document(object_event("urn:epc:id:sgtin:4012345.011111.1")), header)
    assert job["captureErrorBehaviour"] == header.strip().lower()


def test_bad_requests_are_json_errors_naming_what_is_wrong(tmp_path):
    settings = {"TESTING": True, "DATA_DIR": str(tmp_path / "d"), "CAPTURE_MAX_EVENTS": 3}
    settings["MAX_CONTENT_LENGTH"] = 20_000
    app = create_app(settings)
    db.upgrade(app.config["DATABASE_URL"])
    engine = app.extensions["provenance"].engine
    api = Api(app, lambda: SqlUnitOfWork(engine))
    key = api.key(Role.RETAILER)
    one = document(object_event("urn:epc:id:sgtin:4012345.011111.1"))

    response = api.call("POST", CAPTURE, key, json=one, headers={HEADER: "sometimes"})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == [HEADER]
    assert HEADER in response.get_json()["message"]

    events = [object_event(f"urn:epc:id:sgtin:4012345.011111.{n}") for n in range(4)]
    response = api.call("POST", CAPTURE, key, json=document(*events))
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert "at most 3" in response.get_json()["message"]

    huge = document(object_event("urn:epc:id:sgtin:4012345.011111.1", **{"ex:x": "y" * 30_000}))
    response = api.call("POST", CAPTURE, key, json=huge)
    assert response.status_code == 413 and response.get_json()["fields"] == {"body": "too large"}

    no_action = copy.deepcopy(one)
    del no_action["epcisBody"]["eventList"][0]["action"]
    response = api.call("POST", CAPTURE, key, json=no_action)
    assert response.status_code == 422
    assert "epcisBody.eventList.0" in response.get_json()["fields"]

    bad_time = document(object_event("urn:epc:id:sgtin:4012345.011111.1", when="yesterday"))
    assert api.call("POST", CAPTURE, key, json=bad_time).status_code == 422
    query = copy.deepcopy(one) | {"type": "EPCISQueryDocument"}
    assert api.call("POST", CAPTURE, key, json=query).status_code == 422
    response = api.call("POST", CAPTURE, key, data=b"{not json", content_type="application/json")
    assert response.status_code == 422 and "body" in response.get_json()["fields"]
    assert api.call("POST", CAPTURE, key, json=[1, 2]).status_code == 422
    # Nothing of the refused requests became a job or an event.
    assert fetch_all(api, key, URL) == []
    app.extensions["provenance"].close()


def test_pages_merge_device_events_and_captured_ones_each_once(backend):
    api = backend
    world = make_world(api, items=2)
    item_1 = f"urn:epc:id:sgtin:9506000.013435.{serial_of(1)}"
    assert world.post([world.event(1), world.event(2)]).get_json()["accepted"] == 2
    captured = [
        object_event(item_1, "2026-11-20T10:00:00.250Z", bizStep="receiving"),
        object_event(f"https://id.gs1.org/01/{GTIN}/21/{serial_of(2)}", "2026-11-20T10:00:00.750Z"),
        {
            "type": "AggregationEvent",
            "eventTime": "2026-11-21T10:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "parentID": "urn:epc:id:sscc:4012345.0000000001",
            "childEPCs": [item_1],
            "action": "ADD",
            "bizStep": "packing",
        },
    ]
    assert capture(api, world.carrier, document(*captured[:2]))["status"] == "succeeded"
    assert world.post([world.event(1)]).get_json()["accepted"] == 1
    assert capture(api, world.carrier, document(captured[2]))["status"] == "succeeded"

    everything = fetch_all(api, world.carrier, URL)
    ids = [event["eventID"] for event in everything]
    assert len(ids) == len(set(ids)) == 2 + 3 + 2 + 1  # commissionings, device, captured
    # Arrival order: the device events, then the first capture, the next device event, ...
    signed = [e["prov:anchoring"]["prov:deviceSigned"] for e in everything]
    assert signed == [True] * 4 + [False, False, True, False]
    for per_page in (1, 2, 3, 4, 5, 7, 8, 9):
        paged = fetch_all(api, world.carrier, f"{URL}?perPage={per_page}")
        assert [event["eventID"] for event in paged] == ids, per_page

    captured_ids = [ours(event, CONTEXT) for event in captured]
    match = f"{URL}?MATCH_epc=https://id.gs1.org/01/{GTIN}/21/{serial_of(1)}&perPage=1"
    matched = fetch_all(api, world.carrier, match)
    assert [e["eventID"] for e in matched if not e["prov:anchoring"]["prov:deviceSigned"]] == [
        captured_ids[0],
        captured_ids[2],
    ]
    packing = fetch_all(api, world.carrier, f"{URL}?EQ_bizStep=packing")
    assert [e["eventID"] for e in packing] == [captured_ids[2]]
    aggregations = fetch_all(api, world.carrier, f"{URL}?eventType=AggregationEvent")
    assert [e["eventID"] for e in aggregations] == [captured_ids[2]]
    # Milliseconds count: 10:00:00.500 falls between the two captured events.
    after = fetch_all(api, world.carrier, f"{URL}?GE_eventTime=2026-11-20T10:00:00.500Z")
    assert captured_ids[1] in [e["eventID"] for e in after]
    assert captured_ids[0] not in [e["eventID"] for e in after]
    before = fetch_all(
        api,
        world.carrier,
        f"{URL}?GE_eventTime=2026-11-20T00:00:00Z&LT_eventTime=2026-11-20T10:00:00.500Z",
    )
    assert [e["eventID"] for e in before] == [captured_ids[0]]

    # The supplier may read its items, so it sees what others captured about them; a stranger
    # sees nothing, and capturing an event about an item gives no access to its custody.
    supplier = fetch_all(api, world.supplier, URL)
    assert set(captured_ids) <= {event["eventID"] for event in supplier}
    stranger = api.key(Role.RETAILER)
    assert fetch_all(api, stranger, URL) == []
    mine = capture(api, stranger, document(object_event(item_1, bizStep="inspecting")))
    assert mine["status"] == "succeeded"
    (seen,) = fetch_all(api, stranger, URL)
    assert seen["bizStep"] == "inspecting" and seen["prov:anchoring"]["prov:deviceSigned"] is False


BROWSER = {"Accept": "text/html"}


def test_a_captured_event_shows_in_verification_but_is_no_custody_evidence(api):
    world = make_world(api, items=1)
    partner = api.key(Role.CARRIER, "Harbour Logistics")
    # A minute ago, 1,869 km from where the buyer is: a device event there would be an
    # impossible journey; a captured event is a partner's statement, not custody evidence.
    minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    event = object_event(
        f"urn:epc:id:sgtin:9506000.013435.{serial_of(1)}",
        minute_ago,
        readPoint={"id": MADRID},
        bizStep="https://ref.gs1.org/cbv/BizStep-retail_selling",
        disposition="https://ref.gs1.org/cbv/Disp-retail_sold",
    )
    assert capture(api, partner, document(event))["status"] == "succeeded"

    body = verify(api, world.tap(1), "buyer-phone", geo=BERLIN, place="Berlin")
    assert (body["verdict"], codes(body)) == ("authentic", [])
    captured, commissioning = body["history"]  # by event time: the capture says a minute ago
    assert commissioning["device_signed"] is True and commissioning["biz_step"] == "commissioning"
    assert captured["device_signed"] is False
    assert captured["event_id"] == ours(event, CONTEXT)
    assert captured["event_type"] == "ObjectEvent"
    assert (captured["biz_step"], captured["disposition"]) == ("retail_selling", "retail_sold")
    assert captured["read_point"] == MADRID
    assert captured["party_name"] == "Harbour Logistics"
    assert (
        captured["party"]
        == api.call("GET", "/v1/me", partner).get_json()["organization"]["address"]
    )
    assert captured["anchoring"] == "pending"
    assert captured["digest"] == "0x" + captured["event_id"].split(";")[1].split("?")[0]
    # A sale it states does not start the after-sale rules either: the owner scans freely.
    for n in range(6):
        assert verify(api, world.tap(1), f"phone-{n}")["verdict"] == "authentic"
    # The buyer's page says who reported the step, and that no reader signed it.
    page = api.call("GET", world.tap(1).removeprefix("https://id.example.com"), headers=BROWSER)
    assert page.status_code == 200
    assert (
        "<dt>Recorded</dt><dd>Reported by Harbour Logistics from another system: no reader of"
        " ours scanned the tag at this step, so it rests on Harbour Logistics&#39;s word</dd>"
    ) in page.get_data(as_text=True)


def test_captured_events_are_anchored_with_device_events_and_verify_on_chain(tmp_path):
    app, rt = make_app(tmp_path, ANCHOR_BATCH_MAX=64, ANCHOR_MAX_AGE_SECONDS=0)
    api = Api(app, lambda: SqlUnitOfWork(rt.engine))
    world = make_world(api, items=1)
    assert world.post([world.event(1)]).get_json()["accepted"] == 1
    path = next(path for path in EXAMPLES if "TransactionEvents" in path.stem)
    original = json.loads(path.read_text(encoding="utf-8"))
    assert capture(api, world.carrier, original)["capturedCount"] == 2

    rt.new_anchorer().tick()
    writer = rt.new_writer()
    drain(writer, rt)
    writer.release()
    events, _ = fetch(api, world.carrier, f"{URL}?perPage=100")
    assert len(events) == 2 + 2  # commissioning and the device event; the two captured
    roots = {event["prov:anchoring"]["prov:root"] for event in events}
    assert len(roots) == 1  # one batch holds both kinds
    with Session(rt.engine) as session:
        address = known_addresses(session, rt.w3.eth.chain_id)["CustodyLedger"]
    captured = [e for e in events if not e["prov:anchoring"]["prov:deviceSigned"]]
    assert len(captured) == 2
    for event in captured:
        # A partner holding only this document: recompute the hash ID, take its SHA-256 ...
        proof = event["prov:anchoring"]
        body = {key: value for key, value in event.items() if key != "eventID"}
        context = hash_context(
            ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"prov": "x"}],
            event,
        )
        hash_id = event_hash_id(body, context, ["prov:anchoring"])
        assert hash_id == event["eventID"]
        digest = bytes.fromhex(hash_id.removeprefix("ni:///sha-256;").split("?")[0])
        assert proof["prov:state"] == "confirmed", proof
        assert (proof["prov:chainId"], proof["prov:contract"]) == (rt.w3.eth.chain_id, address)
        ledger = chain.contract(rt.w3, "CustodyLedger", proof["prov:contract"])
        nodes = [bytes.fromhex(node[2:]) for node in proof["prov:proof"]]
        root, salt = bytes.fromhex(proof["prov:root"][2:]), bytes.fromhex(proof["prov:salt"][2:])
        assert ledger.functions.verifyEvent(root, digest, salt, nodes).call()
        # ... and an altered event (another hash ID) does not verify.
        changed = dict(body, eventTimeZoneOffset="+03:00")
        other = event_hash_id(changed, context, ["prov:anchoring"])
        other_digest = bytes.fromhex(other.removeprefix("ni:///sha-256;").split("?")[0])
        assert not ledger.functions.verifyEvent(root, other_digest, salt, nodes).call()
    app.extensions["provenance"].close()
