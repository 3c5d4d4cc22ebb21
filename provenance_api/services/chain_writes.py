"""Owing chain writes: insert an outbox row in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, func, select

from provenance_api.models import ChainWrite, WriteStatus
from provenance_api.outbox import jsonable
from provenance_api.services.errors import Conflict


def owe_write(
    session: Session,
    *,
    sender: str,
    contract: str,
    function: str,
    args: Sequence[Any],
    idempotency_key: str,
) -> ChainWrite:
    """Record that `contract.function(*args)` must be mined once; same key, same row.

    Call it inside the transaction of the business change that owes the write, so that both
    commit or neither does. Bytes in `args` are stored as 0x-hex.
    """
    values = jsonable(list(args))
    existing = session.exec(
        select(ChainWrite).where(ChainWrite.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        if (existing.contract, existing.function, existing.args) != (contract, function, values):
            raise Conflict(
                f"idempotency key {idempotency_key!r} already names a different write",
                {"idempotency_key": "reused for a different write"},
            )
        return existing
    row = ChainWrite(
        idempotency_key=idempotency_key,
        sender=sender,
        contract=contract,
        function=function,
        args=values,
    )
    session.add(row)
    session.flush()
    return row


def unsettled_count(session: Session, sender: str | None = None) -> int:
    """How many writes are not yet confirmed or failed."""
    live = (WriteStatus.PENDING, WriteStatus.SIGNED, WriteStatus.SENT)
    query = select(func.count()).select_from(ChainWrite).where(sa.column("status").in_(live))
    if sender is not None:
        query = query.where(ChainWrite.sender == sender)
    return int(session.exec(query).one())
