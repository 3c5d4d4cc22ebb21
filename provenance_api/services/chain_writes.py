"""Owing chain writes: insert an outbox row in the caller's transaction; list and retry them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, func, select

from provenance_api.models import ChainWrite, WriteStatus
from provenance_api.outbox import LIVE, jsonable
from provenance_api.services.errors import Conflict, NotFound


def owe_write(
    session: Session,
    *,
    sender: str,
    contract: str,
    function: str,
    args: Sequence[Any],
    idempotency_key: str,
    value: int = 0,
    after: ChainWrite | int | None = None,
) -> ChainWrite:
    """Record that `contract.function(*args)` must be mined once; same key, same row.

    Call it inside the transaction of the business change that owes the write, so that both
    commit or neither does. `sender` is EIP-55 checksummed, as the writer of its key knows it.
    Bytes in `args` are stored as 0x-hex. `function` "constructor" owes the creation of
    `contract` with `args` as the constructor's arguments; contract `outbox.COIN` with function
    `outbox.PAY` and args [to] owes a plain transfer of `value`. `value` is the wei the
    transaction carries. `after` is a write (or its id) that must be confirmed before this one
    is signed; if it fails for good, this one fails unsigned.
    """
    values = jsonable(list(args))
    amount = int(value)
    if not 0 <= amount < 2**256:
        raise ValueError(f"value must be a uint256 amount of wei, not {value}")
    after_id = _write_id(session, after)
    existing = _by_key(session, idempotency_key)
    if existing is None:
        row = ChainWrite(
            idempotency_key=idempotency_key,
            sender=sender,
            contract=contract,
            function=function,
            args=values,
            value=amount,
            after_write_id=after_id,
        )
        try:
            # A savepoint: a concurrent enqueue of the same key that commits first makes this
            # insert fail alone, and the caller's transaction goes on with the winner's row.
            with session.begin_nested():
                session.add(row)
                session.flush()
            return row
        except sa.exc.IntegrityError:
            existing = _by_key(session, idempotency_key)
            if existing is None:
                raise
    # `after` is not compared: a caller may name its prerequisite's retry the second time.
    same = (existing.contract, existing.function, existing.args, int(existing.value))
    if same != (contract, function, values, amount):
        raise Conflict(
            f"idempotency key {idempotency_key!r} already names a different write",
            {"idempotency_key": "reused for a different write"},
        )
    return existing


def _write_id(session: Session, after: ChainWrite | int | None) -> int | None:
    if after is None:
        return None
    if isinstance(after, ChainWrite):
        if after.id is None:
            session.flush()
        assert after.id is not None
        return after.id
    if session.get(ChainWrite, int(after)) is None:
        raise NotFound(f"no chain write {after} to wait for", {"after": "no such write"})
    return int(after)


def write_by_key(session: Session, idempotency_key: str) -> ChainWrite | None:
    """The write owed under `idempotency_key`, if any."""
    return session.exec(
        select(ChainWrite).where(ChainWrite.idempotency_key == idempotency_key)
    ).first()


_by_key = write_by_key


def unsettled_count(
    session: Session, sender: str | None = None, *, other_than: str | None = None
) -> int:
    """How many writes are not yet confirmed or failed (of `sender`, or of all but one)."""
    live = (WriteStatus.PENDING.value, *LIVE)
    query = select(func.count()).select_from(ChainWrite).where(sa.column("status").in_(live))
    if sender is not None:
        query = query.where(ChainWrite.sender == sender)
    if other_than is not None:
        query = query.where(ChainWrite.sender != other_than)
    return int(session.exec(query).one())


def _unretried_failures() -> Any:
    retry = aliased(ChainWrite)
    retried = select(retry.id).where(retry.retry_of == ChainWrite.id).exists()
    return select(ChainWrite).where(ChainWrite.status == WriteStatus.FAILED.value).where(~retried)


def failed_count(
    session: Session, sender: str | None = None, *, other_than: str | None = None
) -> int:
    """How many writes failed and were not retried yet (what an operator has to look at)."""
    query = _unretried_failures()
    if sender is not None:
        query = query.where(ChainWrite.sender == sender)
    if other_than is not None:
        query = query.where(ChainWrite.sender != other_than)
    return int(session.exec(select(func.count()).select_from(query.subquery())).one())


def list_writes(session: Session, *, failed: bool = False, limit: int = 100) -> list[ChainWrite]:
    """The newest writes first; with `failed`, only failed ones not retried yet."""
    query = _unretried_failures() if failed else select(ChainWrite)
    return list(session.exec(query.order_by(ChainWrite.id.desc()).limit(limit)))  # type: ignore[union-attr]


def retry_write(session: Session, write_id: int) -> ChainWrite:
    """Owe a failed write again as a new write (its nonce is spent); retrying twice is one retry."""
    failed = session.get(ChainWrite, write_id)
    if failed is None:
        raise NotFound(f"no chain write {write_id}", {"id": "no such write"})
    if failed.status != WriteStatus.FAILED.value:
        raise Conflict(
            f"chain write {write_id} is {failed.status}; only a failed write can be retried",
            {"id": f"write is {failed.status}"},
        )
    row = owe_write(
        session,
        sender=failed.sender,
        contract=failed.contract,
        function=failed.function,
        args=failed.args,
        idempotency_key=f"retry-of-{failed.id}",
        value=int(failed.value),
        after=failed.after_write_id,
    )
    if row.retry_of is None:
        row.retry_of = failed.id
        session.add(row)
        session.flush()
    return row
