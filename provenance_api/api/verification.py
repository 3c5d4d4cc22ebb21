"""Verification: the public /v1/verify and GS1 resolver routes, and the supplier's item status.

`GET /v1/verify?url=...` and `GET /01/{gtin}/21/{serial}?...` (when the client asks for JSON)
need no key: a buyer's phone calls them. The resolver's HTML page is a later issue: until
then a client that does not accept JSON gets 406. A database that cannot be reached answers
503 with the verdict `unverifiable`, never `counterfeit`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_openapi3 import APIBlueprint, Tag

from provenance_api.api.deps import chain_head, runtime
from provenance_api.api.errors import error_body
from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.schemas import (
    ErrorBody,
    ItemPath,
    ItemStatusPublic,
    ItemStatusUpdate,
    ReasonPublic,
    ScanList,
    ScanListQuery,
    Verdict,
    Verification,
    VerifyQuery,
)
from provenance_api.services import verification
from provenance_api.services.anomalies import Thresholds

log = logging.getLogger(__name__)

public = APIBlueprint(
    "verify",
    __name__,
    url_prefix="/v1",
    abp_tags=[Tag(name="verify", description="Is this genuine, and where has it been? No key.")],
    abp_responses={422: ErrorBody},
    operation_id_callback=lambda name, path, method: name,
)
resolver = Blueprint("resolver", __name__)
bp = blueprint("verifications", "An item's status and its public checks, for its supplier.")

# GET routes that write (a scan, a SUN counter): their unit of work takes the write lock.
WRITING_READS = frozenset({"verify.verify_url", "resolver.resolve"})


def thresholds(config: Mapping[str, Any]) -> Thresholds:
    """The anomaly rules' thresholds from the configuration (ANOMALY_*)."""
    return Thresholds(
        max_speed_kmh=config["ANOMALY_MAX_SPEED_KMH"],
        travel_slack_km=config["ANOMALY_TRAVEL_SLACK_KM"],
        resale_scanners=config["ANOMALY_RESALE_SCANNERS"],
        resale_scans=config["ANOMALY_RESALE_SCANS"],
        scan_window_days=config["ANOMALY_SCAN_WINDOW_DAYS"],
    )


def _scanner(geo: str | None = None, place: str | None = None) -> verification.Scanner:
    """The phone as an opaque id: a keyed hash of its address and browser, never stored raw."""
    seen = f"{request.remote_addr}|{request.user_agent.string}".encode()
    key = str(current_app.config["SECRET_KEY"]).encode()
    return verification.Scanner(hmac.new(key, seen, hashlib.sha256).hexdigest()[:32], geo, place)


def _check(url: str, scanner: verification.Scanner) -> Answer:
    try:
        result = verification.verify(
            unit_of_work(),
            runtime().keybox,
            url,
            scanner,
            thresholds(current_app.config),
            chain_head,
        )
    except sa.exc.OperationalError as exc:
        log.warning("verify: the database could not be reached: %s", type(exc).__name__)
        down = Verification(
            verdict=Verdict.UNVERIFIABLE,
            reasons=[
                ReasonPublic(
                    code="service_unavailable",
                    message="we could not check this item right now; please try again later",
                )
            ],
            checked_at=datetime.now(UTC),
        )
        return answer(down, 503)
    return answer(result)


@public.get("/verify", responses={200: Verification, 503: Verification})
def verify_url(query: VerifyQuery) -> Answer:
    """Check a scanned or tapped tag URL: verdict, plain reasons, product, custody, proofs.

    No key needed. `geo` (`geo:lat,lon`) and `place` say where the phone is, for the rule
    that catches one code seen in two places too far apart.
    """
    return _check(query.url, _scanner(query.geo, query.place))


@resolver.get("/01/<gtin>/21/<path:serial>")
def resolve(gtin: str, serial: str) -> ResponseReturnValue:
    """The GS1 Digital Link a tag carries: the verification as JSON (the page comes later)."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) != (
        "application/json"
    ):
        body = error_body(
            "not_acceptable", "ask for application/json: the buyer page is not served yet"
        )
        return jsonify(body), 406
    return _check(request.url, _scanner())


@bp.post(
    "/items/<gtin>/<path:serial>/status",
    responses={200: ItemStatusPublic, 404: ErrorBody},
)
def set_item_status(path: ItemPath, body: ItemStatusUpdate) -> Answer:
    """Report one of the caller's items recalled, stolen or destroyed (or active again).

    Verification shows the status and its reason to everyone who checks the item.
    """
    result = verification.set_status(unit_of_work(), tenant(), path.gtin, path.serial, body)
    return answer(result)


@bp.get("/items/<gtin>/<path:serial>/status", responses={200: ItemStatusPublic, 404: ErrorBody})
def get_item_status(path: ItemPath) -> Answer:
    """One of the caller's items' status, its reason and when it was set."""
    return answer(verification.get_status(unit_of_work(), tenant(), path.gtin, path.serial))


@bp.get(
    "/items/<gtin>/<path:serial>/verifications",
    responses={200: ScanList, 404: ErrorBody},
)
def list_item_scans(path: ItemPath, query: ScanListQuery) -> Answer:
    """The item's most recent public checks, with the tag check's detailed causes."""
    result = verification.item_scans(unit_of_work(), tenant(), path.gtin, path.serial, query.limit)
    return answer(result)
