"""EPCIS 2.0 export: the custody events a caller may read, as an EPCISQueryDocument page.

A caller reads the events of the items it may read (services.history.readers): those it
supplied, those one of its devices recorded an event of, and those it was a party to a
transfer of. Pages go by arrival (row id), so a page token stays valid as events arrive.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from provenance_api.epcis import export
from provenance_api.epcis import query as epcis_query
from provenance_api.schemas import EpcisEventQuery
from provenance_api.services.history import Head, public_events
from provenance_api.services.ports import EventFilter, UnitOfWork


def event_filter(query: EpcisEventQuery) -> EventFilter | None:
    """The filter of a validated query; None when it can match nothing stored here."""
    if query.eventType is not None and "ObjectEvent" not in epcis_query.event_types(
        query.eventType
    ):
        return None  # every stored event is an ObjectEvent
    return EventFilter(
        # Event times are whole seconds: `>= 10.5` is `>= 11`, and `< 10.5` is `< 11`.
        ge_time=math.ceil(query.GE_eventTime.timestamp()) if query.GE_eventTime else None,
        lt_time=math.ceil(query.LT_eventTime.timestamp()) if query.LT_eventTime else None,
        biz_steps=frozenset(epcis_query.biz_steps(query.EQ_bizStep)) if query.EQ_bizStep else None,
        item=epcis_query.item_of_epc(query.MATCH_epc) if query.MATCH_epc else None,
    )


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
    after = epcis_query.page_after(query.nextPageToken) if query.nextPageToken else None
    if where is None:
        return export.query_document([], now), None
    with uow:
        rows = list(uow.events.readable(organization_id, where, after, query.perPage + 1))
        more, rows = len(rows) > query.perPage, rows[: query.perPage]
        shown = public_events(uow, rows, head)
        attributes: dict[str, dict[str, Any]] = {}
        for gtin in {row.gtin for row in rows}:
            product = uow.products.get(gtin)
            attributes[gtin] = dict(product.attributes) if product is not None else {}
        token = epcis_query.page_token(rows[-1].id or 0) if more else None
    events = [
        export.object_event(
            event, export.epc_of(event.gtin, event.serial, attributes[event.gtin]), chain
        )
        for event in shown
    ]
    return export.query_document(events, now), token
