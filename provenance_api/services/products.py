"""Products: a supplier registers its GTINs; each GTIN belongs to exactly one supplier.

Another organization's product answers NotFound, never "forbidden", so that its existence is
not disclosed; registering a GTIN someone else holds is a Conflict that does not say who.
"""

from __future__ import annotations

from provenance_api.models import Product, utcnow
from provenance_api.schemas import ProductCreate, ProductPage, ProductPublic, ProductUpdate
from provenance_api.services.errors import Conflict, NotFound
from provenance_api.services.ports import UnitOfWork


def create_product(uow: UnitOfWork, organization_id: int, data: ProductCreate) -> ProductPublic:
    """Register `data.gtin` to the organization; a GTIN already registered is a Conflict."""
    with uow:
        if uow.products.get(data.gtin) is not None:
            raise _taken(data.gtin)
        row = Product(
            organization_id=organization_id,
            gtin=data.gtin,
            name=data.name,
            description=data.description,
            image_url=data.image_url,
            attributes=data.attributes,
        )
        try:
            product = uow.products.add(row)
            public = ProductPublic.model_validate(product, from_attributes=True)
            uow.commit()
        except Conflict:
            raise _taken(data.gtin) from None  # another request registered it meanwhile
    return public


def get_product(uow: UnitOfWork, organization_id: int, gtin: str) -> ProductPublic:
    """The organization's product `gtin` (GTIN-14); anyone else's is NotFound."""
    with uow:
        return ProductPublic.model_validate(_own(uow, organization_id, gtin), from_attributes=True)


def list_products(
    uow: UnitOfWork, organization_id: int, after: str | None, limit: int
) -> ProductPage:
    """One page of the organization's products by GTIN."""
    with uow:
        rows = list(uow.products.page(organization_id, after, limit + 1))
        items = [ProductPublic.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return ProductPage(items=items, next=items[-1].gtin if len(rows) > limit else None)


def update_product(
    uow: UnitOfWork, organization_id: int, gtin: str, changes: ProductUpdate
) -> ProductPublic:
    """Apply the fields present in `changes` to the organization's product `gtin`."""
    with uow:
        product = _own(uow, organization_id, gtin)
        fields = changes.model_dump(include=changes.model_fields_set)
        if fields:
            for name, value in fields.items():
                setattr(product, name, value)
            product.updated_at = utcnow()
            product = uow.products.add(product)
        public = ProductPublic.model_validate(product, from_attributes=True)
        uow.commit()
    return public


def _own(uow: UnitOfWork, organization_id: int, gtin: str) -> Product:
    product = uow.products.get(gtin)
    if product is None or product.organization_id != organization_id:
        raise NotFound(f"no product with GTIN {gtin}", {"gtin": "not found"})
    return product


def _taken(gtin: str) -> Conflict:
    # The same answer whether the caller or another supplier holds it: who does is not shown.
    return Conflict(f"GTIN {gtin} is already registered", {"gtin": "already registered"})
