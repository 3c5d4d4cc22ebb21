"""/v1/trust: which supplier signs each GTIN, for reader devices to check tags offline."""

from __future__ import annotations

from provenance_api.api.frame import Answer, answer, blueprint, unit_of_work
from provenance_api.schemas import ProductListQuery, TrustPage
from provenance_api.services import trust

bp = blueprint("trust", "Trust material that reader devices cache.")


@bp.get("/trust", responses={200: TrustPage})
def list_trust(query: ProductListQuery) -> Answer:
    """Every registered GTIN with its supplier's name and signing address, by GTIN."""
    return answer(trust.trust_page(unit_of_work(), query.after, query.limit))
