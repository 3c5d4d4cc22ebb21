"""/v1/products: a supplier's products by GTIN (GTIN-8/12/13 accepted, stored as GTIN-14)."""

from __future__ import annotations

from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.schemas import (
    ErrorBody,
    ProductCreate,
    ProductListQuery,
    ProductPage,
    ProductPath,
    ProductPublic,
    ProductUpdate,
)
from provenance_api.services import products

bp = blueprint("products", "A supplier's products; a GTIN belongs to one supplier.")


@bp.post("/products", responses={201: ProductPublic, 409: ErrorBody, 413: ErrorBody})
def create_product(body: ProductCreate) -> Answer:
    """Register a product; a GTIN already registered (by anyone) is 409."""
    created = products.create_product(unit_of_work(), tenant(), body)
    return answer(created, 201)


@bp.get("/products", responses={200: ProductPage})
def list_products(query: ProductListQuery) -> Answer:
    """The caller's products by GTIN, `limit` at a time; pass `next` back as `after`."""
    return answer(products.list_products(unit_of_work(), tenant(), query.after, query.limit))


@bp.get("/products/<gtin>", responses={200: ProductPublic, 404: ErrorBody})
def get_product(path: ProductPath) -> Answer:
    """One of the caller's products; anyone else's answers 404."""
    return answer(products.get_product(unit_of_work(), tenant(), path.gtin))


@bp.patch("/products/<gtin>", responses={200: ProductPublic, 404: ErrorBody, 413: ErrorBody})
def update_product(path: ProductPath, body: ProductUpdate) -> Answer:
    """Change the fields sent; `null` clears description or image_url."""
    updated = products.update_product(unit_of_work(), tenant(), path.gtin, body)
    return answer(updated)
