"""One suite for the unit-of-work port, run against the fake and the SQL adapter alike.

Whatever the fake does differently from SQLite or PostgreSQL shows here first, so that tests
written against the fake keep meaning what they say.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from provenance_api import db
from provenance_api.models import (
    Arbiter,
    ArbiterTie,
    CaptureJob,
    ChainWrite,
    Device,
    ItemScan,
    OperatorAccount,
    Organization,
    OrgKind,
    OwnershipTransfer,
    Product,
    SunKey,
    Trade,
    TradeAccess,
    TradeKey,
    TradeLegalHold,
    TradeRecord,
    WriteStatus,
)
from provenance_api.services.chain_writes import retry_write
from provenance_api.services.errors import Conflict, NotFound
from provenance_api.services.ports import (
    ChainState,
    EventFilter,
    KeyRecord,
    NewCapturedEvent,
    NewCustodyEvent,
    NewItem,
    Owner,
    OwnerKind,
    Placement,
)
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.fakes.unit_of_work import FakeUnitOfWork

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SENDER = "0x" + "5e" * 20


def _sql(request, tmp_path, kind: str):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'uow.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db.upgrade(url)
    return db.make_engine(url)


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uow(request, tmp_path):
    """A unit of work over an empty, migrated store; the same object serves every `with`."""
    if request.param == "fake":
        yield FakeUnitOfWork()
        return
    engine = _sql(request, tmp_path, request.param)
    try:
        yield SqlUnitOfWork(engine, sender=lambda: SENDER)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_uow(request, tmp_path):
    """The SQL adapter only: for what takes several connections at once."""
    engine = _sql(request, tmp_path, request.param)
    try:
        yield SqlUnitOfWork(engine)
    finally:
        engine.dispose()


def _org(uow, name: str, address: str) -> int:
    with uow:
        org = uow.organizations.add(Organization(name=name, kind=OrgKind.SUPPLIER, address=address))
        uow.commit()
    assert org.id is not None
    return org.id


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def test_organizations_get_by_id_and_name_and_page_by_id(uow):
    ids = [_org(uow, f"Org {n}", f"0x{n:040x}") for n in range(5)]
    with uow:
        assert uow.organizations.by_address(f"0x{3:040x}").id == ids[3]
        assert uow.organizations.by_address("0x" + "ab" * 20) is None
    assert ids == sorted(ids) and len(set(ids)) == 5
    with uow:
        assert uow.organizations.get(ids[2]).name == "Org 2"
        assert uow.organizations.get(10_000) is None
        assert uow.organizations.by_name("Org 3").id == ids[3]
        assert uow.organizations.by_name("org 3") is None
        assert [o.id for o in uow.organizations.page(None, 2)] == ids[:2]
        assert [o.id for o in uow.organizations.page(ids[1], 10)] == ids[2:]


def test_uncommitted_work_is_lost_and_committed_work_stays(uow):
    with uow:
        uow.organizations.add(
            Organization(name="Gone", kind=OrgKind.CARRIER, address="0x" + "1" * 40)
        )
    with uow:
        assert uow.organizations.by_name("Gone") is None
        uow.organizations.add(
            Organization(name="Kept", kind=OrgKind.CARRIER, address="0x" + "2" * 40)
        )
        uow.commit()
        uow.organizations.add(
            Organization(name="Late", kind=OrgKind.CARRIER, address="0x" + "3" * 40)
        )
        uow.rollback()
    with uow:
        assert uow.organizations.by_name("Kept") is not None
        assert uow.organizations.by_name("Late") is None


def test_a_unique_value_stored_twice_is_a_conflict(uow):
    _org(uow, "One", "0x" + "a" * 40)
    with pytest.raises(Conflict), uow:
        uow.organizations.add(
            Organization(name="Two", kind=OrgKind.RETAILER, address="0x" + "a" * 40)
        )
        uow.commit()
    with uow:
        assert uow.organizations.by_name("Two") is None
        uow.operators.add(OperatorAccount(name="Ops"))
        uow.commit()
    with pytest.raises(Conflict), uow:
        uow.operators.add(OperatorAccount(name="Ops"))
        uow.commit()


def test_api_keys_of_both_owner_kinds_by_prefix_page_count_and_revoke(uow):
    org = Owner(OwnerKind.ORGANIZATION, _org(uow, "Acme", "0x" + "b" * 40))
    with uow:
        operator = uow.operators.add(OperatorAccount(name="Staff"))
        uow.commit()
    staff = Owner(OwnerKind.OPERATOR, operator.id)
    with uow:
        for prefix in ("c3", "a1", "b2"):
            uow.api_keys.add(KeyRecord(org, prefix, "h" + prefix, T0))
        uow.api_keys.add(KeyRecord(staff, "d4", "hd4", T0))
        uow.commit()
    with uow:
        found = uow.api_keys.by_prefix("d4")
        assert (found.owner, found.sha256, found.revoked_at) == (staff, "hd4", None)
        assert uow.api_keys.by_prefix("a1").owner == org
        assert uow.api_keys.by_prefix("zz") is None
        assert [k.prefix for k in uow.api_keys.page(org, None, 2)] == ["a1", "b2"]
        assert [k.prefix for k in uow.api_keys.page(org, "a1", 10)] == ["b2", "c3"]
        assert [k.prefix for k in uow.api_keys.page(staff, None, 10)] == ["d4"]
        assert uow.api_keys.count_active(org) == 3
        uow.api_keys.revoke("b2", T0 + timedelta(hours=1))
        uow.commit()
    with uow:
        uow.api_keys.revoke("b2", T0 + timedelta(hours=2))  # the first time stays
        uow.api_keys.revoke("d4", T0 + timedelta(hours=3))
        uow.commit()
    with uow:
        assert _aware(uow.api_keys.by_prefix("b2").revoked_at) == T0 + timedelta(hours=1)
        assert uow.api_keys.count_active(org) == 2
        assert uow.api_keys.count_active(staff) == 0
    with pytest.raises(Conflict), uow:
        uow.api_keys.add(KeyRecord(staff, "a1", "other", T0))
        uow.commit()


def test_products_by_gtin_paged_per_organization_and_updated_through_add(uow):
    mine = _org(uow, "Mine", "0x" + "c" * 40)
    theirs = _org(uow, "Theirs", "0x" + "d" * 40)
    with uow:
        for gtin in ("00000000000003", "00000000000001", "00000000000002"):
            uow.products.add(Product(organization_id=mine, gtin=gtin, name=f"P{gtin[-1]}"))
        uow.products.add(Product(organization_id=theirs, gtin="00000000000004", name="X"))
        uow.commit()
    with uow:
        page = uow.products.page(mine, None, 2)
        assert [p.gtin for p in page] == ["00000000000001", "00000000000002"]
        assert [p.gtin for p in uow.products.page(mine, "00000000000002", 5)] == ["00000000000003"]
        assert [p.gtin for p in uow.products.page(theirs, None, 5)] == ["00000000000004"]
        product = uow.products.get("00000000000001")
        product.attributes = {"colour": "red", "sizes": [1, 2]}
        product.description = "A thing"
        uow.products.add(product)
        uow.commit()
    with uow:
        again = uow.products.get("00000000000001")
        assert again.attributes == {"colour": "red", "sizes": [1, 2]}
        assert again.description == "A thing"
        assert uow.products.get("00000000000009") is None
    with pytest.raises(Conflict), uow:
        uow.products.add(Product(organization_id=theirs, gtin="00000000000001", name="Dup"))
        uow.commit()
    with uow:
        assert uow.products.get("00000000000001").organization_id == mine


def test_racing_suppliers_register_one_gtin_exactly_once(sql_uow):
    uow = sql_uow
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from provenance_api.schemas import ProductCreate
    from provenance_api.services import products

    suppliers = [_org(uow, f"Racer {n}", f"0x{n + 100:040x}") for n in range(6)]
    barrier = Barrier(len(suppliers))
    data = ProductCreate(gtin="09506000134352", name="Contested")

    def register(organization_id: int) -> str:
        barrier.wait()
        try:
            products.create_product(SqlUnitOfWork(uow.engine), organization_id, data)
        except Conflict as exc:
            return exc.message
        return "created"

    with ThreadPoolExecutor(len(suppliers)) as pool:
        outcomes = list(pool.map(register, suppliers))
    assert outcomes.count("created") == 1
    assert set(outcomes) - {"created"} == {"GTIN 09506000134352 is already registered"}


def _item(
    org: int, gtin: str, serial: str, uid: str | None = None, lot=None, expiry=None
) -> NewItem:
    tag = "qr" if uid is None else "ntag424"
    return NewItem(org, gtin, serial, lot, expiry, tag, uid, T0)


def test_items_in_bulk_by_keys_by_uids_and_paged_by_serial(uow):
    mine = _org(uow, "Items", "0x" + "e" * 40)
    theirs = _org(uow, "Others", "0x" + "f" * 40)
    with uow:
        uow.products.add(Product(organization_id=mine, gtin="00000000000001", name="A"))
        uow.products.add(Product(organization_id=mine, gtin="00000000000002", name="B"))
        uow.products.add(Product(organization_id=theirs, gtin="00000000000003", name="C"))
        uow.commit()
    with uow:
        assert uow.products.owned(mine, ["00000000000001", "00000000000003", "9"]) == {
            "00000000000001"
        }
        assert uow.products.owned(mine, []) == set()
        ids = uow.items.add_many(
            [
                _item(mine, "00000000000001", "S3", lot="L1", expiry="271231"),
                _item(mine, "00000000000001", "S1", uid="04000000000001"),
                _item(mine, "00000000000001", "S2"),
                _item(mine, "00000000000002", "S1", uid="04000000000002"),
            ]
        )
        assert uow.items.add_many([]) == []
        uow.commit()
    with uow:
        # The ids come back in the order the items were given.
        keys = [
            ("00000000000001", "S3"),
            ("00000000000001", "S1"),
            ("00000000000001", "S2"),
            ("00000000000002", "S1"),
        ]
        assert ids == [uow.items.get(*key).id for key in keys]
    with uow:
        found = uow.items.by_keys({("00000000000001", "S3"), ("00000000000002", "S1"), ("x", "y")})
        assert sorted((i.gtin, i.serial) for i in found) == [
            ("00000000000001", "S3"),
            ("00000000000002", "S1"),
        ]
        s3 = uow.items.get("00000000000001", "S3")
        assert (s3.lot, s3.expiry, s3.tag, s3.uid) == ("L1", "271231", "qr", None)
        assert s3.organization_id == mine and s3.commissioned_at is not None
        assert uow.items.get("00000000000002", "S3") is None
        bound = uow.items.by_uids(["04000000000002", "04000000000009"])
        assert [(i.gtin, i.serial) for i in bound] == [("00000000000002", "S1")]
        assert uow.items.by_keys([]) == [] and uow.items.by_uids([]) == []
        assert [i.serial for i in uow.items.page("00000000000001", None, 2)] == ["S1", "S2"]
        assert [i.serial for i in uow.items.page("00000000000001", "S2", 5)] == ["S3"]
        assert uow.items.page("00000000000003", None, 5) == []


@pytest.mark.parametrize(
    "clash",
    [
        ("00000000000001", "S1", None),  # the same (GTIN, serial)
        ("00000000000001", "S9", "04000000000001"),  # a UID bound already
        ("00000000000009", "S1", None),  # no such product
    ],
)
def test_a_bulk_insert_that_clashes_stores_nothing(uow, clash):
    org = _org(uow, "Clash", "0x" + "9" * 40)
    with uow:
        uow.products.add(Product(organization_id=org, gtin="00000000000001", name="A"))
        uow.items.add_many([_item(org, "00000000000001", "S1", uid="04000000000001")])
        uow.commit()
    gtin, serial, uid = clash
    with pytest.raises(Conflict), uow:
        uow.items.add_many([_item(org, "00000000000001", "S5"), _item(org, gtin, serial, uid)])
        uow.commit()
    with uow:
        assert uow.items.get("00000000000001", "S5") is None
        assert len(uow.items.page("00000000000001", None, 10)) == 1


def test_sun_keys_by_organization_in_epoch_order_and_unique_per_epoch(uow):
    one = _org(uow, "Keys 1", "0x" + "7" * 40)
    two = _org(uow, "Keys 2", "0x" + "8" * 40)
    with uow:
        for epoch in (2, 1, 3):
            uow.sun_keys.add(SunKey(organization_id=one, epoch=epoch, sealed_key=f"k{epoch}"))
        uow.sun_keys.add(SunKey(organization_id=two, epoch=1, sealed_key="other"))
        uow.commit()
    with uow:
        assert [(k.epoch, k.sealed_key) for k in uow.sun_keys.epochs(one)] == [
            (1, "k1"),
            (2, "k2"),
            (3, "k3"),
        ]
        assert [k.sealed_key for k in uow.sun_keys.epochs(two)] == ["other"]
        assert uow.sun_keys.epochs(10_000) == []
    with pytest.raises(Conflict), uow:
        uow.sun_keys.add(SunKey(organization_id=two, epoch=1, sealed_key="again"))
        uow.commit()


def test_ten_thousand_items_in_one_insert_and_found_by_one_query_each(uow):
    org = _org(uow, "Bulk", "0x" + "6" * 40)
    gtin = "00000000000001"
    items = [_item(org, gtin, f"S{n:05d}", uid=f"04{n:012X}") for n in range(10_000)]
    with uow:
        uow.products.add(Product(organization_id=org, gtin=gtin, name="Bulk"))
        uow.items.add_many(items)
        uow.commit()
    keys = [(gtin, f"S{n:05d}") for n in range(0, 20_000, 2)]  # half of them exist
    with uow:
        found = uow.items.by_keys(keys)
        assert len(found) == 5_000
        assert {i.serial for i in found} == {f"S{n:05d}" for n in range(0, 10_000, 2)}
        assert len(uow.items.by_uids([f"04{n:012X}" for n in range(5_000, 15_000)])) == 5_000


DEVICE_A = "0x" + "a1" * 20
DEVICE_B = "0x" + "b2" * 20


def test_devices_by_address_paged_per_organization_and_revoked_through_add(uow):
    mine, theirs = _org(uow, "Dock", "0x" + "01" * 20), _org(uow, "Rival", "0x" + "02" * 20)
    with uow:
        for org, address in ((mine, DEVICE_B), (mine, DEVICE_A), (theirs, "0x" + "c3" * 20)):
            uow.devices.add(Device(organization_id=org, address=address, name="R"))
        uow.commit()
    with uow:
        device = uow.devices.get(DEVICE_A)
        assert device is not None and device.organization_id == mine
        assert uow.devices.get("0x" + "d4" * 20) is None
        assert [d.address for d in uow.devices.page(mine, None, 10)] == [DEVICE_A, DEVICE_B]
        assert [d.address for d in uow.devices.page(mine, DEVICE_A, 10)] == [DEVICE_B]
        assert [d.address for d in uow.devices.page(mine, None, 1)] == [DEVICE_A]
        device.revoked_at = T0
        uow.devices.add(device)
        uow.commit()
    with uow:
        assert uow.devices.get(DEVICE_A).revoked_at.replace(tzinfo=UTC) == T0
        with pytest.raises(Conflict):
            uow.devices.add(Device(organization_id=theirs, address=DEVICE_A, name="Again"))


def test_owed_writes_commit_and_roll_back_with_the_unit_of_work(uow):
    with uow:
        uow.ledger.owe(
            contract="CustodyLedger",
            function="revokeDevice",
            args=[DEVICE_A],
            idempotency_key="lost",
        )
    with uow:
        assert uow.ledger.states(["lost"]) == {}
        uow.ledger.owe(
            contract="CustodyLedger",
            function="revokeDevice",
            args=[DEVICE_A],
            idempotency_key="kept",
        )
        uow.commit()
    with uow:
        assert uow.ledger.states(["kept", "lost"]) == {"kept": ChainState.OWED}
        # The same key and write again is the same write; another write under it is refused.
        uow.ledger.owe(
            contract="CustodyLedger",
            function="revokeDevice",
            args=[DEVICE_A],
            idempotency_key="kept",
        )
        with pytest.raises(Conflict):
            uow.ledger.owe(
                contract="CustodyLedger",
                function="revokeDevice",
                args=[DEVICE_B],
                idempotency_key="kept",
            )


def test_owed_writes_name_their_sender_value_and_prerequisite(uow):
    org = "0x" + "0a" * 20
    with uow:
        uow.ledger.owe(contract="TradeEscrow", function="open", args=[1], idempotency_key="open")
        uow.ledger.owe(
            contract="TradeEscrow",
            function="deposit",
            args=[1],
            idempotency_key="deposit",
            sender=org,
            value=10**30,
            after="open",
        )
        uow.commit()
    with uow:
        assert uow.ledger.states(["open", "deposit"]) == {
            "open": ChainState.OWED,
            "deposit": ChainState.OWED,
        }
        # The same write again is the same write; with another value it is refused.
        uow.ledger.owe(
            contract="TradeEscrow",
            function="deposit",
            args=[1],
            idempotency_key="deposit",
            sender=org,
            value=10**30,
            after="open",
        )
        with pytest.raises(Conflict):
            uow.ledger.owe(
                contract="TradeEscrow",
                function="deposit",
                args=[1],
                idempotency_key="deposit",
                sender=org,
                value=1,
            )
        with pytest.raises(NotFound):
            uow.ledger.owe(
                contract="TradeEscrow",
                function="deposit",
                args=[2],
                idempotency_key="orphan",
                after="never owed",
            )
    if isinstance(uow, SqlUnitOfWork):
        with db.session_scope(uow.engine) as session:
            rows = {r.idempotency_key: r for r in session.exec(select(ChainWrite))}
        assert rows["open"].sender == SENDER and rows["open"].value == 0
        deposit = rows["deposit"]
        assert (deposit.sender, deposit.value) == (org, 10**30)
        assert deposit.after_write_id == rows["open"].id


def test_a_failed_write_reads_as_its_retry_once_an_operator_retried_it(sql_uow):
    sql_uow.sender = lambda: SENDER
    with sql_uow:
        sql_uow.ledger.owe(
            contract="CustodyLedger", function="revokeDevice", args=[DEVICE_A], idempotency_key="k"
        )
        sql_uow.commit()
    with db.session_scope(sql_uow.engine) as session:
        row = session.exec(select(ChainWrite).where(ChainWrite.idempotency_key == "k")).one()
        row.status = WriteStatus.FAILED.value
        session.add(row)
    with sql_uow:
        assert sql_uow.ledger.states(["k"]) == {"k": ChainState.FAILED}
    with db.session_scope(sql_uow.engine) as session:
        retried = retry_write(session, row.id)
        retried.status = WriteStatus.CONFIRMED.value
        session.add(retried)
    with sql_uow:
        assert sql_uow.ledger.states(["k"]) == {"k": ChainState.CONFIRMED}


def test_racing_organizations_register_one_device_exactly_once_and_owe_it_once(sql_uow):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from provenance_api.schemas import DeviceCreate
    from provenance_api.services import devices

    racers = [_org(sql_uow, f"Racer {n}", f"0x{n + 100:040x}") for n in range(6)]
    barrier = Barrier(len(racers))
    data = DeviceCreate(address=DEVICE_A.lower(), name="Contested")

    def register(organization_id: int) -> str:
        barrier.wait()
        try:
            devices.register_device(
                SqlUnitOfWork(sql_uow.engine, sender=lambda: SENDER), organization_id, data
            )
        except Conflict as exc:
            return exc.message
        return "created"

    with ThreadPoolExecutor(len(racers)) as pool:
        outcomes = list(pool.map(register, racers))
    assert outcomes.count("created") == 1
    assert {o.split(";")[0] for o in outcomes} - {"created"} == {
        f"device {data.address} is already registered"
    }
    with db.session_scope(sql_uow.engine) as session:
        owed = session.exec(select(ChainWrite).where(ChainWrite.function == "registerDevice"))
        assert [row.args[1] for row in owed] == [data.address]


def _event(event_id: str, item_id: int, org: int, **changes) -> NewCustodyEvent:
    values = dict(
        event_id=event_id,
        item_id=item_id,
        organization_id=org,
        party="0x" + "0a" * 20,
        gtin="00000000000001",
        serial="S1",
        biz_step="shipping",
        disposition="in_transit",
        read_point="dock",
        from_party="0x" + "00" * 20,
        to_party="0x" + "0b" * 20,
        event_time=1_790_000_000,
        time_zone_offset=-300,
        tag_url="https://id.example.com/01/00000000000001/21/S1",
        tag_uid=b"",
        tag_originality_signature=b"",
        tag_evidence=bytes(range(32)),
        device=DEVICE_A,
        signature=bytes(65),
        digest=bytes(range(1, 33)),
        salt=bytes(32),
        tag_verdict="authentic",
        tag_codes=[],
        flags=["unmatched_receiving"],
        received_at=T0,
    )
    values.update(changes)
    return NewCustodyEvent(**values)


def _event_world(uow) -> tuple[int, list[int]]:
    org = _org(uow, "Events", "0x" + "0a" * 20)
    with uow:
        uow.products.add(Product(organization_id=org, gtin="00000000000001", name="A"))
        uow.items.add_many([_item(org, "00000000000001", "S1"), _item(org, "00000000000001", "S2")])
        uow.devices.add(Device(organization_id=org, address=DEVICE_A, name="R"))
        uow.devices.add(Device(organization_id=org, address=DEVICE_B, name="R"))
        uow.commit()
    with uow:
        items = uow.items.by_keys({("00000000000001", "S1"), ("00000000000001", "S2")})
        ids = sorted(item.id for item in items)
    return org, ids


def test_custody_events_in_bulk_by_event_id_and_by_item_in_arrival_order(uow):
    org, (one, two) = _event_world(uow)
    with uow:
        uow.events.add_many([_event("e2", one, org), _event("e1", two, org, serial="S2")])
        uow.events.add_many([_event("e3", one, org, biz_step="receiving")])
        uow.events.add_many([])
        uow.commit()
    with uow:
        found = {row.event_id: row for row in uow.events.by_event_ids({"e1", "e3", "nope"})}
        assert set(found) == {"e1", "e3"}
        e1 = found["e1"]
        assert (e1.item_id, e1.serial, e1.time_zone_offset, e1.event_time) == (
            two,
            "S2",
            -300,
            1_790_000_000,
        )
        assert (e1.digest, e1.tag_evidence, e1.signature) == (
            bytes(range(1, 33)),
            bytes(range(32)),
            bytes(65),
        )
        assert (e1.flags, e1.tag_codes, e1.batch_id, e1.leaf_index, e1.proof) == (
            ["unmatched_receiving"],
            [],
            None,
            None,
            None,
        )
        assert [row.event_id for row in uow.events.for_items({one})] == ["e2", "e3"]
        assert [row.event_id for row in uow.events.for_items({one, two})] == ["e2", "e1", "e3"]
        assert uow.events.by_event_ids([]) == [] and uow.events.for_items([]) == []
        # The custody rules' narrow read: the same events, in the same order, eight columns.
        steps = uow.events.steps_for_items({one, two})
        rows = uow.events.for_items({one, two})
        assert [(s.id, s.item_id, s.event_id, s.biz_step, s.party) for s in steps] == [
            (r.id, r.item_id, r.event_id, r.biz_step, r.party) for r in rows
        ]
        assert [(s.event_time, s.from_party, s.to_party) for s in steps] == [
            (r.event_time, r.from_party, r.to_party) for r in rows
        ]
        assert uow.events.steps_for_items([]) == []


@pytest.mark.parametrize("clash", ["stored", "twice", "no_item"])
def test_a_custody_event_insert_that_clashes_stores_nothing(uow, clash):
    org, (one, _) = _event_world(uow)
    with uow:
        uow.events.add_many([_event("e1", one, org)])
        uow.commit()
    bad = {
        "stored": _event("e1", one, org),
        "twice": _event("e2", one, org),
        "no_item": _event("e3", 10_000, org),
    }[clash]
    with pytest.raises(Conflict), uow:
        uow.events.add_many([_event("e2", one, org), bad])
        uow.commit()
    with uow:
        assert [row.event_id for row in uow.events.for_items({one})] == ["e1"]


def test_devices_by_addresses_and_seen_in_one_statement(uow):
    _event_world(uow)
    with uow:
        found = uow.devices.by_addresses({DEVICE_A, DEVICE_B, "0x" + "c3" * 20})
        assert sorted(d.address for d in found) == [DEVICE_A, DEVICE_B]
        assert uow.devices.by_addresses([]) == []
        uow.devices.seen({DEVICE_A, "0x" + "c3" * 20}, T0)
        uow.devices.seen([], T0)
        uow.commit()
    with uow:
        assert _aware(uow.devices.get(DEVICE_A).last_seen_at) == T0
        assert uow.devices.get(DEVICE_B).last_seen_at is None


def test_sun_counters_advance_with_the_unit_of_work(uow):
    uid = bytes.fromhex("04112233445566")
    with uow:
        assert uow.counters.advance(uid, 1, 5) is True
        assert uow.counters.advance(uid, 1, 5) is False  # the same tap twice in one unit
        uow.rollback()
        assert uow.counters.last(uid, 1) is None  # rolled back: no counter burned
        assert uow.counters.advance(uid, 1, 5) is True
        uow.commit()
    with uow:
        assert uow.counters.advance(uid, 1, 5) is False
        assert uow.counters.advance(uid, 2, 5) is True  # another key epoch counts apart
        assert uow.counters.advance(uid, 1, 6) is True
        uow.commit()
    with uow:
        assert (uow.counters.last(uid, 1), uow.counters.last(uid, 2)) == (6, 5)


def test_sun_counters_advance_many_tags_at_once(uow):
    one, two, three = (bytes([4, 0, 0, 0, 0, 0, n]) for n in (1, 2, 3))
    with uow:
        assert uow.counters.advance(one, 1, 10) is True
        uow.commit()
    with uow:
        advanced = uow.counters.advance_many([(three, 1, 0), (one, 1, 10), (two, 1, 4)])
        assert advanced == {(three, 1), (two, 1)}  # one's 10 is a replay
        assert uow.counters.advance_many([]) == set()
        with pytest.raises(ValueError, match="once"):
            uow.counters.advance_many([(one, 1, 11), (one, 1, 12)])
        uow.commit()
    with uow:
        assert [uow.counters.last(uid, 1) for uid in (one, two, three)] == [10, 4, 0]
        assert uow.counters.advance_many([(one, 1, 11), (two, 1, 4)]) == {(one, 1)}
        uow.rollback()
        assert uow.counters.last(one, 1) == 10


def _transfer(item_id: int, sequence: int, org: int, signer: str, nonce: int, to: str):
    return OwnershipTransfer(
        item_id=item_id,
        sequence=sequence,
        from_organization_id=org,
        from_address=signer,
        to_address=to,
        nonce=nonce,
        deadline=2**40,
        signature=bytes(65),
        idempotency_key=f"passport:{item_id}:{sequence}",
    )


def test_transfers_per_item_by_sequence_with_each_signers_next_nonce(uow):
    supplier_address, buyer = "0x" + "a1" * 20, "0x" + "b2" * 20
    org = _org(uow, "Seller", supplier_address)
    with uow:
        uow.products.add(Product(organization_id=org, gtin="00000000000001", name="A"))
        uow.items.add_many([_item(org, "00000000000001", s) for s in ("S1", "S2")])
        uow.commit()
    with uow:
        first, second = (uow.items.get("00000000000001", s).id for s in ("S1", "S2"))
        assert uow.transfers.of_item(first) == []
        assert uow.transfers.next_nonce(supplier_address) == 0
        uow.transfers.add(_transfer(first, 1, org, supplier_address, 0, buyer))
        uow.transfers.add(_transfer(second, 1, org, supplier_address, 1, buyer))
        uow.commit()
    with uow:
        assert uow.transfers.next_nonce(supplier_address) == 2
        assert uow.transfers.next_nonce(buyer) == 0
        uow.transfers.add(_transfer(first, 2, org, buyer, 0, supplier_address))
        assert [t.sequence for t in uow.transfers.of_item(first)] == [1, 2]
        # The same step of one item twice, or a signer's nonce twice: a clash.
        with pytest.raises(Conflict):
            uow.transfers.add(_transfer(second, 1, org, "0x" + "c3" * 20, 0, buyer))
    with uow, pytest.raises(Conflict):
        uow.transfers.add(_transfer(second, 2, org, supplier_address, 1, buyer))
    with uow:
        # Uncommitted work was lost; the committed rows stay.
        assert [t.to_address for t in uow.transfers.of_item(first)] == [buyer]
        assert uow.transfers.next_nonce(buyer) == 0


def _anchor_batch(batch_id: bytes, root: bytes, count: int):
    from provenance_api.models import AnchorBatch

    return AnchorBatch(
        batch_id=batch_id,
        root=root,
        count=count,
        closed_at=T0,
        idempotency_key=f"anchor:{batch_id.hex()}",
    )


def test_anchor_batches_take_waiting_events_by_id_and_place_each_once(uow):
    from provenance_api.services.ports import Placement

    org, (one, two) = _event_world(uow)
    with uow:
        uow.events.add_many([_event(f"e{n}", one if n % 2 else two, org) for n in range(1, 6)])
        uow.commit()
    with uow:
        waiting = uow.anchors.unanchored(3)
        assert [event.digest for event in waiting] == [bytes(range(1, 33))] * 3
        assert [event.id for event in waiting] == sorted(event.id for event in waiting)
        placements = [Placement(e.id, i, ["0x" + "11" * 32]) for i, e in enumerate(waiting)]
        batch = uow.anchors.close(_anchor_batch(b"\x01" * 32, b"\x02" * 32, 3), placements)
        assert batch.id is not None
        uow.commit()
    with uow:
        rest = uow.anchors.unanchored(10)
        assert len(rest) == 2 and not {e.id for e in rest} & {e.id for e in waiting}
        rows = {row.id: row for row in uow.events.for_items({one, two})}
        for index, event in enumerate(waiting):
            row = rows[event.id]
            assert (row.batch_id, row.leaf_index, row.proof) == (
                batch.id,
                index,
                ["0x" + "11" * 32],
            )
        (stored,) = uow.anchors.by_ids({batch.id, 999})
        assert (stored.batch_id, stored.root, stored.count) == (b"\x01" * 32, b"\x02" * 32, 3)
        assert uow.anchors.by_ids([]) == []
    # An event already in a batch cannot be placed in another; nothing of that unit is kept.
    with uow:
        again = [Placement(waiting[0].id, 0, [])]
        with pytest.raises(Conflict):
            uow.anchors.close(_anchor_batch(b"\x03" * 32, b"\x04" * 32, 1), again)
    with uow:
        assert len(uow.anchors.by_ids({batch.id, batch.id + 1})) == 1


def test_an_anchor_write_reads_with_its_transaction_once_mined(uow):
    with uow:
        uow.ledger.owe(contract="CustodyLedger", function="anchor", args=[1], idempotency_key="a:1")
        uow.commit()
    with uow:
        (receipt,) = uow.ledger.receipts(["a:1", "a:none"]).values()
        assert (receipt.state, receipt.tx_hash, receipt.block_number) == (
            ChainState.OWED,
            None,
            None,
        )
        assert uow.ledger.receipts([]) == {}


def _scan(item_id: int, minutes: int, scanner: str = "p") -> ItemScan:
    return ItemScan(
        item_id=item_id,
        scanned_at=T0 + timedelta(minutes=minutes),
        tag_kind="qr_label",
        verdict="authentic",
        codes=["x"],
        details=[{"code": "c", "message": "m"}],
        place="Berlin",
        latitude=52.52,
        longitude=13.405,
        scanner=scanner,
    )


def test_scans_recent_per_item_oldest_first_and_newest_kept(uow):
    _, (one, two) = _event_world(uow)
    with uow:
        for minutes in (5, 1, 3, 9):
            uow.scans.add(_scan(one, minutes))
        uow.scans.add(_scan(two, 2))
        uow.commit()
    with uow:
        recent = uow.scans.recent(one, T0 + timedelta(minutes=2), 2)
        assert [_aware(s.scanned_at) for s in recent] == [
            T0 + timedelta(minutes=5),
            T0 + timedelta(minutes=9),
        ]
        assert (recent[0].codes, recent[0].details, recent[0].latitude) == (
            ["x"],
            [{"code": "c", "message": "m"}],
            52.52,
        )
        assert len(uow.scans.recent(one, T0, 100)) == 4
        assert len(uow.scans.recent(two, T0, 100)) == 1


def test_item_status_is_set_and_read_back(uow):
    _, (one, _two) = _event_world(uow)
    with uow:
        (item,) = [i for i in uow.items.by_keys({("00000000000001", "S1")})]
        assert (item.status, item.status_reason, item.status_at) == ("active", None, None)
        uow.items.set_status(one, "recalled", "batch 7", T0)
        uow.commit()
    with uow:
        item = uow.items.get("00000000000001", "S1")
        assert (item.status, item.status_reason, _aware(item.status_at)) == (
            "recalled",
            "batch 7",
            T0,
        )
        assert uow.items.get("00000000000001", "S2").status == "active"


def _claim_code(item_id: int, org: int, sha: str):
    from provenance_api.models import ClaimCode

    return ClaimCode(
        item_id=item_id,
        organization_id=org,
        sha256=sha * 64,
        created_at=T0,
        expires_at=T0 + timedelta(days=30),
    )


def test_claim_codes_one_live_per_item_revoked_and_consumed_once(uow):
    org, (one, two) = _event_world(uow)
    seller, buyer = "0x" + "a1" * 20, "0x" + "b2" * 20
    with uow:
        assert uow.claims.live(one) is None
        first = uow.claims.add(_claim_code(one, org, "a"))
        uow.claims.add(_claim_code(two, org, "b"))
        transfer = uow.transfers.add(_transfer(one, 1, org, seller, 0, buyer))
        uow.commit()
    # A second live code of one item clashes; revoking the live one makes room.
    with uow, pytest.raises(Conflict):
        uow.claims.add(_claim_code(one, org, "c"))
    with uow:
        assert uow.claims.live(one).sha256 == "a" * 64
        assert uow.claims.revoke_live(one, T0) == 1
        assert uow.claims.revoke_live(one, T0) == 0
        assert uow.claims.live(one) is None
        second = uow.claims.add(_claim_code(one, org, "c"))
        assert not uow.claims.consume(first.id, T0, transfer.id)  # revoked: not live
        assert uow.claims.consume(second.id, T0 + timedelta(minutes=1), transfer.id)
        assert not uow.claims.consume(second.id, T0, transfer.id)  # spent already
        assert uow.claims.live(one) is None
        assert uow.claims.live(two).sha256 == "b" * 64
        uow.commit()
    with uow:
        # Used and revoked codes stay, and a new live code of the item may follow them.
        assert uow.claims.live(one) is None
        (spent,) = uow.claims.spent(one)  # only the used one, with its transfer (a replay's)
        assert (spent.sha256, spent.transfer_id) == ("c" * 64, transfer.id)
        assert list(uow.claims.spent(two)) == []
        uow.claims.add(_claim_code(one, org, "d"))
        uow.rollback()
        assert uow.claims.live(one) is None


def test_claim_attempts_counted_per_item_in_a_window(uow):
    _, (one, two) = _event_world(uow)
    window = 60.0
    with uow:
        for second in range(3):
            assert (
                uow.claims.reserve_attempt(one, T0 + timedelta(seconds=second), 3, window) is None
            )
        assert uow.claims.reserve_attempt(one, T0 + timedelta(seconds=10), 3, window) == (
            T0 + timedelta(seconds=window)
        )
        assert uow.claims.reserve_attempt(two, T0, 3, window) is None  # per item
        uow.commit()
    with uow:
        # Counted attempts are stored: the next unit of work is still refused ...
        assert uow.claims.reserve_attempt(one, T0 + timedelta(seconds=59), 3, window) is not None
        # ... until the window has passed; then a new window begins with this attempt.
        later = T0 + timedelta(seconds=window)
        assert uow.claims.reserve_attempt(one, later, 3, window) is None
        assert uow.claims.reserve_attempt(one, later, 3, window) is None
        assert uow.claims.reserve_attempt(one, later, 3, window) is None
        assert uow.claims.reserve_attempt(one, later, 3, window) == later + timedelta(
            seconds=window
        )
        uow.claims.clear_attempts(one)
        assert uow.claims.reserve_attempt(one, later, 3, window) is None
        uow.rollback()
        # Rolled back: the cleared count is back.
        assert uow.claims.reserve_attempt(one, T0 + timedelta(seconds=59), 3, window) is not None


def test_racing_claim_attempts_on_one_item_count_one_by_one(sql_uow):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    uow = sql_uow
    _, (one, _two) = _event_world(uow)
    racers = 12
    barrier = Barrier(racers)

    def attempt(_: int) -> bool:
        work = SqlUnitOfWork(uow.engine)
        barrier.wait()
        with work:
            refused = work.claims.reserve_attempt(one, T0, 5, 600.0)
            work.commit()
        return refused is None

    with ThreadPoolExecutor(racers) as pool:
        passed = list(pool.map(attempt, range(racers)))
    assert passed.count(True) == 5


def test_racing_claims_consume_one_code_once(sql_uow):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    uow = sql_uow
    org, (one, _two) = _event_world(uow)
    with uow:
        code = uow.claims.add(_claim_code(one, org, "a"))
        transfer = uow.transfers.add(_transfer(one, 1, org, "0x" + "a1" * 20, 0, "0x" + "b2" * 20))
        uow.commit()
    racers = 6
    barrier = Barrier(racers)

    def consume(_: int) -> bool:
        work = SqlUnitOfWork(uow.engine)
        barrier.wait()
        with work:
            won = work.claims.consume(code.id, T0, transfer.id)
            time.sleep(0.05)  # hold the row a moment, so the others really wait for it
            work.commit()
        return won

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(consume, range(racers)))
    assert outcomes.count(True) == 1


def _job(org: int, public_id: str) -> CaptureJob:
    return CaptureJob(
        public_id=public_id,
        organization_id=org,
        status="running",
        error_behaviour="rollback",
        event_count=2,
        created_at=T0,
    )


def _captured(org: int, n: int, epcs=(), **changes) -> NewCapturedEvent:
    values: dict = dict(
        organization_id=org,
        event_hash=f"ni:///sha-256;{n:064x}?ver=CBV2.0",
        received_event_id=None,
        event_type="ObjectEvent",
        event_time_ms=1_790_000_000_250 + n,
        time_zone_offset="+01:00",
        biz_step="shipping",
        event={"type": "ObjectEvent", "n": n},
        context=[{"ex": "https://example.com/"}],
        digest=n.to_bytes(32, "big"),
        salt=bytes(32),
        received_at=T0,
        epcs=list(epcs),
    )
    values.update(changes)
    return NewCapturedEvent(**values)


def test_capture_jobs_and_captured_events_by_hash_item_and_reader(uow):
    org, (one, two) = _event_world(uow)
    other = _org(uow, "Partner", "0x" + "0c" * 20)
    with uow:
        job = uow.capture_jobs.add(_job(other, "5b0c0c4e-0000-4000-8000-000000000001"))
        epc = ("urn:epc:id:sgtin:0000000.000000.S1", "00000000000001", "S1")
        stranger_epc = ("https://id.gs1.org/01/09506000134352/21/X", "09506000134352", "X")
        uow.captured.add_many(job.id, [_captured(other, 1, [epc]), _captured(other, 2)])
        uow.captured.add_many(job.id, [_captured(other, 3, [stranger_epc], biz_step=None)])
        job.status, job.captured_count, job.errors = "succeeded", 3, [{"index": 0}]
        uow.capture_jobs.add(job)
        uow.commit()
    with uow:
        stored = uow.capture_jobs.get("5b0c0c4e-0000-4000-8000-000000000001")
        assert (stored.status, stored.captured_count, stored.errors) == (
            "succeeded",
            3,
            [{"index": 0}],
        )
        assert uow.capture_jobs.get("5b0c0c4e-0000-4000-8000-000000000002") is None
        hashes = [_captured(other, n).event_hash for n in (1, 3, 4)]
        assert uow.captured.known(other, hashes) == set(hashes[:2])
        assert uow.captured.known(org, hashes) == set()
        (about_one,) = uow.captured.for_items({one, two})
        assert (about_one.event, about_one.context) == (
            {"type": "ObjectEvent", "n": 1},
            [{"ex": "https://example.com/"}],
        )
        assert (bytes(about_one.digest), about_one.event_time_ms) == (
            (1).to_bytes(32, "big"),
            1_790_000_000_251,
        )
        everything = EventFilter()
        # The capturer reads all three; the item's supplier reads the one naming its item.
        assert [e.event_hash for e in uow.captured.readable(other, everything, None, 10)] == [
            _captured(other, n).event_hash for n in (1, 2, 3)
        ]
        assert [e.event_hash for e in uow.captured.readable(org, everything, None, 10)] == [
            about_one.event_hash
        ]
        page = uow.captured.readable(other, everything, about_one.id, 1)
        assert [e.event_hash for e in page] == [_captured(other, 2).event_hash]
        by_item = EventFilter(item=("09506000134352", "X"))
        assert [e.event_hash for e in uow.captured.readable(other, by_item, None, 10)] == [
            _captured(other, 3).event_hash
        ]
        timed = EventFilter(ge_time_ms=1_790_000_000_252, lt_time_ms=1_790_000_000_253)
        assert [e.event_hash for e in uow.captured.readable(other, timed, None, 10)] == [
            _captured(other, 2).event_hash
        ]
        steps = EventFilter(
            biz_steps=frozenset({"shipping"}), event_types=frozenset({"ObjectEvent"})
        )
        assert len(uow.captured.readable(other, steps, None, 10)) == 2
        none = EventFilter(event_types=frozenset({"AggregationEvent"}))
        assert uow.captured.readable(other, none, None, 10) == []
    # An item registered after the capture is matched by its key all the same.
    late = _org(uow, "Late supplier", "0x" + "0d" * 20)
    with uow:
        uow.products.add(Product(organization_id=late, gtin="09506000134352", name="Late"))
        (late_item,) = uow.items.add_many([_item(late, "09506000134352", "X")])
        uow.commit()
    with uow:
        (about_late,) = uow.captured.for_items({late_item})
        assert about_late.event_hash == _captured(other, 3).event_hash
        readable = uow.captured.readable(late, EventFilter(), None, 10)
        assert [e.event_hash for e in readable] == [about_late.event_hash]


def test_a_captured_event_stored_twice_by_one_organization_is_a_conflict(uow):
    org = _org(uow, "Partner", "0x" + "0c" * 20)
    with uow:
        job = uow.capture_jobs.add(_job(org, "5b0c0c4e-0000-4000-8000-000000000003"))
        uow.captured.add_many(job.id, [_captured(org, 1)])
        uow.commit()
    with pytest.raises(Conflict), uow:
        uow.captured.add_many(job.id, [_captured(org, 2), _captured(org, 1)])
        uow.commit()
    with uow:
        assert uow.captured.known(org, [_captured(org, 2).event_hash]) == set()


def test_anchor_batches_take_both_kinds_in_arrival_order(uow):
    org, (one, _) = _event_world(uow)
    later = T0 + timedelta(seconds=1)
    with uow:
        job = uow.capture_jobs.add(_job(org, "5b0c0c4e-0000-4000-8000-000000000004"))
        uow.events.add_many([_event("e1", one, org), _event("e2", one, org, received_at=later)])
        uow.captured.add_many(job.id, [_captured(org, 1), _captured(org, 2, received_at=later)])
        uow.commit()
    with uow:
        waiting = uow.anchors.unanchored(10)
        assert [(e.kind, e.received_at.replace(tzinfo=UTC)) for e in waiting] == [
            ("captured", T0),
            ("custody", T0),
            ("captured", later),
            ("custody", later),
        ]
        assert [e.kind for e in uow.anchors.unanchored(3)] == ["captured", "custody", "captured"]
        placements = [Placement(e.id, i, [], e.kind) for i, e in enumerate(waiting[:3])]
        uow.anchors.close(_anchor_batch(b"\x05" * 32, b"\x06" * 32, 3), placements)
        uow.commit()
    with uow:
        (rest,) = uow.anchors.unanchored(10)
        assert (rest.kind, rest.digest) == ("custody", bytes(range(1, 33)))
        placed = {
            e.event_hash: e.leaf_index for e in uow.captured.readable(org, EventFilter(), None, 9)
        }
        assert sorted(placed.values()) == [0, 2]
    with pytest.raises(Conflict), uow:  # a captured event placed twice
        again = [Placement(waiting[0].id, 0, [], "captured")]
        uow.anchors.close(_anchor_batch(b"\x07" * 32, b"\x08" * 32, 1), again)


def _trade(item_id: int, seller: int, buyer: int, key: str, state: str = "opening") -> Trade:
    return Trade(
        item_id=item_id,
        seller_organization_id=seller,
        buyer_organization_id=buyer,
        seller_address="0x" + "1" * 40,
        buyer_address="0x" + "2" * 40,
        deposit=2**95,
        price=0,
        deposit_window=1,
        ship_window=1,
        confirm_window=1,
        agree_window=1,
        rule_window=1,
        opened_by_organization_id=seller,
        open_write_key=key,
        escrow_address="0x" + "3" * 40,
        state=state,
    )


def test_trades_live_per_item_and_by_party_or_arbiter(uow):
    seller = _org(uow, "Trade seller", "0x" + "1" * 40)
    buyer = _org(uow, "Trade buyer", "0x" + "2" * 40)
    arbiter = _org(uow, "Trade arbiter", "0x" + "4" * 40)
    with uow:
        uow.products.add(Product(organization_id=seller, gtin="00000000000009", name="T"))
        item, other = uow.items.add_many(
            [_item(seller, "00000000000009", "S1"), _item(seller, "00000000000009", "S2")]
        )
        settled = uow.trades.add(_trade(item, seller, buyer, "trade:1:open", "settled"))
        live = uow.trades.add(_trade(item, seller, buyer, "trade:2:open"))
        live.arbiter_organization_id = arbiter
        live.state = "arbitration"
        uow.trades.add(live)
        uow.commit()
    with uow:
        assert uow.items.by_id(item).serial == "S1" and uow.items.by_id(10**9) is None
        assert uow.trades.get(settled.id).deposit == 2**95  # beyond a 64-bit integer
        assert uow.trades.live_of_item(item).id == live.id
        assert uow.trades.live_of_item(other) is None
        assert [t.id for t in uow.trades.of_organization(buyer, 10)] == [live.id, settled.id]
        assert [t.id for t in uow.trades.of_organization(arbiter, 10)] == [live.id]
        assert len(uow.trades.of_organization(seller, 1)) == 1
        escrow = "0x" + "3" * 40
        assert [t.id for t in uow.trades.live(escrow, 10)] == [live.id]
        assert uow.trades.live("0x" + "5" * 40, 10) == []
    with uow:
        other_live = uow.trades.add(_trade(other, seller, buyer, "trade:3:open"))
        uow.commit()
    with uow:
        # The longest unrefreshed first: the one just added waits behind the older one.
        assert [t.id for t in uow.trades.live(escrow, 10)] == [live.id, other_live.id]
        assert [t.id for t in uow.trades.live(escrow, 1)] == [live.id]
    with uow, pytest.raises(Conflict):
        uow.trades.add(_trade(other, seller, buyer, "trade:1:open"))
        uow.commit()
    with uow:
        assert [t.id for t in uow.trades.of_organization(buyer, 10, live.id)] == [settled.id]
        assert list(uow.trades.of_organization(buyer, 10, settled.id)) == []
        # One live trade per item: a second is a Conflict, and the unit of work still reads.
        with pytest.raises(Conflict):
            uow.trades.add(_trade(item, seller, buyer, "trade:3:open"))
        assert uow.trades.live_of_item(item).id == live.id
        # Settled or failed, an item's trades are as many as it had.
        uow.trades.add(_trade(item, seller, buyer, "trade:4:open", "failed"))
        live.state = "settled"
        uow.trades.add(live)
        uow.trades.add(_trade(item, seller, buyer, "trade:5:open"))
        uow.commit()
    with uow:
        assert uow.trades.live_of_item(item).open_write_key == "trade:5:open"


def test_arbiters_by_organization_and_address_and_their_ties(uow):
    first = _org(uow, "Arbiter one", "0x" + "5" * 40)
    second = _org(uow, "Arbiter two", "0x" + "6" * 40)
    party = _org(uow, "Tied party", "0x" + "7" * 40)
    with uow:
        one = uow.arbiters.add(
            Arbiter(
                organization_id=first,
                address="0x" + "5" * 40,
                display_name="One",
                profile={"summary": "s"},
                register_write_key="arbiter:1",
            )
        )
        two = uow.arbiters.add(
            Arbiter(
                organization_id=second,
                address="0x" + "6" * 40,
                display_name="Two",
                register_write_key="arbiter:2",
                retired_at=T0,
            )
        )
        uow.arbiters.add_tie(ArbiterTie(arbiter_id=one.id, organization_id=party, reason="r"))
        uow.commit()
    with uow:
        assert uow.arbiters.get(one.id).profile == {"summary": "s"}
        assert uow.arbiters.by_organization(second).id == two.id
        assert uow.arbiters.by_address("0x" + "5" * 40).id == one.id
        assert [a.id for a in uow.arbiters.listed(10)] == [one.id]
        assert [t.organization_id for t in uow.arbiters.ties(one.id)] == [party]
    with uow, pytest.raises(Conflict):
        uow.arbiters.add_tie(ArbiterTie(arbiter_id=one.id, organization_id=party, reason="r"))
        uow.commit()


def test_writes_read_back_by_key_prefix(uow):
    with uow:
        for key in ("trade:1:open", "trade:1:deposit:buyer", "trade:10:open", "trade_1:x"):
            uow.ledger.owe(contract="TradeEscrow", function="f", args=[], idempotency_key=key)
        uow.commit()
    with uow:
        assert list(uow.ledger.keyed("trade:1:")) == ["trade:1:open", "trade:1:deposit:buyer"]
        assert uow.ledger.keyed("trade:1:open")["trade:1:open"].state is ChainState.OWED
        assert uow.ledger.keyed("nothing") == {}


def _details_trade(uow, seller: int, buyer: int) -> int:
    """A funded trade row between two organizations (on an item of the seller's)."""
    with uow:
        uow.products.add(Product(organization_id=seller, gtin="00000000000009", name="T"))
        uow.items.add_many([_item(seller, "00000000000009", "T1")])
        uow.commit()
    with uow:
        item = uow.items.get("00000000000009", "T1")
        trade = uow.trades.add(_trade(item.id, seller, buyer, "trade-open:details", "funded"))
        uow.commit()
    assert trade.id is not None
    return trade.id


def _record(trade_id: int, sequence: int, author: int) -> TradeRecord:
    return TradeRecord(
        trade_id=trade_id,
        sequence=sequence,
        author_organization_id=author,
        author_role="seller",
        kind="message",
        content_type="text/plain",
        nonce=bytes(12),
        ciphertext=bytes([sequence]) * 20,
        size=4,
        digest=bytes(32),
        details_hash=bytes([sequence]) * 32,
        created_at=T0,
    )


def test_trade_details_keys_records_log_and_erasure(uow):
    seller, buyer = _org(uow, "Seller", "0x" + "a1" * 20), _org(uow, "Buyer", "0x" + "b2" * 20)
    trade_id = _details_trade(uow, seller, buyer)
    with uow:
        assert uow.trade_details.lock_trade(trade_id).state == "funded"
        assert uow.trade_details.lock_trade(trade_id + 1) is None
        assert uow.trade_details.key(trade_id) is None
        assert uow.trade_details.last_record(trade_id) is None
        uow.trade_details.add_key(TradeKey(trade_id=trade_id, wrapped_key="v1:x", created_at=T0))
        for sequence in (2, 1):
            uow.trade_details.add_record(_record(trade_id, sequence, seller))
        for action in ("write", "read"):
            uow.trade_details.log(
                TradeAccess(
                    trade_id=trade_id, organization_id=buyer, role="buyer", action=action, at=T0
                )
            )
        uow.commit()
    # A second key, or a sequence taken: a clash.
    with uow, pytest.raises(Conflict):
        uow.trade_details.add_key(TradeKey(trade_id=trade_id, wrapped_key="v1:y", created_at=T0))
    with uow, pytest.raises(Conflict):
        uow.trade_details.add_record(_record(trade_id, 2, buyer))
    with uow:
        assert [r.sequence for r in uow.trade_details.records(trade_id)] == [1, 2]
        assert uow.trade_details.last_record(trade_id).sequence == 2
        assert uow.trade_details.key(trade_id).wrapped_key == "v1:x"
        assert [e.action for e in uow.trade_details.access_log(trade_id)] == ["write", "read"]
        assert uow.trade_details.erase(trade_id, T0, buyer) == 2
        uow.commit()
    with uow:
        key = uow.trade_details.key(trade_id)
        assert (key.wrapped_key, _aware(key.erased_at), key.erased_by_organization_id) == (
            None,
            T0,
            buyer,
        )
        records = uow.trade_details.records(trade_id)
        assert [r.ciphertext for r in records] == [None, None]
        assert [bytes(r.details_hash) for r in records] == [b"\x01" * 32, b"\x02" * 32]
        # The log is not erased.
        assert len(uow.trade_details.access_log(trade_id)) == 2
        uow.trade_details.add_hold(
            TradeLegalHold(trade_id=trade_id, until=T0, reason="r", operator_id=_ops(uow))
        )
        uow.commit()


def _ops(uow) -> int:
    ops = uow.operators.by_name("Holds") or uow.operators.add(OperatorAccount(name="Holds"))
    return ops.id
