"""/v1/transfers: an item's passport (its title) moved by its current owner, with its consent."""

from __future__ import annotations

import time

from sqlmodel import Session

from provenance_api.api.deps import runtime
from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.schemas import (
    ErrorBody,
    TransferCreate,
    TransferList,
    TransferPublic,
    TransferQuery,
)
from provenance_api.services import transfers
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import Unavailable

bp = blueprint("transfers", "Ownership: an item's passport moved with its owner's EIP-712 consent.")


def passport_domain() -> transfers.PassportDomain:
    """The chain and ProductPassport address consents are signed for (503 before deployment)."""
    rt = runtime()
    chain_id = rt.w3.eth.chain_id
    with Session(rt.engine) as session:
        address = known_addresses(session, chain_id).get(transfers.PASSPORT)
    if address is None:
        raise Unavailable("the contracts are not deployed on this chain yet; try again shortly")
    return transfers.PassportDomain(chain_id, address)


@bp.post(
    "/transfers",
    responses={201: TransferPublic, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 503: ErrorBody},
)
def create_transfer(body: TransferCreate) -> Answer:
    """Transfer an item's passport from the caller, its current owner, to another party.

    The database decides at once; the chain follows through the chain writer. The item's first
    transfer mints the passport straight to the new owner. An item the caller no longer owns is
    409; one it never held is 404.
    """
    result = transfers.transfer(
        unit_of_work(), runtime().keybox, passport_domain(), tenant(), body, int(time.time())
    )
    return answer(result, 201)


@bp.get("/transfers", responses={200: TransferList, 404: ErrorBody})
def list_transfers(query: TransferQuery) -> Answer:
    """An item's transfers, for its supplier and every party to one of them."""
    return answer(transfers.list_transfers(unit_of_work(), tenant(), query.gtin, query.serial))
