"""/v1/epcis: custody events as EPCIS 2.0 JSON-LD with the standard query parameters, and the
EPCIS capture interface that imports other systems' documents."""

from __future__ import annotations

import functools
import itertools
import json
import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jsonschema_rs
from flask import Response, current_app, request
from flask_openapi3.utils import get_model_schema
from sqlmodel import Session

from provenance_api.api.deps import chain_head, runtime
from provenance_api.api.frame import answer, blueprint, documented_body, tenant, unit_of_work
from provenance_api.epcis import capture as capture_rules
from provenance_api.epcis.export import Chain
from provenance_api.schemas import (
    CaptureJobPublic,
    CapturePath,
    EpcisDocument,
    EpcisEventQuery,
    EpcisQueryDocument,
    ErrorBody,
)
from provenance_api.services import capture, epcis
from provenance_api.services.anchoring import LEDGER
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import DomainError, InvalidInput, TooLarge, Unavailable

log = logging.getLogger(__name__)

bp = blueprint("epcis", "Custody events as EPCIS 2.0 JSON-LD, with their anchoring proofs.")
bp.components_schemas["EpcisQueryDocument"] = get_model_schema(EpcisQueryDocument)
_DOCUMENT = {"schema": {"$ref": "#/components/schemas/EpcisQueryDocument"}}
_PAGE = {
    "description": 'One page of events; `Link: <...>; rel="next"` names the next page.',
    "content": {"application/ld+json": _DOCUMENT, "application/json": _DOCUMENT},
    "headers": {"Link": {"description": "The next page, if any.", "schema": {"type": "string"}}},
}
bp.components_schemas["CaptureJobPublic"] = get_model_schema(CaptureJobPublic)
_JOB = {"application/json": {"schema": {"$ref": "#/components/schemas/CaptureJobPublic"}}}
_ACCEPTED = {
    "description": "The capture job, already finished (it runs inside the request).",
    "content": _JOB,
    "headers": {
        "Location": {"description": "The job, to poll.", "schema": {"type": "string"}},
    },
}
MEDIA_TYPES = ["application/ld+json", "application/json"]
# EPCIS 2.0 §12 (REST binding): every answer names the versions it speaks.
VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
SCHEMA_ERRORS_SHOWN = 20


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


@functools.cache
def _validator() -> Any:
    """GS1's EPCIS 2.0 JSON schema (draft-07), format checks on; read once."""
    text = resources.files("provenance_api.epcis").joinpath("EPCIS-JSON-Schema.json").read_text()
    return jsonschema_rs.Draft7Validator(json.loads(text), validate_formats=True)


@bp.post(
    "/epcis/capture",
    responses={202: _ACCEPTED, 400: ErrorBody, 413: ErrorBody},
    openapi_extensions=documented_body(bp, EpcisDocument),
)
def capture_epcis_document() -> Response:
    """Capture an EPCIS 2.0 EPCISDocument from another system (EPCIS 2.0 §8.2.2, §12.7).

    Answers 202 with the capture job and `Location: /v1/epcis/capture/<captureID>`. The job
    runs inside this request, so the answer already holds its outcome; it stays available to
    poll. The document must pass GS1's EPCIS 2.0 JSON schema (else 422, naming each bad
    place). `GS1-Capture-Error-Behaviour: rollback` (the default) stores no event unless
    every event is good; `proceed` stores the good ones; each bad one is reported with its
    index, eventID and reason. A stated hash eventID (`ni:///sha-256;...`) that is not the
    event's hash ID is a bad event. An event captured before by the caller is stored once.
    Captured events are not device-signed; they are anchored like custody events.
    """
    try:
        behaviour = capture_rules.error_behaviour(request.headers.get(capture_rules.HEADER))
    except ValueError as exc:
        raise DomainError(str(exc), {capture_rules.HEADER: "rollback or proceed"}) from None
    document = _document()
    count = capture_rules.event_count(document)
    limit = current_app.config["CAPTURE_MAX_EVENTS"]
    if count > limit:
        raise TooLarge(
            f"the document holds {count} events; send at most {limit} per capture",
            {"epcisBody.eventList": f"at most {limit} events"},
        )
    errors = list(itertools.islice(_validator().iter_errors(document), SCHEMA_ERRORS_SHOWN))
    if errors:
        fields = {_place(error.instance_path): error.message[:300] for error in errors}
        raise InvalidInput("the document is not valid under GS1's EPCIS 2.0 JSON schema", fields)
    if document.get("type") != "EPCISDocument":
        raise InvalidInput("send an EPCISDocument", {"type": "must be EPCISDocument"})
    job = capture.capture(unit_of_work(), tenant(), document, behaviour)
    body, _ = answer(job)
    response = current_app.response_class(
        current_app.json.dumps(body), 202, mimetype="application/json"
    )
    response.headers["Location"] = f"{request.script_root}/v1/epcis/capture/{job.captureID}"
    response.headers.update(VERSION_HEADERS)
    return response


@bp.get("/epcis/capture/<capture_id>", responses={200: CaptureJobPublic, 404: ErrorBody})
def get_capture_job(path: CapturePath) -> Any:
    """A capture job: whether it runs, succeeded or failed, its counts and each bad event.

    Only the organization that sent the document sees it; anyone else gets 404.
    """
    body, status = answer(capture.get_job(unit_of_work(), tenant(), str(path.capture_id)))
    return body, status, VERSION_HEADERS


def _document() -> dict[str, Any]:
    """The request body as a JSON object (application/ld+json or application/json)."""
    try:
        document = current_app.json.loads(request.get_data())
    except ValueError as exc:
        raise InvalidInput("the body is not JSON", {"body": f"not valid JSON: {exc}"}) from None
    if not isinstance(document, dict):
        raise InvalidInput("send an EPCISDocument", {"body": "must be a JSON object"})
    return document


def _place(path: Any) -> str:
    """A JSON instance path as a dotted field name ("body" for the document itself)."""
    return ".".join(str(part) for part in path) or "body"
