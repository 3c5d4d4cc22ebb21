"""/v1/epcis: custody events as EPCIS 2.0 JSON-LD, with the standard query parameters."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from flask import Response, current_app, request
from flask_openapi3.utils import get_model_schema
from sqlmodel import Session

from provenance_api.api.deps import chain_head, runtime
from provenance_api.api.frame import blueprint, tenant, unit_of_work
from provenance_api.epcis.export import Chain
from provenance_api.schemas import EpcisEventQuery, EpcisQueryDocument, ErrorBody
from provenance_api.services import epcis
from provenance_api.services.anchoring import LEDGER
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import Unavailable

log = logging.getLogger(__name__)

bp = blueprint("epcis", "Custody events as EPCIS 2.0 JSON-LD, with their anchoring proofs.")
bp.components_schemas["EpcisQueryDocument"] = get_model_schema(EpcisQueryDocument)
_DOCUMENT = {"schema": {"$ref": "#/components/schemas/EpcisQueryDocument"}}
_PAGE = {
    "description": 'One page of events; `Link: <...>; rel="next"` names the next page.',
    "content": {"application/ld+json": _DOCUMENT, "application/json": _DOCUMENT},
    "headers": {"Link": {"description": "The next page, if any.", "schema": {"type": "string"}}},
}
MEDIA_TYPES = ["application/ld+json", "application/json"]
# EPCIS 2.0 §12 (REST binding): every answer names the versions it speaks.
VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}


@bp.get("/epcis/events", responses={200: _PAGE, 503: ErrorBody})
def query_epcis_events(query: EpcisEventQuery) -> Response:
    """The custody events the caller may read, as an EPCIS 2.0 EPCISQueryDocument.

    Readable: events of items the caller supplied, recorded an event of, or was a party to a
    transfer of. Each event carries its GS1 event hash ID as `eventID` (computed without
    `prov:anchoring`) and, in `prov:anchoring`, what `CustodyLedger.verifyEvent(root, digest,
    salt, proof)` needs. Pages go by arrival; follow `Link: rel="next"` (`nextPageToken`).
    """
    document, token = epcis.query_events(
        unit_of_work(), tenant(), query, _chain(), chain_head, datetime.now(UTC)
    )
    media = request.accept_mimetypes.best_match(MEDIA_TYPES) or MEDIA_TYPES[0]
    response = current_app.response_class(current_app.json.dumps(document), mimetype=media)
    response.headers.update(VERSION_HEADERS)
    if token is not None:
        args = request.args.to_dict() | {"nextPageToken": token}
        link = request.base_url + "?" + urlencode(args, quote_via=quote)
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


def _chain() -> Chain:
    """The chain events are anchored on, and its CustodyLedger (None before deployment)."""
    rt = runtime()
    try:
        chain_id = int(rt.w3.eth.chain_id)
    except Exception as exc:  # parties are named per chain: no chain, no answer
        log.warning("chain unavailable", exc_info=True)
        raise Unavailable("the chain cannot be reached; try again shortly") from exc
    with Session(rt.engine) as session:
        return Chain(chain_id, known_addresses(session, chain_id).get(LEDGER))
