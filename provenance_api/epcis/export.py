"""Stored custody events as EPCIS 2.0 JSON-LD ObjectEvents, with their anchoring proofs.

Pure: no I/O; the chain, the clock and each item's EPC are arguments.

Source: EPCIS 2.0 §7 (ObjectEvent), CBV 2.0 §7 (business steps, dispositions, source and
destination types), the EPCIS 2.0 JSON schema and JSON-LD context (tests/vectors/epcis/).

- An item is its SGTIN EPC URI when its product states its GS1 Company Prefix length
  (`epc_of`), else its GS1 Digital Link URI, which EPCIS 2.0 accepts in `epcList` too;
  both hash the same.
- Parties (the `from`/`to` of a handoff, the recording device) are secp256k1 addresses,
  written as `did:pkh:eip155:<chainId>:<address>` (W3C DID method `pkh`, CAIP-10): an
  absolute URI, so schema-valid, that names the key which signs for the party on this chain.
  A custody event moves possession (`possessing_party`); the commissioning event also gives
  the supplier title (`owning_party`). Ownership transfers are not EPCIS events here.
- Our own fields are in the `prov:` namespace: the device signature, the EIP-712 digest and
  `prov:anchoring` (salt, leaf, Merkle proof, root, batch, chain id, CustodyLedger address,
  transaction, block), enough to call `CustodyLedger.verifyEvent(root, digest, salt, proof)`.
- `eventID` is GS1's event hash ID of the event without `prov:anchoring`: the proof arrives
  when the event is anchored, and an event's ID must not change with it.
- Events captured from other systems (epcis.capture) export as they were received, with
  `prov:deviceSigned: false` inside `prov:anchoring`; device-signed ones say `true`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from firmware_tools.formats.epc import CANONICAL_HOST, sgtin_uri
from firmware_tools.formats.gs1 import build_digital_link
from provenance_api.epcis.event_hash import event_hash_id
from provenance_api.schemas import CustodyEventPublic

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
PROV = "https://provenance.example/epcis/"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"prov": PROV}]
# Left out of the event hash: it is filled in after the event, when its batch is anchored.
ANCHORING = "prov:anchoring"
HASH_IGNORE = (ANCHORING,)
COMMISSIONING = "commissioning"
ZERO_ADDRESS = "0x" + "00" * 20
# Product attribute that states the GS1 Company Prefix length of its GTIN (6..12).
PREFIX_LENGTH_ATTRIBUTE = "gs1_company_prefix_length"
# RFC 3986 `scheme:` followed by characters a URI may hold.
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


@dataclasses.dataclass(frozen=True)
class Chain:
    """Where events are anchored: the chain id and the CustodyLedger address (if deployed)."""

    chain_id: int
    ledger: str | None


def epc_of(gtin: str, serial: str, attributes: dict[str, Any]) -> str:
    """The item as an SGTIN EPC URI if its product states its prefix length, else a Digital Link.

    >>> epc_of("09506000134352", "S1", {"gs1_company_prefix_length": 7})
    'urn:epc:id:sgtin:9506000.013435.S1'
    >>> epc_of("09506000134352", "S1", {})
    'https://id.gs1.org/01/09506000134352/21/S1'
    """
    length = attributes.get(PREFIX_LENGTH_ATTRIBUTE)
    if isinstance(length, int) and not isinstance(length, bool) and 6 <= length <= 12:
        return sgtin_uri(gtin, serial, length)
    return build_digital_link(CANONICAL_HOST, gtin, serial)


def party_uri(address: str, chain_id: int) -> str:
    """A party's address as a `did:pkh` URI on the chain.

    >>> party_uri("0x00000000000000000000000000000000000000aA", 31337)
    'did:pkh:eip155:31337:0x00000000000000000000000000000000000000aA'
    """
    return f"did:pkh:eip155:{chain_id}:{address}"


def read_point_uri(read_point: str) -> str:
    """A read point as a URI: itself when it is one (an SGLN), else in our namespace.

    >>> read_point_uri("urn:epc:id:sgln:9506000.13435.0")
    'urn:epc:id:sgln:9506000.13435.0'
    >>> read_point_uri("Dock 3")
    'https://provenance.example/epcis/readPoint/Dock%203'
    """
    if _URI_RE.fullmatch(read_point):
        return read_point
    return PROV + "readPoint/" + quote(read_point, safe="")


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _event_time(moment: datetime, offset_minutes: int) -> str:
    """The event time in its own time zone, as the device stated it."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return local.isoformat(timespec="seconds")


def object_event(event: CustodyEventPublic, epc: str, chain: Chain) -> dict[str, Any]:
    """The EPCIS 2.0 ObjectEvent of one stored custody event, its hash ID as `eventID`."""
    commissioning = event.biz_step == COMMISSIONING
    body: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": _event_time(event.event_time, event.time_zone_offset),
        "eventTimeZoneOffset": _offset(event.time_zone_offset),
        "epcList": [epc],
        "action": "ADD" if commissioning else "OBSERVE",
        "bizStep": event.biz_step,
        "disposition": event.disposition,
    }
    if event.read_point:
        body["readPoint"] = {"id": read_point_uri(event.read_point)}
    kinds = ["owning_party", "possessing_party"] if commissioning else ["possessing_party"]
    if event.from_party != ZERO_ADDRESS:
        uri = party_uri(event.from_party, chain.chain_id)
        body["sourceList"] = [{"type": kind, "source": uri} for kind in kinds]
    if event.to_party != ZERO_ADDRESS:
        uri = party_uri(event.to_party, chain.chain_id)
        body["destinationList"] = [{"type": kind, "destination": uri} for kind in kinds]
    body["prov:eventUUID"] = "urn:uuid:" + event.event_id
    body["prov:device"] = party_uri(event.device, chain.chain_id)
    body["prov:signature"] = event.signature
    body["prov:digest"] = event.digest
    body[ANCHORING] = _anchoring(event, chain)
    return {"eventID": event_hash_id(body, CONTEXT, HASH_IGNORE), **body}


def _anchoring(event: CustodyEventPublic, chain: Chain) -> dict[str, Any]:
    """The proof of the event's Merkle leaf and where its root was anchored; nulls left out."""
    return anchoring(
        {
            "prov:state": event.anchoring.value,
            "prov:deviceSigned": True,
            "prov:salt": event.salt,
            "prov:leaf": event.leaf,
            "prov:leafIndex": event.leaf_index,
            "prov:proof": event.proof,
            "prov:root": event.root,
            "prov:batchId": event.batch_id,
            "prov:transaction": event.transaction,
            "prov:blockNumber": event.block_number,
        },
        chain,
    )


def anchoring(fields: dict[str, Any], chain: Chain) -> dict[str, Any]:
    """`prov:anchoring`: `fields` with the chain id and ledger after the root; nulls left out.

    `prov:deviceSigned` says whether a reader device signed the event (false: captured over
    EPCIS from another system). It sits inside `prov:anchoring`, which the hash ID leaves out,
    so that a captured event keeps the hash ID it had when it was captured.
    """
    ordered: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "prov:transaction":
            ordered["prov:chainId"] = chain.chain_id
            ordered["prov:contract"] = chain.ledger
        ordered[key] = value
    return {key: value for key, value in ordered.items() if value is not None}


def query_document(events: Sequence[dict[str, Any]], created: datetime) -> dict[str, Any]:
    """An EPCISQueryDocument holding `events`, the answer to a SimpleEventQuery."""
    return {
        "@context": CONTEXT,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": list(events)},
            }
        },
    }


def document(events: Sequence[dict[str, Any]], created: datetime) -> dict[str, Any]:
    """An EPCISDocument holding `events` (for a file handed to a partner)."""
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "epcisBody": {"eventList": list(events)},
    }
