"""/v1/items: a supplier's serialized items, registered up to 10,000 per request."""

from __future__ import annotations

import time

from flask import current_app, request
from pydantic import ValidationError

from provenance_api.api.deps import chain_head, runtime
from provenance_api.api.errors import validation_fields
from provenance_api.api.frame import (
    Answer,
    answer,
    blueprint,
    documented_body,
    parse_json,
    tenant,
    unit_of_work,
)
from provenance_api.api.transfers import passport_domain
from provenance_api.schemas import (
    ErrorBody,
    ItemBatch,
    ItemBatchQuery,
    ItemBatchResult,
    ItemCreate,
    ItemHistory,
    ItemListQuery,
    ItemPage,
    ItemPath,
    ItemPublic,
    PassportMint,
    PassportPublic,
    TransferPublic,
)
from provenance_api.services import history, items, transfers
from provenance_api.services.errors import InvalidInput

bp = blueprint("items", "A supplier's serialized items; (GTIN, serial) names one item.")

Rows = list[tuple[int, ItemCreate]]
RowErrors = dict[int, dict[str, str]]


@bp.post(
    "/items",
    responses={200: ItemBatchResult, 413: ErrorBody},
    openapi_extensions=documented_body(bp, ItemBatch),
)
def register_items(query: ItemBatchQuery) -> Answer:
    """Register items; a resend of the same item returns it, a different one is refused.

    By default the good rows are stored and the others returned by index with their reasons;
    with `atomic=true` a single bad row refuses the batch (422) and nothing is stored.
    """
    rows, invalid = _rows()
    result = items.register_items(
        unit_of_work(), runtime().keybox, tenant(), rows, invalid, atomic=query.atomic
    )
    return answer(result)


@bp.get("/items", responses={200: ItemPage, 404: ErrorBody})
def list_items(query: ItemListQuery) -> Answer:
    """The caller's items of product `gtin` by serial, `limit` at a time; `next` as `after`."""
    page = items.list_items(unit_of_work(), tenant(), query.gtin, query.after, query.limit)
    return answer(page)


@bp.get("/items/<gtin>/<path:serial>", responses={200: ItemPublic, 404: ErrorBody})
def get_item(path: ItemPath) -> Answer:
    """One of the caller's items; anyone else's answers 404."""
    return answer(items.get_item(unit_of_work(), tenant(), path.gtin, path.serial))


@bp.post(
    "/items/<gtin>/<path:serial>/passport",
    responses={201: TransferPublic, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody},
)
def mint_passport(path: ItemPath, body: PassportMint) -> Answer:
    """Mint the item's passport to the caller, its supplier, before any transfer (else 409).

    Usually not needed: the item's first transfer mints the passport straight to the new
    owner. The body may be `{}`: the API signs the supplier's MintConsent with the key it holds.
    """
    result = transfers.mint_passport(
        unit_of_work(),
        runtime().keybox,
        passport_domain(),
        tenant(),
        path.gtin,
        path.serial,
        body,
        int(time.time()),
    )
    return answer(result, 201)


@bp.get("/items/<gtin>/<path:serial>/passport", responses={200: PassportPublic, 404: ErrorBody})
def get_passport(path: ItemPath) -> Answer:
    """The item's passport: its current owner (the database's view) and whether it is minted.

    For the item's supplier and every party to one of its transfers; anyone else gets 404.
    """
    return answer(transfers.get_passport(unit_of_work(), tenant(), path.gtin, path.serial))


def _rows() -> tuple[Rows, RowErrors]:
    """The batch's rows by index, and the malformed ones with their field errors.

    The whole body is validated at once (fast); only when some rows are malformed are the
    others validated one by one, so that they can still be stored. A body whose shape is
    wrong as a whole (not JSON, no `items`, too many rows) is a 422.
    """
    try:
        batch = parse_json(ItemBatch)
    except InvalidInput as exc:
        invalid = _row_errors(exc.fields)
        if invalid is None:
            raise
        raw = current_app.json.loads(request.get_data())["items"]
        rows: Rows = []
        for index, entry in enumerate(raw):
            if index in invalid:
                continue
            try:
                rows.append((index, ItemCreate.model_validate(entry)))
            except ValidationError as row_exc:  # only if Python mode were stricter than JSON
                invalid[index] = validation_fields(row_exc)
        return rows, invalid
    return list(enumerate(batch.items)), {}


def _row_errors(fields: dict[str, str]) -> RowErrors | None:
    """Field errors grouped by row ("items.3.serial"); None if any is not a row's."""
    by_row: RowErrors = {}
    for name, reason in fields.items():
        head, _, rest = name.partition(".")
        index, _, field = rest.partition(".")
        if head != "items" or not index.isdigit():
            return None
        by_row.setdefault(int(index), {})[field or "item"] = reason
    return by_row


@bp.get("/items/<gtin>/<path:serial>/history", responses={200: ItemHistory, 404: ErrorBody})
def get_history(path: ItemPath) -> Answer:
    """The item's custody timeline by event time, each event with its proof of anchoring.

    For the item's supplier, every organization whose device recorded one of its events and
    every party to one of its transfers; anyone else gets 404.
    """
    result = history.item_history(unit_of_work(), tenant(), path.gtin, path.serial, chain_head)
    return answer(result)
