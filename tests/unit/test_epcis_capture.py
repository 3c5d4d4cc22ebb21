"""EPCIS capture's pure rules: the error behaviour, each event's hash ID and checks, its SGTINs,
and the exported form that hashes as the event did when captured."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provenance_api.epcis import capture
from provenance_api.epcis.event_hash import event_hash_id
from provenance_api.epcis.export import CONTEXT, HASH_IGNORE
from provenance_api.services.anchoring import choose_batch
from provenance_api.services.ports import PendingEvent

HASHES = Path(__file__).resolve().parents[1] / "vectors" / "epcis-hash"
STANDARD = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def event(**fields):
    return {
        "type": "ObjectEvent",
        "eventTime": "2005-04-03T20:33:31.116-06:00",
        "eventTimeZoneOffset": "-06:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        **fields,
    }


@pytest.mark.parametrize(
    ("header", "behaviour"),
    [(None, "rollback"), ("rollback", "rollback"), ("PROCEED", "proceed"), (" proceed", "proceed")],
)
def test_the_error_behaviour_header(header, behaviour):
    assert capture.error_behaviour(header) == behaviour


@pytest.mark.parametrize("header", ["", "abort", "rollback,proceed"])
def test_another_error_behaviour_is_refused_naming_the_header(header):
    with pytest.raises(ValueError, match="GS1-Capture-Error-Behaviour must be one of"):
        capture.error_behaviour(header)


def test_the_reference_vectors_events_get_the_reference_hash_ids():
    # GS1's prototype's epcisQueryDocument: its events state stale eventIDs (those of GS1's
    # Example_9.6.1 document); the vector's expected hash IDs are what capture computes.
    document = json.loads((HASHES / "epcisQueryDocument.jsonld").read_text(encoding="utf-8"))
    expected = (HASHES / "epcisQueryDocument.hashes").read_text(encoding="utf-8").split()
    events = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    read = [capture.read_event(n, e, document["@context"]) for n, e in enumerate(events)]
    assert [r.hash_id for r in read] == expected
    for stated, hash_id in zip(read, expected, strict=True):
        assert stated.warning is not None
        assert hash_id in stated.warning and stated.received_event_id in stated.warning
    for stated in events:
        del stated["eventID"]
    read = [capture.read_event(n, e, document["@context"]) for n, e in enumerate(events)]
    assert [(r.hash_id, r.warning) for r in read] == [(hash_id, None) for hash_id in expected]


def test_a_good_event_is_read_with_its_time_step_and_digest():
    context = [STANDARD, {"example": "http://ns.example.com/epcis/"}]
    given = event(
        eventID="urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
        bizStep="urn:epcglobal:cbv:bizstep:shipping",
        **{"example:myField": "x", "prov:anchoring": {"prov:root": "0x00"}},
    )
    read = capture.read_event(4, given, context)
    assert isinstance(read, capture.CapturedEvent)
    assert read.index == 4
    assert read.received_event_id == "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"
    assert read.hash_id == event_hash_id(given, context, HASH_IGNORE)
    assert read.digest.hex() == read.hash_id.split(";")[1].split("?")[0]
    assert (
        read.event_time_ms
        == int(datetime(2005, 4, 4, 2, 33, 31, tzinfo=UTC).timestamp()) * 1000 + 116
    )
    assert (read.biz_step, read.time_zone_offset, read.event_type) == (
        "shipping",
        "-06:00",
        "ObjectEvent",
    )
    assert "prov:anchoring" not in read.event  # the sender's anchoring is not ours
    assert read.event["eventID"] == given["eventID"]
    assert read.context == [{"example": "http://ns.example.com/epcis/"}]


def test_a_stated_hash_id_not_ours_is_a_warning_whatever_its_case_or_version():
    good = event()
    ours = event_hash_id(good, None)
    digest = ours.split(";")[1].split("?")[0]
    for stated in (
        ours,
        ours.upper().replace("NI:///SHA-256;", "ni:///sha-256;"),
        f"ni:///sha-256;{digest}",
    ):
        read = capture.read_event(0, event(eventID=stated), None)
        assert isinstance(read, capture.CapturedEvent) and read.warning is None
    wrong = f"ni:///sha-256;{'f' * 64}?ver=CBV2.0"
    read = capture.read_event(3, event(eventID=wrong), None)
    assert isinstance(read, capture.CapturedEvent)
    assert (read.hash_id, read.received_event_id) == (ours, wrong)
    assert read.warning == (
        f"eventID {wrong} is not this event's hash ID: GS1's event hash algorithm gives {ours},"
        " under which it is stored and exported (yours is kept as prov:receivedEventID)"
    )


@pytest.mark.parametrize(
    "epc",
    [
        "https://id.gs1.org/01/04012345111119/21/99",  # check digit
        "urn:epc:id:sgtin:4012345.0111.1",  # company prefix and item reference: 11 digits
    ],
)
def test_an_epc_written_as_an_sgtin_that_is_none_makes_the_event_bad(epc):
    read = capture.read_event(2, event(epcList=[epc]), None)
    assert isinstance(read, capture.CaptureError)
    assert read.message.startswith(f"EPC {epc!r} is not a valid SGTIN: ")


def test_other_kinds_of_epc_are_stored_but_not_indexed():
    read = capture.read_event(0, event(epcList=["urn:epc:id:sscc:4012345.0000000001"]), None)
    assert isinstance(read, capture.CapturedEvent) and read.epcs == []


def test_sgtins_are_indexed_from_every_epc_list_once():
    dl = "https://id.gs1.org/01/70614141123451/21/2018"
    read = capture.read_event(
        0,
        {
            "type": "AggregationEvent",
            "eventTime": "2020-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "parentID": "urn:epc:id:sgtin:0614141.107346.P",
            "childEPCs": [
                "urn:epc:id:sgtin:0614141.107346.2017",
                dl,
                "urn:epc:id:sscc:0614141.1234567890",
            ],
            "inputEPCList": [dl],
            "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.O"],
            "epcList": ["https://id.gs1.org/01/70614141123451"],  # a class, not an item
            "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877"}],
            "action": "ADD",
        },
        None,
    )
    assert isinstance(read, capture.CapturedEvent)
    assert read.epcs == [
        ("urn:epc:id:sgtin:0614141.107346.P", "10614141073464", "P"),
        ("urn:epc:id:sgtin:0614141.107346.2017", "10614141073464", "2017"),
        (dl, "70614141123451", "2018"),
        ("urn:epc:id:sgtin:0614141.107346.O", "10614141073464", "O"),
    ]


def test_an_extension_type_is_kept_and_a_custom_step_keeps_its_uri():
    custom = "http://epcis.example.org/hc/bizstep/summarising_discharge"
    read = capture.read_event(
        0,
        {"type": "example:SurveyEvent", "eventTime": "2020-01-01T00:00:00Z", "bizStep": custom},
        [STANDARD, {"example": "http://ns.example.com/epcis/"}],
    )
    assert isinstance(read, capture.CapturedEvent)
    assert (read.event_type, read.biz_step, read.epcs) == ("example:SurveyEvent", custom, [])


def test_a_document_repeating_an_event_yields_it_once():
    one, two = event(), event(action="ADD")
    good, bad = capture.read_document({"epcisBody": {"eventList": [one, two, dict(one)]}})
    assert ([g.index for g in good], bad) == ([0, 1], [])
    assert capture.event_count({"epcisBody": {"eventList": [one, two, one]}}) == 3


def test_the_exported_event_hashes_as_it_did_when_captured():
    context = [STANDARD, {"example": "http://ns.example.com/epcis/"}]
    given = event(**{"example:myField": "x"})
    read = capture.read_event(0, given, context)
    assert isinstance(read, capture.CapturedEvent)
    anchoring = {"prov:state": "pending", "prov:deviceSigned": False}
    recorded = datetime(2026, 12, 1, 9, 30, 0, 123456)  # naive: SQLite's, stored as UTC
    shown = capture.exported(read.event, read.context, anchoring, recorded)
    assert list(shown)[:2] == ["eventID", "@context"]
    assert shown["recordTime"] == "2026-12-01T09:30:00.123Z"
    assert shown["eventID"] == read.hash_id
    assert shown["prov:anchoring"] == anchoring
    body = {key: value for key, value in shown.items() if key != "eventID"}
    assert event_hash_id(body, capture.hash_context(CONTEXT, shown), HASH_IGNORE) == read.hash_id
    # Without the event's own context its extension would hash under another name.
    assert event_hash_id(body, CONTEXT, HASH_IGNORE) != read.hash_id


def test_batches_take_both_kinds_by_arrival_then_kind_then_id():
    when = datetime(2026, 12, 1, tzinfo=UTC)
    later = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    waiting = [
        PendingEvent(1, bytes(32), bytes(32), later, "custody"),
        PendingEvent(9, bytes(32), bytes(32), when, "custody"),
        PendingEvent(1, bytes(32), bytes(32), when, "captured"),
        PendingEvent(2, bytes(32), bytes(32), when.replace(tzinfo=None), "captured"),
    ]
    chosen = choose_batch(waiting, later, max_count=3, max_age_seconds=60)
    assert [(e.kind, e.id) for e in chosen] == [("captured", 1), ("captured", 2), ("custody", 9)]
