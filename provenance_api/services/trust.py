"""Trust material for devices: which supplier's key signs each GTIN's labels and tags.

A reader device caches this to give a scan its local verdict at once, offline too (a QR label
or an NTAG 21x URL is checked against its supplier's address). Only what the labels already
show is listed: the GTIN, the supplier's name and address.
"""

from __future__ import annotations

from provenance_api.schemas import ProductSignerPublic, TrustPage
from provenance_api.services.ports import UnitOfWork


def trust_page(uow: UnitOfWork, after: str | None, limit: int) -> TrustPage:
    """One page of GTINs with their suppliers, by GTIN."""
    with uow:
        rows = list(uow.products.signers(after, limit + 1))
    items = [
        ProductSignerPublic(
            gtin=row.gtin, supplier=row.supplier, supplier_address=row.supplier_address
        )
        for row in rows[:limit]
    ]
    return TrustPage(items=items, next=items[-1].gtin if len(rows) > limit else None)
