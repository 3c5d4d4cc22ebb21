"""EPCIS 2.0 export: schema-valid documents, hash IDs, and proofs a partner can check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema_rs
import pytest

from contracts_abi import merkle
from provenance_api.epcis import export
from provenance_api.epcis import query as epcis_query
from provenance_api.epcis.event_hash import event_hash_id
from provenance_api.schemas import AnchorState, CustodyEventPublic

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "epcis"
SCHEMA = json.loads((VECTORS / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema_rs.Draft7Validator(SCHEMA, validate_formats=True)
CHAIN = export.Chain(31337, "0x" + "1c" * 20)
SUPPLIER = "0x" + "5a" * 20
CARRIER = "0x" + "ca" * 20
DEVICE = "0x" + "de" * 20
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def stored(n: int = 1, **fields: object) -> CustodyEventPublic:
    """A stored event as services.history shows it, not yet in a batch."""
    digest, salt = bytes([n]) * 32, bytes([n + 100]) * 32
    values: dict[str, object] = {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "gtin": "09506000134352",
        "serial": f"S{n}",
        "biz_step": "shipping",
        "disposition": "in_transit",
        "read_point": "urn:epc:id:sgln:9506000.13435.0",
        "from_party": SUPPLIER,
        "to_party": CARRIER,
        "event_time": datetime(2026, 11, 30, 8, 15, 7, tzinfo=UTC),
        "time_zone_offset": 60,
        "device": DEVICE,
        "party": SUPPLIER,
        "tag_url": "",
        "tag_uid": "0x",
        "tag_originality_signature": "0x",
        "tag_evidence": "0x" + "00" * 32,
        "signature": "0x" + "11" * 65,
        "digest": "0x" + digest.hex(),
        "flags": [],
        "received_at": NOW,
        "anchoring": AnchorState.PENDING,
        "salt": "0x" + salt.hex(),
        "leaf": "0x" + merkle.custody_leaf(digest, salt).hex(),
    }
    values.update(fields)
    return CustodyEventPublic(**values)  # type: ignore[arg-type]


def anchored(events: list[CustodyEventPublic]) -> list[CustodyEventPublic]:
    """The events as they read once their batch is anchored and mined."""
    pairs = [(bytes.fromhex(e.digest[2:]), bytes.fromhex(e.salt[2:])) for e in events]
    tree = merkle.custody_tree(pairs)
    return [
        event.model_copy(
            update={
                "anchoring": AnchorState.CONFIRMED,
                "leaf_index": index,
                "proof": ["0x" + node.hex() for node in tree.proof(index)],
                "root": "0x" + tree.root.hex(),
                "batch_id": "0x" + "ba" * 32,
                "transaction": "0x" + "7e" * 32,
                "block_number": 12,
            }
        )
        for index, event in enumerate(events)
    ]


def schema_errors(document: dict) -> list[str]:
    return [f"{error.instance_path}: {error.message}" for error in VALIDATOR.iter_errors(document)]


def test_the_validator_checks_formats():
    document = export.document([export.object_event(stored(), "urn:epc:id:sgtin:x", CHAIN)], NOW)
    document["epcisBody"]["eventList"][0]["eventTime"] = "yesterday"
    assert any("date-time" in error for error in schema_errors(document))
    document["epcisBody"]["eventList"][0]["readPoint"] = {"id": "Dock 3"}
    assert any("uri" in error for error in schema_errors(document))


@pytest.mark.parametrize("wrap", [export.query_document, export.document])
def test_exported_documents_validate_against_gs1s_schema(wrap):
    events = [
        stored(1),
        stored(
            2,
            biz_step="commissioning",
            disposition="active",
            read_point="",
            from_party=export.ZERO_ADDRESS,
            to_party=SUPPLIER,
            time_zone_offset=0,
        ),
        stored(3, read_point="Dock 3 / north", time_zone_offset=-330, to_party=export.ZERO_ADDRESS),
        stored(4, time_zone_offset=14 * 60),
    ]
    exported = [
        export.object_event(e, f"https://id.gs1.org/01/{e.gtin}/21/{e.serial}", CHAIN)
        for e in events + anchored(events)
    ]
    exported.append(export.object_event(events[0], "urn:epc:id:sgtin:9506000.013435.S1", CHAIN))
    assert schema_errors(wrap(exported, NOW)) == []
    assert schema_errors(wrap([], NOW)) == []


def test_the_event_id_is_the_hash_id_of_the_event_without_its_anchoring():
    (event,) = anchored([stored()])
    shown = export.object_event(event, "https://id.gs1.org/01/09506000134352/21/S1", CHAIN)
    body = {key: value for key, value in shown.items() if key != "eventID"}
    assert shown["eventID"] == event_hash_id(body, export.CONTEXT, ignore=["prov:anchoring"])
    assert shown["eventID"].startswith("ni:///sha-256;") and shown["eventID"].endswith(
        "?ver=CBV2.0"
    )
    # The ID does not change when the event is anchored, nor with the form of its EPC...
    pending = export.object_event(stored(), "urn:epc:id:sgtin:9506000.013435.S1", CHAIN)
    assert pending["eventID"] == shown["eventID"]
    # ...but it does with anything the device signed.
    moved = export.object_event(stored(disposition="in_progress"), pending["epcList"][0], CHAIN)
    assert moved["eventID"] != shown["eventID"]


def test_an_exported_proof_verifies_from_the_document_alone():
    events = anchored([stored(n) for n in range(1, 6)])
    for event in events:
        shown = export.object_event(event, "https://id.gs1.org/01/09506000134352/21/S1", CHAIN)
        proof = shown["prov:anchoring"]
        digest = bytes.fromhex(shown["prov:digest"][2:])
        leaf = merkle.custody_leaf(digest, bytes.fromhex(proof["prov:salt"][2:]))
        nodes = [bytes.fromhex(node[2:]) for node in proof["prov:proof"]]
        assert merkle.verify(bytes.fromhex(proof["prov:root"][2:]), leaf, nodes)
        assert "0x" + leaf.hex() == proof["prov:leaf"]
        assert (proof["prov:chainId"], proof["prov:contract"]) == (CHAIN.chain_id, CHAIN.ledger)
        assert (proof["prov:transaction"], proof["prov:blockNumber"]) == ("0x" + "7e" * 32, 12)
        assert proof["prov:state"] == "confirmed"


def test_the_fields_map_as_the_standard_says():
    handoff = export.object_event(stored(time_zone_offset=-330), "urn:x:1", CHAIN)
    assert handoff["action"] == "OBSERVE"
    assert (handoff["eventTime"], handoff["eventTimeZoneOffset"]) == (
        "2026-11-30T02:45:07-05:30",
        "-05:30",
    )
    assert handoff["sourceList"] == [
        {"type": "possessing_party", "source": f"did:pkh:eip155:31337:{SUPPLIER}"}
    ]
    assert handoff["destinationList"] == [
        {"type": "possessing_party", "destination": f"did:pkh:eip155:31337:{CARRIER}"}
    ]
    assert handoff["readPoint"] == {"id": "urn:epc:id:sgln:9506000.13435.0"}
    assert (
        "prov:contract"
        not in export.object_event(stored(), "urn:x:1", export.Chain(1, None))["prov:anchoring"]
    )

    commissioning = export.object_event(
        stored(
            biz_step="commissioning",
            disposition="active",
            read_point="",
            from_party=export.ZERO_ADDRESS,
            to_party=SUPPLIER,
        ),
        "urn:x:1",
        CHAIN,
    )
    assert commissioning["action"] == "ADD"
    assert "sourceList" not in commissioning and "readPoint" not in commissioning
    assert [d["type"] for d in commissioning["destinationList"]] == [
        "owning_party",
        "possessing_party",
    ]


def test_the_epc_is_an_sgtin_uri_only_when_the_prefix_length_is_known():
    assert export.epc_of("09506000134352", "A/1", {"gs1_company_prefix_length": 7}) == (
        "urn:epc:id:sgtin:9506000.013435.A%2F1"
    )
    for unknown in ({}, {"gs1_company_prefix_length": "7"}, {"gs1_company_prefix_length": 13}):
        assert export.epc_of("09506000134352", "A/1", unknown) == (
            "https://id.gs1.org/01/09506000134352/21/A%2F1"
        )


@pytest.mark.parametrize(
    ("parse", "text", "says"),
    [
        (epcis_query.event_types, "ObjectEvent,Nope", "unknown event type 'Nope'"),
        (epcis_query.biz_steps, "shipping,urn:epcglobal:cbv:bizstep:flying", "not a CBV 2.0"),
        (epcis_query.item_of_epc, "urn:epc:id:sgtin:950600.013435", "not an SGTIN EPC URI"),
        (epcis_query.item_of_epc, "https://id.gs1.org/01/09506000134353/21/S1", "check digit"),
        (epcis_query.page_after, "not-a-token", "not a page token"),
        (epcis_query.page_after, "LTE", "not a page token"),  # "-1"
    ],
)
def test_bad_query_values_are_refused_with_a_reason(parse, text, says):
    with pytest.raises(ValueError, match=says):
        parse(text)
