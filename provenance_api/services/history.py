"""Custody history: an item's events, or one event, each with its proof of anchoring.

Who may read an item's history: its supplier, every organization whose device recorded one of
its events, and every party to one of its ownership transfers (so its owner). Anyone else
gets 404, as if the item did not exist; an event is readable by whoever may read its item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts_abi.merkle import custody_leaf
from provenance_api.models import AnchorBatch, CustodyEvent, Item
from provenance_api.schemas import AnchorState, CustodyEventPublic, ItemHistory
from provenance_api.services.errors import NotFound
from provenance_api.services.ports import ChainState, UnitOfWork, WriteReceipt

Head = Callable[[], int | None]

_STATES = {
    ChainState.OWED: AnchorState.OWED,
    ChainState.CONFIRMED: AnchorState.CONFIRMED,
    ChainState.FAILED: AnchorState.FAILED,
}


def readers(item: Item, events: Sequence[CustodyEvent], transfer_parties: set[int]) -> set[int]:
    """The organizations that may read the item's history."""
    return {item.organization_id} | {event.organization_id for event in events} | transfer_parties


def confirmations(block_number: int | None, head: int | None) -> int | None:
    """Blocks from the mined block to the head, the block itself counted; None if unknown."""
    if block_number is None or head is None or head < block_number:
        return None
    return head - block_number + 1


def item_history(
    uow: UnitOfWork, organization_id: int, gtin: str, serial: str, head: Head
) -> ItemHistory:
    """The item's events by event time (then arrival), for those who may read it; else 404."""
    with uow:
        item = uow.items.get(gtin, serial)
        events = list(uow.events.for_items({item.id})) if item is not None and item.id else []
        if item is None or organization_id not in _readers(uow, item, events):
            raise NotFound(
                f"no item with GTIN {gtin} and serial {serial!r}", {"serial": "not found"}
            )
        events.sort(key=lambda event: (event.event_time, event.id or 0))
        return ItemHistory(
            gtin=item.gtin, serial=item.serial, events=public_events(uow, events, head)
        )


def get_event(
    uow: UnitOfWork, organization_id: int, event_id: str, head: Head
) -> CustodyEventPublic:
    """One event, for those who may read its item; else 404."""
    with uow:
        found = uow.events.by_event_ids({event_id})
        item = uow.items.get(found[0].gtin, found[0].serial) if found else None
        events = list(uow.events.for_items({item.id})) if item is not None and item.id else []
        if item is None or organization_id not in _readers(uow, item, events):
            raise NotFound(f"no event {event_id}", {"event_id": "not found"})
        (shown,) = public_events(uow, found, head)
        return shown


def _readers(uow: UnitOfWork, item: Item, events: Sequence[CustodyEvent]) -> set[int]:
    assert item.id is not None
    transfers = uow.transfers.of_item(item.id)
    parties = {row.from_organization_id for row in transfers}
    parties |= {row.to_organization_id for row in transfers if row.to_organization_id}
    return readers(item, events, parties)


@dataclass(frozen=True)
class Anchoring:
    """Where one event's anchoring stands: its batch and the batch's anchor write, if any."""

    state: AnchorState
    batch: AnchorBatch | None
    receipt: WriteReceipt | None
    confirmations: int | None


def anchorings(uow: UnitOfWork, batch_ids: Sequence[int | None], head: Head) -> list[Anchoring]:
    """The anchoring of each event placed in these batches (None: in none yet), in order.

    Works for device-signed and captured events alike (inside `with uow`).
    """
    batches = {batch.id: batch for batch in uow.anchors.by_ids({b for b in batch_ids if b})}
    receipts = uow.ledger.receipts([batch.idempotency_key for batch in batches.values()])
    mined = any(receipt.block_number is not None for receipt in receipts.values())
    tip = head() if mined else None
    found = []
    for batch_id in batch_ids:
        batch = batches.get(batch_id) if batch_id is not None else None
        receipt = receipts.get(batch.idempotency_key) if batch is not None else None
        if batch is None:
            state = AnchorState.PENDING
        elif receipt is None:
            state = AnchorState.OWED
        else:
            state = _STATES[receipt.state]
        block = receipt.block_number if receipt is not None else None
        found.append(Anchoring(state, batch, receipt, confirmations(block, tip)))
    return found


def public_events(
    uow: UnitOfWork, events: Sequence[CustodyEvent], head: Head
) -> list[CustodyEventPublic]:
    """The events as shown, each with its anchoring state and proof (inside `with uow`)."""
    found = anchorings(uow, [event.batch_id for event in events], head)
    return [_one(event, anchoring) for event, anchoring in zip(events, found, strict=True)]


def _one(event: CustodyEvent, anchoring: Anchoring) -> CustodyEventPublic:
    batch, receipt, state = anchoring.batch, anchoring.receipt, anchoring.state
    block = receipt.block_number if receipt is not None else None
    return CustodyEventPublic(
        event_id=event.event_id,
        gtin=event.gtin,
        serial=event.serial,
        biz_step=event.biz_step,
        disposition=event.disposition,
        read_point=event.read_point,
        from_party=event.from_party,
        to_party=event.to_party,
        event_time=datetime.fromtimestamp(event.event_time, UTC),
        time_zone_offset=event.time_zone_offset,
        device=event.device,
        party=event.party,
        tag_url=event.tag_url,
        tag_uid=_hex(event.tag_uid),
        tag_originality_signature=_hex(event.tag_originality_signature),
        tag_evidence=_hex(event.tag_evidence),
        signature=_hex(event.signature),
        digest=_hex(event.digest),
        flags=list(event.flags),
        received_at=event.received_at,
        anchoring=state,
        salt=_hex(event.salt),
        leaf=_hex(custody_leaf(bytes(event.digest), bytes(event.salt))),
        leaf_index=event.leaf_index,
        proof=list(event.proof) if event.proof is not None else None,
        root=_hex(batch.root) if batch is not None else None,
        batch_id=_hex(batch.batch_id) if batch is not None else None,
        transaction=receipt.tx_hash if receipt is not None else None,
        block_number=block,
        confirmations=anchoring.confirmations,
    )


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()
