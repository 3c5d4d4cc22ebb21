"""Anchoring: close batches of accepted events, build their Merkle tree, owe its anchor.

A batch closes when ANCHOR_BATCH_MAX events wait, or when the oldest waiting event is
ANCHOR_MAX_AGE_SECONDS old. Device-signed custody events and events captured over EPCIS are
anchored in the same batches, taken in arrival order (received_at, then kind, then row id),
and leaf `i` is the `i`-th of them: rebuilding a batch from its events gives the same tree.
The batch row, each event's place (batch, leaf index, proof) and the owed
`CustodyLedger.anchor(root, count, batchId)` commit in one transaction: a crash before the
commit leaves every event waiting, one after leaves them anchored once, and the write's
idempotency key is the batch's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts_abi.merkle import custody_tree
from provenance_api.models import AnchorBatch
from provenance_api.services.ports import PendingEvent, Placement, UnitOfWork

LEDGER = "CustodyLedger"
BATCH_ID_BYTES = 32


def anchor_key(batch_id: bytes) -> str:
    """The idempotency key of a batch's anchor write."""
    return f"anchor:{batch_id.hex()}"


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def arrival(event: PendingEvent) -> tuple[datetime, str, int]:
    """The order events are batched in: received_at, then kind, then row id."""
    return (_utc(event.received_at), event.kind, event.id)


def choose_batch(
    waiting: Sequence[PendingEvent], now: datetime, max_count: int, max_age_seconds: float
) -> list[PendingEvent]:
    """The events to close into one batch now, in arrival order; empty when none is due.

    Full (`max_count` waiting) closes at once; otherwise when the oldest waiting event is at
    least `max_age_seconds` old.
    """
    if max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")
    ordered = sorted(waiting, key=arrival)[:max_count]
    if not ordered:
        return []
    if len(ordered) == max_count:
        return ordered
    oldest = min(_utc(event.received_at) for event in ordered)
    if (_utc(now) - oldest).total_seconds() >= max_age_seconds:
        return ordered
    return []


@dataclass(frozen=True)
class BuiltBatch:
    """A batch's root and each event's place in its tree."""

    root: bytes
    placements: list[Placement]


def build_batch(events: Sequence[PendingEvent]) -> BuiltBatch:
    """The StandardMerkleTree of the events' (digest, salt) leaves, in the order given."""
    tree = custody_tree([(event.digest, event.salt) for event in events])
    placements = [
        Placement(event.id, index, ["0x" + node.hex() for node in tree.proof(index)], event.kind)
        for index, event in enumerate(events)
    ]
    return BuiltBatch(tree.root, placements)


def close_batch(
    uow: UnitOfWork,
    *,
    now: datetime,
    max_count: int,
    max_age_seconds: float,
    new_batch_id: Callable[[], bytes] = lambda: os.urandom(BATCH_ID_BYTES),
) -> AnchorBatch | None:
    """Close one due batch and owe its anchor in the same transaction; None if none is due."""
    with uow:
        chosen = choose_batch(uow.anchors.unanchored(max_count), now, max_count, max_age_seconds)
        if not chosen:
            return None
        built = build_batch(chosen)
        batch_id = new_batch_id()
        key = anchor_key(batch_id)
        batch = uow.anchors.close(
            AnchorBatch(
                batch_id=batch_id,
                root=built.root,
                count=len(chosen),
                closed_at=now,
                idempotency_key=key,
            ),
            built.placements,
        )
        uow.ledger.owe(
            contract=LEDGER,
            function="anchor",
            args=[built.root, len(chosen), batch_id],
            idempotency_key=key,
        )
        uow.commit()
        return batch


def batch_due(uow: UnitOfWork, *, now: datetime, max_count: int, max_age_seconds: float) -> bool:
    """Whether a batch is due now; `uow` may be read-only, so an idle poll locks nothing."""
    with uow:
        return bool(
            choose_batch(uow.anchors.unanchored(max_count), now, max_count, max_age_seconds)
        )


def close_due_batches(
    uow: UnitOfWork, *, now: Callable[[], datetime], max_count: int, max_age_seconds: float
) -> int:
    """Close batches until none is due; how many were closed."""
    closed = 0
    while close_batch(uow, now=now(), max_count=max_count, max_age_seconds=max_age_seconds):
        closed += 1
    return closed
