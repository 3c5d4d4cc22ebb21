"""/v1/events: device-signed custody events, up to 1,000 per request."""

from __future__ import annotations

from flask import current_app

from provenance_api.api.deps import chain_head, runtime
from provenance_api.api.frame import (
    Answer,
    answer,
    blueprint,
    documented_body,
    parse_json,
    tenant,
    unit_of_work,
)
from provenance_api.schemas import (
    CustodyEventPublic,
    ErrorBody,
    EventBatch,
    EventBatchResult,
    EventPath,
)
from provenance_api.services import events, history

bp = blueprint("events", "Custody events signed by the caller's reader devices.")


@bp.post(
    "/events",
    responses={200: EventBatchResult, 413: ErrorBody},
    openapi_extensions=documented_body(bp, EventBatch),
)
def record_events() -> Answer:
    """Check and store a batch of events; one result per event, in order.

    Each event is `accepted`, `duplicate` (sent before with the same content: nothing new is
    stored) or `rejected` with codes and reasons (an event id sent before with other content
    is rejected as `conflict`). Only a malformed body is a 422.
    """
    batch = parse_json(EventBatch)
    result = events.record_events(
        unit_of_work(),
        runtime().keybox,
        tenant(),
        batch.events,
        max_skew_seconds=current_app.config["EVENT_MAX_SKEW_SECONDS"],
    )
    return answer(result)


@bp.get("/events/<event_id>", responses={200: CustodyEventPublic, 404: ErrorBody})
def get_event(path: EventPath) -> Answer:
    """One event with its proof of anchoring, for whoever may read its item's history."""
    return answer(history.get_event(unit_of_work(), tenant(), str(path.event_id), chain_head))
