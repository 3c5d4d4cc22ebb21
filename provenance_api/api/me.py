"""GET /v1/me: who the presented key belongs to."""

from __future__ import annotations

from provenance_api.api.frame import Answer, answer, blueprint, caller, unit_of_work
from provenance_api.schemas import MePublic
from provenance_api.services import organizations

bp = blueprint("me", "The caller behind the API key.")


@bp.get("/me", responses={200: MePublic})
def get_me() -> Answer:
    """The caller: role, the prefix of the key used, and its organization or operator account."""
    return answer(organizations.me(unit_of_work(), caller()))
