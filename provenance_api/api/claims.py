"""Claims: the owner's one-time code for an item; the buyer's wallet and claim with it (no key)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask_openapi3 import APIBlueprint, Tag

from provenance_api import claim_codes
from provenance_api.api.deps import runtime
from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.api.transfers import passport_domain
from provenance_api.schemas import (
    ClaimCodeCreated,
    ClaimCodeList,
    ClaimCreate,
    ClaimPublic,
    ErrorBody,
    ItemPath,
    WalletCreate,
    WalletPublic,
)
from provenance_api.services import claims

bp = blueprint("claim_codes", "One-time codes with which a buyer claims an item from its owner.")
public = APIBlueprint(
    "claims",
    __name__,
    url_prefix="/v1",
    abp_tags=[Tag(name="claims", description="A buyer claims an item with the seller's code.")],
    abp_responses={422: ErrorBody},
    operation_id_callback=lambda name, path, method: name,
)


def claim_limits(config: Mapping[str, Any]) -> claims.ClaimLimits:
    """Code lifetime and attempts per item from the configuration (CLAIM_*)."""
    return claims.ClaimLimits(
        code_days=config["CLAIM_CODE_DAYS"],
        attempts=config["CLAIM_ATTEMPTS"],
        window_seconds=config["CLAIM_WINDOW_SECONDS"],
    )


@bp.post(
    "/items/<gtin>/<path:serial>/claim-codes",
    responses={201: ClaimCodeCreated, 404: ErrorBody, 409: ErrorBody},
)
def create_claim_code(path: ItemPath) -> Answer:
    """Make a one-time code with which a buyer claims the item; it is shown only this once.

    For the item's current owner (a former owner gets 409, anyone else 404). The item's
    earlier unused code stops working; a code expires after CLAIM_CODE_DAYS (default 30).
    """
    created = claims.create_code(
        unit_of_work(),
        tenant(),
        path.gtin,
        path.serial,
        claim_limits(current_app.config),
        datetime.now(UTC),
        secrets.token_bytes(claim_codes.RANDOM_BYTES),
    )
    return answer(created, 201)


@bp.get("/items/<gtin>/<path:serial>/claim-codes", responses={200: ClaimCodeList, 404: ErrorBody})
def list_claim_codes(path: ItemPath) -> Answer:
    """The codes the caller made for the item and where each stands, never the codes.

    For the item's supplier and every party to one of its transfers; anyone else gets 404.
    """
    result = claims.list_codes(unit_of_work(), tenant(), path.gtin, path.serial, datetime.now(UTC))
    return answer(result)


@public.post(
    "/claims/wallet",
    responses={200: WalletPublic, 429: ErrorBody},
)
def make_claim_wallet(body: WalletCreate) -> Answer:
    """Make a wallet to claim an item with, for a buyer who has none; nothing moves yet.

    No key needed. Send the seller's code and a `passphrase` (at least 12 characters): the code
    is checked as a claim checks it (the same 422, the same attempts and 429) but not spent,
    and the answer holds a new key as an encrypted keystore, and its address, once; the
    service keeps no copy. Save it, then claim to `address` with POST /v1/claims. If this
    answer is lost, nothing was spent or moved: make another. 200, not 201: nothing is stored.
    """
    result = claims.make_wallet(
        unit_of_work(), body, claim_limits(current_app.config), datetime.now(UTC)
    )
    return answer(result)


@public.post(
    "/claims",
    responses={200: ClaimPublic, 201: ClaimPublic, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody},
)
def claim_item(body: ClaimCreate) -> Answer:
    """Claim an item with the seller's code: its passport moves to `address` (201).

    No key needed. A buyer without a wallet first makes one with POST /v1/claims/wallet. A
    wrong, expired or used code is a 422 that does not say which; after CLAIM_ATTEMPTS
    attempts on an item within CLAIM_WINDOW_SECONDS, a 429 with Retry-After. Sent again after
    it succeeded (a lost answer), with the same code and address, it answers 200 with that
    same claim (`replayed`); with another address, the 422. The chain follows through the
    chain writer, as for every transfer.
    """
    result = claims.claim(
        unit_of_work(),
        runtime().keybox,
        passport_domain(),
        body,
        claim_limits(current_app.config),
        datetime.now(UTC),
    )
    return answer(result, 200 if result.replayed else 201)
