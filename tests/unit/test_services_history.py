"""The history service over the fake: anchoring states, confirmations, who may read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts_abi.merkle import custody_leaf
from provenance_api.models import Organization, OrgKind, Product
from provenance_api.services import history
from provenance_api.services.anchoring import anchor_key, close_batch
from provenance_api.services.errors import NotFound
from provenance_api.services.ports import ChainState, NewCustodyEvent, NewItem
from tests.fakes.unit_of_work import FakeUnitOfWork

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GTIN = "00000000000001"


def _org(uow, name: str, address: str) -> int:
    with uow:
        org = uow.organizations.add(Organization(name=name, kind=OrgKind.SUPPLIER, address=address))
        uow.commit()
    return org.id


def _event(event_id: str, item_id: int, org: int, event_time: int) -> NewCustodyEvent:
    return NewCustodyEvent(
        event_id=event_id,
        item_id=item_id,
        organization_id=org,
        party="0x" + "0c" * 20,
        gtin=GTIN,
        serial="S1",
        biz_step="receiving",
        disposition="in_progress",
        read_point="dock",
        from_party="0x" + "00" * 20,
        to_party="0x" + "00" * 20,
        event_time=event_time,
        time_zone_offset=60,
        tag_url="https://id.example.com/",
        tag_uid=b"",
        tag_originality_signature=b"",
        tag_evidence=bytes(32),
        device="0x" + "0d" * 20,
        signature=bytes(65),
        digest=bytes([event_time % 256]) * 32,
        salt=bytes([7]) * 32,
        tag_verdict="authentic",
        tag_codes=[],
        flags=[],
        received_at=NOW - timedelta(seconds=10),
    )


@pytest.fixture
def world():
    uow = FakeUnitOfWork()
    supplier = _org(uow, "Supplier", "0x" + "0a" * 20)
    carrier = _org(uow, "Carrier", "0x" + "0c" * 20)
    stranger = _org(uow, "Stranger", "0x" + "0e" * 20)
    with uow:
        uow.products.add(Product(organization_id=supplier, gtin=GTIN, name="Tea"))
        uow.items.add_many([NewItem(supplier, GTIN, "S1", None, None, "qr", None, NOW)])
        uow.commit()
    with uow:
        item_id = uow.items.get(GTIN, "S1").id
        # Arrival order differs from event time: the later-dated event arrives first.
        uow.events.add_many(
            [_event("e-late", item_id, carrier, 2_000), _event("e-early", item_id, carrier, 1_000)]
        )
        uow.commit()
    return uow, supplier, carrier, stranger


def test_events_read_pending_then_owed_then_confirmed_with_confirmations(world):
    uow, supplier, carrier, _ = world
    shown = history.item_history(uow, supplier, GTIN, "S1", head=lambda: 99)
    assert [e.event_id for e in shown.events] == ["e-early", "e-late"]
    assert {e.anchoring for e in shown.events} == {"pending"}
    assert (
        shown.events[0].leaf == "0x" + custody_leaf(bytes([1000 % 256]) * 32, bytes([7]) * 32).hex()
    )

    batch = close_batch(uow, now=NOW, max_count=10, max_age_seconds=2)
    assert batch is not None and batch.count == 2
    owed = history.get_event(uow, carrier, "e-late", head=lambda: 99)
    assert (owed.anchoring, owed.root, owed.transaction) == ("owed", "0x" + batch.root.hex(), None)

    uow.settle(anchor_key(batch.batch_id), ChainState.CONFIRMED)
    uow.mine(anchor_key(batch.batch_id), "0x" + "ab" * 32, 10)
    done = history.get_event(uow, carrier, "e-late", head=lambda: 12)
    assert (done.anchoring, done.transaction, done.block_number, done.confirmations) == (
        "confirmed",
        "0x" + "ab" * 32,
        10,
        3,
    )
    unknown_head = history.get_event(uow, carrier, "e-late", head=lambda: None)
    assert unknown_head.confirmations is None

    uow.settle(anchor_key(batch.batch_id), ChainState.FAILED)
    assert history.get_event(uow, supplier, "e-early", head=lambda: 12).anchoring == "failed"


def test_an_organization_that_never_touched_the_item_gets_404(world):
    uow, _, _, stranger = world
    with pytest.raises(NotFound):
        history.item_history(uow, stranger, GTIN, "S1", head=lambda: None)
    with pytest.raises(NotFound):
        history.get_event(uow, stranger, "e-late", head=lambda: None)
    with pytest.raises(NotFound):
        history.get_event(uow, stranger, "no-such-event", head=lambda: None)


def test_confirmations_count_the_block_itself_and_need_both_numbers():
    assert history.confirmations(10, 10) == 1
    assert history.confirmations(10, 9) is None
    assert history.confirmations(None, 10) is None
    assert history.confirmations(10, None) is None
