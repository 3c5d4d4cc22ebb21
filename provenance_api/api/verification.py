"""Verification: the public /v1/verify and GS1 resolver routes, and the supplier's item status.

`GET /v1/verify?url=...` and `GET /01/{gtin}/21/{serial}?...` need no key: a buyer's phone
calls them. The resolver answers JSON when asked for it and the buyer's page (provenance_api.web)
to a browser, from the same single check. A database that cannot be reached answers 503 with
the verdict `unverifiable`, never `counterfeit`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_from_bytes, unquote_plus

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_openapi3 import APIBlueprint, Tag

from provenance_api.api.deps import chain_head, ledger, runtime
from provenance_api.api.errors import error_body
from provenance_api.api.frame import Answer, answer, blueprint, caller, tenant, unit_of_work
from provenance_api.schemas import (
    ErrorBody,
    ItemPath,
    ItemStatusPublic,
    ItemStatusUpdate,
    ReasonPublic,
    RecallStatusPublic,
    ScanList,
    ScanListQuery,
    Verdict,
    Verification,
    VerifyQuery,
)
from provenance_api.services import verification
from provenance_api.services.anomalies import Thresholds
from provenance_api.services.errors import InvalidInput
from provenance_api.web.views import is_link_preview, preview_page, verification_page

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
    return answer(*_verification(url, scanner))


def _verification(url: str, scanner: verification.Scanner) -> tuple[Verification, int]:
    """One check of `url` (it records a scan and consumes a SUN counter) and its HTTP status."""
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
        return down, 503
    domain = ledger()
    if domain is not None:
        result.attestation = verification.attest(result, runtime().operator.key, *domain)
    return result, 200


@public.get("/verify", responses={200: Verification, 503: Verification})
def verify_url(query: VerifyQuery) -> Answer:
    """Check a scanned or tapped tag URL: verdict, plain reasons, product, custody, proofs.

    No key needed. `geo` (`geo:lat,lon`) and `place` say where the phone is, for the rule
    that catches one code seen in two places too far apart.
    """
    return _check(query.url, _scanner(query.geo, query.place))


@public.get(
    "/items/<gtin>/<path:serial>/recall-status",
    responses={200: RecallStatusPublic, 404: ErrorBody},
)
def get_recall_status(path: ItemPath) -> Answer:
    """An item's status (active, recalled, stolen, destroyed), its reason and since when.

    No key needed: the GS1 link type `gs1:recallStatus` of the item's Digital Link.
    """
    return answer(verification.recall_status(unit_of_work(), path.gtin, path.serial))


# GS1-Conformant Resolver: `?linkType=` picks one of the item's links; `linkset` (or `all`)
# lists them as an RFC 9264 linkset. Full GS1 Web Vocabulary URIs name the same link types.
GS1_VOC = ("https://gs1.org/voc/", "https://ref.gs1.org/voc/", "http://gs1.org/voc/")
VERIFICATION_SERVICE = "verificationService"
RECALL_STATUS = "recallStatus"
PIP = "pip"
LINKSET = "application/linkset+json"
QUERY_SAFE = "%=&+-._~:/?!$'()*,;@"  # RFC 3986 query characters, and escapes already made
# The resolver's own parameters, not the tag's: the link type asked for, and where the phone
# is (`geo=geo:lat,lon`, `place=`; added by an app or a kiosk that knows, as /v1/verify takes).
RESOLVER_PARAMS = frozenset({"linkType", "geo", "place"})
GEO_MAX, PLACE_MAX = 100, 200  # as VerifyQuery
HTML, JSON = "text/html", "application/json"


@dataclass(frozen=True, slots=True)
class Link:
    """One of an item's links: its GS1 link type (without `gs1:`), target, title and type."""

    link_type: str
    href: str
    title: str
    media_type: str


def _scanned_url() -> str:
    """The URL as the tag gave it, less RESOLVER_PARAMS: the tag's own parameters byte for byte.

    Only bytes a URL may not hold raw are escaped, so that it can sit inside a `Link` header.
    """
    kept = [
        quote_from_bytes(part, safe=QUERY_SAFE)
        for part in request.query_string.split(b"&")
        if part and unquote_plus(part.partition(b"=")[0].decode("latin-1")) not in RESOLVER_PARAMS
    ]
    return request.base_url + ("?" + "&".join(kept) if kept else "")


def _links(gtin: str, serial: str) -> list[Link]:
    scanned = _scanned_url()
    verify_href = url_for("verify.verify_url", url=scanned, _external=True)
    recall_href = url_for("verify.get_recall_status", gtin=gtin, serial=serial, _external=True)
    return [
        Link(PIP, scanned, "Is this genuine, and where has it been?", HTML),
        Link(VERIFICATION_SERVICE, verify_href, "Verify this item", "application/json"),
        Link(RECALL_STATUS, recall_href, "Recall status", "application/json"),
    ]


def _link_type(asked: str) -> str | None:
    """`gs1:x` or a GS1 Web Vocabulary URI as `x`; `linkset` and `all` as `linkset`."""
    if asked in ("linkset", "all"):
        return "linkset"
    if asked.startswith("gs1:"):
        return asked.removeprefix("gs1:")
    for prefix in GS1_VOC:
        if asked.startswith(prefix):
            return asked.removeprefix(prefix)
    return None


def _linkset(links: list[Link]) -> dict[str, Any]:
    """The links as RFC 9264 JSON, keyed by full GS1 vocabulary URIs as GS1 resolvers do."""
    context: dict[str, Any] = {"anchor": request.base_url}
    for link in links:
        target = {"href": link.href, "title": link.title, "type": link.media_type}
        context[GS1_VOC[0] + link.link_type] = [target]
    # The default link is where a scan goes without a linkType: the item's own page.
    context[GS1_VOC[0] + "defaultLink"] = context[GS1_VOC[0] + PIP]
    return {"linkset": [context]}


@resolver.after_request
def _link_header(response: Response) -> Response:
    """Every resolver answer names the item's links (RFC 8288 `Link`), as GS1 resolvers do."""
    args = request.view_args or {}
    if "gtin" in args and "serial" in args:
        parts = [
            f'<{link.href}>; rel="gs1:{link.link_type}"; title="{link.title}";'
            f' type="{link.media_type}"'
            for link in _links(args["gtin"], args["serial"])
        ]
        linkset = request.base_url + "?linkType=linkset"
        parts.append(f'<{linkset}>; rel="linkset"; type="{LINKSET}"')
        response.headers["Link"] = ", ".join(parts)
    return response


@resolver.get("/01/<gtin>/21/<path:serial>")
def resolve(gtin: str, serial: str) -> ResponseReturnValue:
    """The GS1 Digital Link a tag carries: the buyer's page, or the verification as JSON.

    `?linkType=gs1:verificationService` and `gs1:recallStatus` redirect to those routes;
    `linkset` (or `all`) lists the item's links.
    """
    asked = request.args.get("linkType")
    if asked is not None:
        link = verification.digital_link(_scanned_url())
        gtin, serial = link.gtin, link.serial
        link_type = _link_type(asked)
        if link_type == "linkset":
            response = jsonify(_linkset(_links(gtin, serial)))
            response.content_type = LINKSET
            return response
        chosen = [link for link in _links(gtin, serial) if link.link_type == link_type]
        if not chosen:
            known = "gs1:pip, gs1:verificationService, gs1:recallStatus, linkset"
            body = error_body(
                "not_found",
                f"this item has no link of type {asked!r}; it has {known}",
                {"linkType": "no such link for this item"},
            )
            return jsonify(body), 404
        if link_type != PIP:
            return redirect(chosen[0].href, 307)
    wanted = request.accept_mimetypes.best_match([JSON, HTML])
    if wanted is None:
        body = error_body("not_acceptable", f"ask for {HTML} (the buyer's page) or {JSON}")
        return jsonify(body), 406
    if request.method == "HEAD" or (wanted == HTML and is_link_preview(request.user_agent.string)):
        return preview_page()  # a prefetch or a chat app's preview must not spend a tap
    try:
        found, status = _verification(_scanned_url(), _resolver_scanner())
    except InvalidInput as exc:
        if wanted == JSON:
            raise
        found = Verification(
            verdict=Verdict.UNVERIFIABLE,
            reasons=[ReasonPublic(code="invalid_link", message=exc.message)],
            checked_at=datetime.now(UTC),
        )
        return verification_page(found, 422)
    if wanted == HTML:
        return verification_page(found, status)
    return answer(found, status)


def _resolver_scanner() -> verification.Scanner:
    """The phone, and where it is if the link says (`geo`, `place`), as /v1/verify takes them."""
    geo, place = request.args.get("geo"), request.args.get("place")
    fields = {}
    if geo is not None and len(geo) > GEO_MAX:
        fields["geo"] = f"at most {GEO_MAX} characters"
    if place is not None and len(place) > PLACE_MAX:
        fields["place"] = f"at most {PLACE_MAX} characters"
    if fields:
        raise InvalidInput("the phone's position is too long", fields)
    return _scanner(geo, place)


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
    """The item's most recent public checks, with the tag check's detailed causes.

    For the item's supplier, and for operators (who answer suppliers' and buyers' questions).
    """
    organization_id = caller().organization_id  # None: an operator, who may read any item
    result = verification.item_scans(
        unit_of_work(), organization_id, path.gtin, path.serial, query.limit
    )
    return answer(result)
