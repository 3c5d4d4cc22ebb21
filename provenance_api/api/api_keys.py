"""/v1/api-keys: the caller's own API keys, listed by prefix, created (shown once), revoked.

Rotation: create a new key (it works at once), move clients to it, revoke the old one.
"""

from __future__ import annotations

from provenance_api.api.frame import Answer, answer, blueprint, caller, unit_of_work
from provenance_api.schemas import (
    ApiKeyCreated,
    ApiKeyListQuery,
    ApiKeyPage,
    ApiKeyPath,
    ApiKeyPublic,
    ErrorBody,
    RevokeQuery,
)
from provenance_api.services import organizations

bp = blueprint("api_keys", "The caller's API keys: shown once when created, then by prefix.")


@bp.get("/api-keys", responses={200: ApiKeyPage})
def list_api_keys(query: ApiKeyListQuery) -> Answer:
    """The caller's keys by prefix, revoked ones included (never the keys themselves)."""
    page = organizations.list_api_keys(unit_of_work(), caller().owner, query.after, query.limit)
    return answer(page)


@bp.post("/api-keys", responses={201: ApiKeyCreated, 409: ErrorBody})
def create_api_key() -> Answer:
    """A new key for the caller, shown this once; it works at once (at most 10 active)."""
    return answer(organizations.create_api_key(unit_of_work(), caller().owner), 201)


@bp.delete("/api-keys/<prefix>", responses={200: ApiKeyPublic, 404: ErrorBody, 409: ErrorBody})
def revoke_api_key(path: ApiKeyPath, query: RevokeQuery) -> Answer:
    """Revoke one of the caller's keys from now on.

    The caller's last active key is kept (409) unless `allow_last=true`: without a key the
    organization can no longer use the API until an operator gives it a new one.
    """
    revoked = organizations.revoke_api_key(
        unit_of_work(), caller().owner, path.prefix, allow_last=query.allow_last
    )
    return answer(revoked)
