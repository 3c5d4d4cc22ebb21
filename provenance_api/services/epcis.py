"""EPCIS 2.0 export: the events a caller may read, as an EPCISQueryDocument page.

Two kinds of events: device-signed custody events of the items the caller may read
(services.history.readers: those it supplied, recorded an event of, or was a party to a
transfer of), and events captured over EPCIS (services.capture) that the caller captured or
that name an item it may read. Each kind is paged by its row id; a page merges the two by
arrival (received_at, then kind, then id), and the page token carries one position per kind,
so a token stays valid as events of either kind arrive.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from contracts_abi.merkle import custody_leaf
from provenance_api.epcis import capture as capture_rules
from provenance_api.epcis import export
from provenance_api.epcis import query as epcis_query
from provenance_api.models import CapturedEvent, CustodyEvent
from provenance_api.schemas import EpcisEventQuery
from provenance_api.services.history import Anchoring, Head, anchorings, public_events
from provenance_api.services.ports import CAPTURED, CUSTODY, EventFilter, UnitOfWork

OBJECT_EVENT = "ObjectEvent"  # every device-signed custody event is one


def event_filter(query: EpcisEventQuery) -> EventFilter:
    """The filter of a validated query."""
    ge, lt = query.GE_eventTime, query.LT_eventTime
    return EventFilter(
        # Custody event times are whole seconds: `>= 10.5` is `>= 11`, and `< 10.5` is `< 11`.
        ge_time=math.ceil(ge.timestamp()) if ge else None,
        lt_time=math.ceil(lt.timestamp()) if lt else None,
        # Captured ones keep milliseconds.
        ge_time_ms=_ceil_ms(ge) if ge else None,
        lt_time_ms=_ceil_ms(lt) if lt else None,
        biz_steps=frozenset(epcis_query.biz_steps(query.EQ_bizStep)) if query.EQ_bizStep else None,
        item=epcis_query.item_of_epc(query.MATCH_epc) if query.MATCH_epc else None,
        event_types=(
            frozenset(epcis_query.event_types(query.eventType)) if query.eventType else None
        ),
    )


def _ceil_ms(moment: datetime) -> int:
    """UTC milliseconds since the epoch, rounded up (exact: no float)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def query_events(
    uow: UnitOfWork,
    organization_id: int,
    query: EpcisEventQuery,
    chain: export.Chain,
    head: Head,
    now: datetime,
) -> tuple[dict[str, Any], str | None]:
    """One page of the caller's readable events as EPCIS, and the next page's token (if any)."""
    where = event_filter(query)
    custody_after, captured_after = (
        epcis_query.page_after(query.nextPageToken) if query.nextPageToken else (0, 0)
    )
    limit = query.perPage + 1
    with uow:
        custody: Sequence[CustodyEvent] = []
        if where.event_types is None or OBJECT_EVENT in where.event_types:
            custody = uow.events.readable(organization_id, where, custody_after or None, limit)
        captured = uow.captured.readable(organization_id, where, captured_after or None, limit)
        merged = list(
            heapq.merge(
                ((_utc(row.received_at), CUSTODY, row.id or 0, row) for row in custody),
                ((_utc(row.received_at), CAPTURED, row.id or 0, row) for row in captured),
                key=lambda entry: entry[:3],
            )
        )
        more, page = len(merged) > query.perPage, merged[: query.perPage]
        custody_rows = [entry[3] for entry in page if entry[1] == CUSTODY]
        captured_rows = [entry[3] for entry in page if entry[1] == CAPTURED]
        shown = iter(_custody_events(uow, custody_rows, chain, head))
        proofs = iter(_captured_events(uow, captured_rows, chain, head))
        events = [next(shown) if kind == CUSTODY else next(proofs) for _, kind, _, _ in page]
    token = None
    if more:
        custody_at = max((entry[2] for entry in page if entry[1] == CUSTODY), default=0)
        captured_at = max((entry[2] for entry in page if entry[1] == CAPTURED), default=0)
        token = epcis_query.page_token(
            max(custody_at, custody_after), max(captured_at, captured_after)
        )
    return export.query_document(events, now), token


def _custody_events(
    uow: UnitOfWork, rows: Sequence[Any], chain: export.Chain, head: Head
) -> list[dict[str, Any]]:
    """Device-signed events as EPCIS ObjectEvents (inside `with uow`)."""
    attributes: dict[str, dict[str, Any]] = {}
    for gtin in {row.gtin for row in rows}:
        product = uow.products.get(gtin)
        attributes[gtin] = dict(product.attributes) if product is not None else {}
    return [
        export.object_event(
            event, export.epc_of(event.gtin, event.serial, attributes[event.gtin]), chain
        )
        for event in public_events(uow, rows, head)
    ]


def _captured_events(
    uow: UnitOfWork, rows: Sequence[CapturedEvent], chain: export.Chain, head: Head
) -> list[dict[str, Any]]:
    """Captured events as received, with our anchoring (inside `with uow`)."""
    found = anchorings(uow, [row.batch_id for row in rows], head)
    addresses: dict[int, str | None] = {}
    for organization_id in {row.organization_id for row in rows}:
        organization = uow.organizations.get(organization_id)
        addresses[organization_id] = organization.address if organization else None
    return [
        capture_rules.exported(
            row.event,
            row.context,
            captured_anchoring(row, anchoring, addresses[row.organization_id], chain),
            row.received_at,
        )
        for row, anchoring in zip(rows, found, strict=True)
    ]


def captured_anchoring(
    row: CapturedEvent, anchoring: Anchoring, capturer: str | None, chain: export.Chain
) -> dict[str, Any]:
    """`prov:anchoring` of a captured event: not device-signed, who captured it (and the
    eventID its sender gave it, unless that was its hash ID), its proof.

    Its leaf digest is the SHA-256 inside its hash ID (`eventID`), so the document alone is
    enough to call `CustodyLedger.verifyEvent(root, digest, salt, proof)`.
    """
    batch, receipt = anchoring.batch, anchoring.receipt
    return export.anchoring(
        {
            "prov:state": anchoring.state.value,
            "prov:deviceSigned": False,
            "prov:capturedBy": (
                export.party_uri(capturer, chain.chain_id) if capturer is not None else None
            ),
            # The eventID its sender gave, when it was not this hash ID (a urn:uuid, a hash ID
            # its event does not hash to, ...).
            "prov:receivedEventID": (
                None
                if row.received_event_id is None
                or capture_rules.is_hash_id_of(row.received_event_id, bytes(row.digest))
                else row.received_event_id
            ),
            "prov:salt": _hex(row.salt),
            "prov:leaf": _hex(custody_leaf(bytes(row.digest), bytes(row.salt))),
            "prov:leafIndex": row.leaf_index,
            "prov:proof": list(row.proof) if row.proof is not None else None,
            "prov:root": _hex(batch.root) if batch is not None else None,
            "prov:batchId": _hex(batch.batch_id) if batch is not None else None,
            "prov:transaction": receipt.tx_hash if receipt is not None else None,
            "prov:blockNumber": receipt.block_number if receipt is not None else None,
        },
        chain,
    )


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()
