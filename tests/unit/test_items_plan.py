"""How one batch of items is decided against what is stored (pure)."""

from datetime import UTC, datetime

from provenance_api.schemas import ItemCreate, TagKind
from provenance_api.services.items import _plan
from provenance_api.services.ports import NewItem

GTIN = "09506000134352"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def stored(serial: str, uid: str) -> NewItem:
    return NewItem(1, GTIN, serial, None, None, "ntag424", uid, NOW)


def test_a_row_stored_by_a_concurrent_batch_between_the_two_reads_is_a_resend():
    # The read by (GTIN, serial) ran before the other batch committed, the read by UID after
    # it: the UID is bound to this very row, which is no clash.
    row = ItemCreate(gtin=GTIN, serial="S1", tag=TagKind.NTAG424, uid="04000000000001")
    plan = _plan(1, [(0, row)], {GTIN}, {}, {"04000000000001": stored("S1", "04000000000001")}, NOW)
    assert plan.refused == [] and plan.new == []
    assert [(index, item.serial) for index, item in plan.stored] == [(0, "S1")]


def test_a_uid_bound_to_another_item_is_refused():
    row = ItemCreate(gtin=GTIN, serial="S2", tag=TagKind.NTAG424, uid="04000000000001")
    plan = _plan(1, [(0, row)], {GTIN}, {}, {"04000000000001": stored("S1", "04000000000001")}, NOW)
    assert [(entry.index, entry.fields) for entry in plan.refused] == [
        (0, {"uid": "already bound to another item"})
    ]
