"""/v1/organizations: the service's staff (operators) create and list organizations."""

from __future__ import annotations

from provenance_api.api.deps import runtime
from provenance_api.api.frame import Answer, answer, blueprint, unit_of_work
from provenance_api.schemas import (
    ErrorBody,
    OrganizationCreateBody,
    OrganizationCreated,
    OrganizationListQuery,
    OrganizationPage,
)
from provenance_api.services import organizations

bp = blueprint("organizations", "Organizations (operators only).")


@bp.post("/organizations", responses={201: OrganizationCreated, 409: ErrorBody, 413: ErrorBody})
def create_organization(body: OrganizationCreateBody) -> Answer:
    """Create an organization with a new chain key (held encrypted) and its first API key.

    The API key is in this answer only: hand it to the organization now.
    """
    created = organizations.create_organization(unit_of_work(), runtime().keybox, body)
    shown = OrganizationCreated(organization=created.organization, api_key=created.api_key)
    return answer(shown, 201)


@bp.get("/organizations", responses={200: OrganizationPage})
def list_organizations(query: OrganizationListQuery) -> Answer:
    """Organizations by id."""
    return answer(organizations.list_organizations(unit_of_work(), query.after, query.limit))
