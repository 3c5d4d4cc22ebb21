"""Serialized items: a supplier registers up to 10,000 at a time, idempotently by (GTIN, serial).

A batch costs a few queries whatever its size: one for the products it names, one for the
keys already stored, one for the chip UIDs already bound, and two bulk inserts. Each new
item's registration is its commissioning event (services.commissioning), signed with the
supplier's key and stored in the same transaction, so it is anchored in the shared Merkle
batches like any custody event. No passport is minted and no chain write is owed per item.

Another supplier's GTIN is refused as an unknown product, and another supplier's item is
NotFound: neither says who holds it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from contracts_abi.merkle import SALT_BYTES
from provenance_api.keys import KeyBox
from provenance_api.models import Item, utcnow
from provenance_api.schemas import (
    ItemBatchResult,
    ItemCreate,
    ItemPage,
    ItemPublic,
    ItemRefused,
    ItemStored,
)
from provenance_api.services.commissioning import commissioning_event
from provenance_api.services.errors import Conflict, InvalidInput, NotFound
from provenance_api.services.ports import NewItem, UnitOfWork

# A concurrent batch that stored some of the same rows first makes the bulk insert clash;
# the retry then finds those rows stored and answers them as any resend.
ATTEMPTS = 3
_COMPARED = ("lot", "expiry", "tag", "uid")


@dataclass
class _Plan:
    """What one batch does: rows to insert, rows already stored, rows refused."""

    new: list[tuple[int, NewItem]] = field(default_factory=list)
    stored: list[tuple[int, Item]] = field(default_factory=list)
    refused: list[ItemRefused] = field(default_factory=list)


def register_items(
    uow: UnitOfWork,
    keybox: KeyBox,
    organization_id: int,
    rows: Sequence[tuple[int, ItemCreate]],
    invalid: Mapping[int, Mapping[str, str]] | None = None,
    *,
    atomic: bool = False,
) -> ItemBatchResult:
    """Store the good rows (all or none when `atomic`); `invalid` are rows refused on their form.

    Rows are (index in the request, item); the answer has one entry per index, in order.
    """
    invalid = invalid or {}
    if atomic and invalid:
        raise _atomic_refusal([_malformed(i, f) for i, f in invalid.items()], len(rows))
    for attempt in range(ATTEMPTS):
        try:
            return _register_once(uow, keybox, organization_id, rows, invalid, atomic)
        except Conflict:
            if attempt == ATTEMPTS - 1:
                raise Conflict("other requests kept storing these items; send it again") from None
    raise AssertionError("unreachable")


def _register_once(
    uow: UnitOfWork,
    keybox: KeyBox,
    organization_id: int,
    rows: Sequence[tuple[int, ItemCreate]],
    invalid: Mapping[int, Mapping[str, str]],
    atomic: bool,
) -> ItemBatchResult:
    now = utcnow()
    with uow:
        owned = uow.products.owned(organization_id, {row.gtin for _, row in rows})
        keys = {(row.gtin, row.serial) for _, row in rows if row.gtin in owned}
        existing: dict[tuple[str, str], Item | NewItem] = {
            (item.gtin, item.serial): item for item in uow.items.by_keys(keys)
        }
        uids = {row.uid for _, row in rows if row.uid is not None}
        bound: dict[str, Item | NewItem] = {item.uid: item for item in uow.items.by_uids(uids)}
        plan = _plan(organization_id, rows, owned, existing, bound, now)
        plan.refused += [_malformed(index, fields) for index, fields in invalid.items()]
        if atomic and plan.refused:
            raise _atomic_refusal(plan.refused, len(rows) + len(invalid))
        stored = [_stored(i, item, created=True) for i, item in plan.new]
        stored += [_stored(i, item, created=False) for i, item in plan.stored]
        _commission(uow, keybox, organization_id, [item for _, item in plan.new])
        uow.commit()
    stored.sort(key=lambda entry: entry.index)
    plan.refused.sort(key=lambda entry: entry.index)
    return ItemBatchResult(
        created=len(plan.new),
        unchanged=len(plan.stored),
        refused_count=len(plan.refused),
        items=stored,
        refused=plan.refused,
    )


def _commission(
    uow: UnitOfWork, keybox: KeyBox, organization_id: int, new: Sequence[NewItem]
) -> None:
    """Store the new items and, with each, its commissioning event signed by the supplier."""
    if not new:
        return
    supplier = uow.organizations.get(organization_id)
    if supplier is None:
        raise NotFound(f"no organization {organization_id}")
    if supplier.encrypted_key is None:
        # Registration signs each commissioning event; a supplier keeping its own key would
        # have to sign them itself, which this route does not take yet.
        raise InvalidInput(
            "your organization holds its own key: items cannot be commissioned for it",
            {"items": "the supplier's key is not held by the service"},
        )
    private_key = keybox.open(supplier.encrypted_key, supplier.address)
    ids = uow.items.add_many(new)
    uow.events.add_many(
        [
            commissioning_event(
                item,
                item_id,
                supplier.address,
                private_key,
                event_id=uuid.uuid4(),
                salt=os.urandom(SALT_BYTES),
            )
            for item, item_id in zip(new, ids, strict=True)
        ]
    )


def _plan(
    organization_id: int,
    rows: Sequence[tuple[int, ItemCreate]],
    owned: set[str],
    existing: dict[tuple[str, str], Item | NewItem],
    bound: dict[str, Item | NewItem],
    now: datetime,
) -> _Plan:
    """Decide every row against what is stored and the rows before it. Pure."""
    plan = _Plan()
    for index, row in rows:
        if row.gtin not in owned:
            plan.refused.append(
                ItemRefused(
                    index=index, error="unknown_product", fields={"gtin": "no such product"}
                )
            )
            continue
        key = (row.gtin, row.serial)
        known = existing.get(key)
        holder = bound.get(row.uid) if row.uid is not None else None
        if known is None and holder is not None and (holder.gtin, holder.serial) == key:
            # A concurrent batch stored this very row between our two reads (each read sees
            # what was committed when it ran): it is a resend, not a UID bound elsewhere.
            known = holder
        if known is not None:
            differing = [name for name in _COMPARED if getattr(known, name) != _value(row, name)]
            if differing:
                fields = {name: "differs from the item already registered" for name in differing}
                plan.refused.append(ItemRefused(index=index, error="conflict", fields=fields))
            else:
                plan.stored.append((index, known))
            continue
        if holder is not None:
            plan.refused.append(
                ItemRefused(
                    index=index, error="conflict", fields={"uid": "already bound to another item"}
                )
            )
            continue
        item = NewItem(
            organization_id=organization_id,
            gtin=row.gtin,
            serial=row.serial,
            lot=row.lot,
            expiry=row.expiry,
            tag=row.tag.value,
            uid=row.uid,
            commissioned_at=now,
        )
        plan.new.append((index, item))
        # Later rows of this batch meet this one as stored: a repeat is the same item.
        existing[key] = item
        if item.uid is not None:
            bound[item.uid] = item
    return plan


def _value(row: ItemCreate, name: str) -> str | None:
    value = getattr(row, name)
    return value.value if name == "tag" else value


def _malformed(index: int, fields: Mapping[str, str]) -> ItemRefused:
    return ItemRefused(index=index, error="invalid_input", fields=dict(fields))


def _atomic_refusal(refused: Sequence[ItemRefused], total: int) -> InvalidInput:
    fields = {
        f"items.{entry.index}.{name}": f"{entry.error}: {reason}"
        for entry in sorted(refused, key=lambda entry: entry.index)
        for name, reason in entry.fields.items()
    }
    return InvalidInput(
        f"{len(refused)} of {total} rows are refused; with atomic=true nothing was stored", fields
    )


def _stored(index: int, item: Item | NewItem, *, created: bool) -> ItemStored:
    return ItemStored(
        index=index,
        created=created,
        gtin=item.gtin,
        serial=item.serial,
        lot=item.lot,
        expiry=item.expiry,
        tag=item.tag,
        uid=item.uid,
        commissioned_at=item.commissioned_at,
    )


def get_item(uow: UnitOfWork, organization_id: int, gtin: str, serial: str) -> ItemPublic:
    """The organization's item (GTIN, serial); anyone else's is NotFound."""
    with uow:
        item = uow.items.get(gtin, serial)
        if item is None or item.organization_id != organization_id:
            raise NotFound(
                f"no item with GTIN {gtin} and serial {serial!r}", {"serial": "not found"}
            )
        return ItemPublic.model_validate(item, from_attributes=True)


def list_items(
    uow: UnitOfWork, organization_id: int, gtin: str, after: str | None, limit: int
) -> ItemPage:
    """One page of the organization's items of product `gtin`, by serial."""
    with uow:
        if not uow.products.owned(organization_id, {gtin}):
            raise NotFound(f"no product with GTIN {gtin}", {"gtin": "not found"})
        rows = list(uow.items.page(gtin, after, limit + 1))
        items = [ItemPublic.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return ItemPage(items=items, next=items[-1].serial if len(rows) > limit else None)
