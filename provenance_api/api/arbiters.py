"""/v1/arbiters: the registry of arbiters parties choose from, with public profiles."""

from __future__ import annotations

from flask import request
from flask_openapi3 import APIBlueprint, Tag

from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.api.trades import escrow_reader
from provenance_api.schemas import (
    ArbiterCreate,
    ArbiterList,
    ArbiterPath,
    ArbiterPublic,
    ArbiterRegistered,
    ArbiterTieCreate,
    ErrorBody,
)
from provenance_api.services import arbiters

bp = blueprint("arbiters", "Arbiters register with a profile; operators flag their ties.")
public = APIBlueprint(
    "arbiter_profiles",
    __name__,
    url_prefix="/v1",
    abp_tags=[Tag(name="arbiter-profiles", description="Arbiters' public profiles.")],
    abp_responses={422: ErrorBody},
    operation_id_callback=lambda name, path, method: name,
)


def _base() -> str:
    return request.url_root


@bp.post(
    "/arbiters",
    responses={200: ArbiterRegistered, 202: ArbiterRegistered, 404: ErrorBody, 409: ErrorBody},
)
def register_arbiter(body: ArbiterCreate) -> Answer:
    """Register the calling arbiter organization in TradeEscrow's registry with its profile.

    The API signs `registerArbiter` for a custodial arbiter (202), or answers the transaction
    for one that holds its own key (200). Declared ties are flagged on-chain by the service.
    """
    result, owed = arbiters.register(unit_of_work(), escrow_reader(), tenant(), body, _base())
    return answer(result, 202 if owed else 200)


@bp.delete(
    "/arbiters/me",
    responses={200: ArbiterRegistered, 202: ArbiterRegistered, 404: ErrorBody, 409: ErrorBody},
)
def retire_arbiter() -> Answer:
    """The caller leaves the registry for good; trades that appointed it still await it."""
    result, owed = arbiters.retire(unit_of_work(), escrow_reader(), tenant(), _base())
    return answer(result, 202 if owed else 200)


@bp.post(
    "/arbiters/<int:arbiter_id>/ties",
    responses={201: ArbiterPublic, 404: ErrorBody, 409: ErrorBody},
)
def flag_arbiter_tie(path: ArbiterPath, body: ArbiterTieCreate) -> Answer:
    """An operator flags an arbiter as tied to an organization, with the reason."""
    return answer(arbiters.flag_tie(unit_of_work(), path.arbiter_id, body, _base()), 201)


@public.get("/arbiters", responses={200: ArbiterList})
def list_arbiters() -> Answer:
    """The arbiters not retired (public)."""
    return answer(arbiters.list_arbiters(unit_of_work(), _base()))


@public.get("/arbiters/<int:arbiter_id>", responses={200: ArbiterPublic, 404: ErrorBody})
def get_arbiter(path: ArbiterPath) -> Answer:
    """An arbiter's public profile: the registry's profileURI points here."""
    return answer(arbiters.get_arbiter(unit_of_work(), path.arbiter_id, _base()))
