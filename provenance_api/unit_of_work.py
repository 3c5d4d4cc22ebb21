"""The SQLModel adapter of the unit-of-work port (services.ports): one Session per unit."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from provenance_api import db
from provenance_api.models import (
    AnchorBatch,
    ApiKey,
    Arbiter,
    ArbiterTie,
    CapturedEvent,
    CapturedEventEpc,
    CaptureJob,
    ChainWrite,
    ClaimCode,
    ClaimThrottle,
    CustodyEvent,
    Device,
    Item,
    ItemScan,
    OperatorAccount,
    OperatorApiKey,
    Organization,
    OwnershipTransfer,
    Product,
    SunKey,
    Trade,
    TradeAccess,
    TradeKey,
    TradeLegalHold,
    TradeRecord,
    TradeState,
    WriteStatus,
)
from provenance_api.services.anchoring import arrival
from provenance_api.services.chain_writes import owe_write, write_by_key
from provenance_api.services.errors import Conflict, NotFound
from provenance_api.services.ports import (
    CAPTURED,
    CUSTODY,
    EVENT_STEP_FIELDS,
    NEW_CAPTURED_FIELDS,
    NEW_EVENT_FIELDS,
    NEW_ITEM_FIELDS,
    ChainState,
    EventFilter,
    EventStep,
    KeyRecord,
    NewCapturedEvent,
    NewCustodyEvent,
    NewItem,
    Owner,
    OwnerKind,
    PendingEvent,
    Placement,
    ProductSigner,
    WriteReceipt,
)
from provenance_api.sun_counters import SqlCounterStore

_CLASH = "a record with the same unique value already exists"


def _keyset(query: Any, column: Any, after: Any, limit: int) -> Any:
    """`query` ordered by `column`, from just above `after` (None: the start), `limit` rows."""
    if after is not None:
        query = query.where(column > after)
    return query.order_by(column).limit(limit)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise Conflict(_CLASH) from exc


class SqlOrganizations:
    """Organizations in the `organization` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, organization: Organization) -> Organization:
        """Insert and flush, so that the id is known."""
        self.session.add(organization)
        _flush(self.session)
        return organization

    def get(self, organization_id: int) -> Organization | None:
        """By id."""
        return self.session.get(Organization, organization_id)

    def by_name(self, name: str) -> Organization | None:
        """By exact name."""
        return self.session.exec(select(Organization).where(Organization.name == name)).first()

    def by_address(self, address: str) -> Organization | None:
        """By checksummed address (unique)."""
        query = select(Organization).where(Organization.address == address)
        return self.session.exec(query).first()

    def page(self, after: int | None, limit: int) -> Sequence[Organization]:
        """Ids above `after`, ascending."""
        return self.session.exec(_keyset(select(Organization), Organization.id, after, limit)).all()


class SqlOperators:
    """Operator accounts in the `operator_account` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, operator: OperatorAccount) -> OperatorAccount:
        """Insert and flush, so that the id is known."""
        self.session.add(operator)
        _flush(self.session)
        return operator

    def get(self, operator_id: int) -> OperatorAccount | None:
        """By id."""
        return self.session.get(OperatorAccount, operator_id)

    def by_name(self, name: str) -> OperatorAccount | None:
        """By exact name."""
        query = select(OperatorAccount).where(OperatorAccount.name == name)
        return self.session.exec(query).first()


class SqlApiKeys:
    """Keys in `api_key` (organizations) and `operator_api_key` (operators)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key: KeyRecord) -> None:
        """Insert into the owner's table; a prefix either table holds is a Conflict."""
        # Each table's UNIQUE covers itself only; prefixes are 48 random bits, so this check
        # is for the contract, not for a race two fresh prefixes could ever lose.
        if self.by_prefix(key.prefix) is not None:
            raise Conflict(_CLASH)
        row: ApiKey | OperatorApiKey
        if key.owner.kind is OwnerKind.OPERATOR:
            row = OperatorApiKey(operator_id=key.owner.id, prefix=key.prefix, sha256=key.sha256)
        else:
            row = ApiKey(organization_id=key.owner.id, prefix=key.prefix, sha256=key.sha256)
        row.created_at = key.created_at
        row.revoked_at = key.revoked_at
        self.session.add(row)
        _flush(self.session)

    def by_prefix(self, prefix: str) -> KeyRecord | None:
        """From either table."""
        org_key = self.session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
        if org_key is not None:
            return _record(org_key)
        query = select(OperatorApiKey).where(OperatorApiKey.prefix == prefix)
        operator_key = self.session.exec(query).first()
        return _record(operator_key) if operator_key is not None else None

    def page(self, owner: Owner, after: str | None, limit: int) -> Sequence[KeyRecord]:
        """The owner's keys with prefixes above `after`, ascending."""
        table, column = _table(owner)
        query = _keyset(select(table).where(column == owner.id), table.prefix, after, limit)
        return [_record(row) for row in self.session.exec(query).all()]

    def count_active(self, owner: Owner) -> int:
        """Keys of `owner` without a revocation time."""
        table, column = _table(owner)
        query = (
            select(func.count())
            .select_from(table)
            .where(column == owner.id, table.revoked_at.is_(None))  # type: ignore[union-attr]
        )
        return int(self.session.exec(query).one())

    def revoke(self, prefix: str, when: datetime) -> None:
        """Set `revoked_at` once; a key already revoked keeps its first time."""
        for table in (ApiKey, OperatorApiKey):
            statement = (
                sa.update(table)
                .where(table.prefix == prefix, table.revoked_at.is_(None))  # type: ignore[union-attr]
                .values(revoked_at=when)
            )
            self.session.execute(statement)


def _table(owner: Owner) -> tuple[Any, Any]:
    if owner.kind is OwnerKind.OPERATOR:
        return OperatorApiKey, OperatorApiKey.operator_id
    return ApiKey, ApiKey.organization_id


def _record(row: ApiKey | OperatorApiKey) -> KeyRecord:
    if isinstance(row, OperatorApiKey):
        owner = Owner(OwnerKind.OPERATOR, row.operator_id)
    else:
        owner = Owner(OwnerKind.ORGANIZATION, row.organization_id)
    return KeyRecord(
        owner=owner,
        prefix=row.prefix,
        sha256=row.sha256,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class SqlProducts:
    """Products in the `product` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, product: Product) -> Product:
        """Insert or update, and flush (a GTIN stored twice is a Conflict)."""
        self.session.add(product)
        _flush(self.session)
        return product

    def get(self, gtin: str) -> Product | None:
        """By GTIN-14."""
        return self.session.exec(select(Product).where(Product.gtin == gtin)).first()

    def page(self, organization_id: int, after: str | None, limit: int) -> Sequence[Product]:
        """The organization's products with GTINs above `after`, ascending."""
        owned = select(Product).where(Product.organization_id == organization_id)
        return self.session.exec(_keyset(owned, Product.gtin, after, limit)).all()

    def owned(self, organization_id: int, gtins: Collection[str]) -> set[str]:
        """One query for all of `gtins`."""
        if not gtins:
            return set()
        query = select(Product.gtin).where(
            Product.organization_id == organization_id,
            Product.gtin.in_(list(gtins)),  # type: ignore[attr-defined]
        )
        return set(self.session.exec(query).all())

    def signers(self, after: str | None, limit: int) -> Sequence[ProductSigner]:
        """One join of product and organization, by GTIN."""
        query = select(Product.gtin, Organization.name, Organization.address).join(
            Organization,
            Organization.id == Product.organization_id,  # type: ignore[arg-type]
        )
        rows = self.session.exec(_keyset(query, Product.gtin, after, limit)).all()
        return [ProductSigner(*row) for row in rows]


class SqlItems:
    """Items in the `item` table, written in bulk."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, items: Sequence[NewItem]) -> list[int]:
        """One multi-row INSERT ... RETURNING id, ids in the order given (no ORM objects)."""
        if not items:
            return []
        rows = [{name: getattr(item, name) for name in NEW_ITEM_FIELDS} for item in items]
        insert = sa.insert(Item.__table__).returning(  # type: ignore[attr-defined]
            Item.__table__.c.id,  # type: ignore[attr-defined]
            sort_by_parameter_order=True,
        )
        try:
            return list(self.session.execute(insert, rows).scalars())
        except sa.exc.IntegrityError as exc:
            raise Conflict(_CLASH) from exc

    def by_keys(self, keys: Collection[tuple[str, str]]) -> Sequence[Item]:
        """One query: a join with the keys as two arrays (PostgreSQL), or a row-value IN."""
        if not keys:
            return []
        if self.session.get_bind().dialect.name == "postgresql":
            # PostgreSQL parses a 10,000-pair row-value IN recursively and runs out of stack;
            # two array parameters unnested side by side make the same set in two values.
            gtins, serials = (list(column) for column in zip(*keys, strict=True))
            wanted = (
                sa.func.unnest(
                    sa.bindparam("gtins", gtins, type_=postgresql.ARRAY(sa.String)),
                    sa.bindparam("serials", serials, type_=postgresql.ARRAY(sa.String)),
                )
                .table_valued("gtin", "serial")
                .render_derived()
            )
            query = select(Item).join(
                wanted, sa.and_(Item.gtin == wanted.c.gtin, Item.serial == wanted.c.serial)
            )
        else:
            # At most 20,000 parameters: within SQLite's limit of 32,766.
            query = select(Item).where(sa.tuple_(Item.gtin, Item.serial).in_(list(keys)))
        return self.session.exec(query).all()

    def by_uids(self, uids: Collection[str]) -> Sequence[Item]:
        """One IN query."""
        if not uids:
            return []
        query = select(Item).where(Item.uid.in_(list(uids)))  # type: ignore[union-attr]
        return self.session.exec(query).all()

    def get(self, gtin: str, serial: str) -> Item | None:
        """By (GTIN, serial)."""
        query = select(Item).where(Item.gtin == gtin, Item.serial == serial)
        return self.session.exec(query).first()

    def by_id(self, item_id: int) -> Item | None:
        """By row id."""
        return self.session.get(Item, item_id)

    def page(self, gtin: str, after: str | None, limit: int) -> Sequence[Item]:
        """Serials above `after`, ascending (in the database's collation)."""
        query = _keyset(select(Item).where(Item.gtin == gtin), Item.serial, after, limit)
        return self.session.exec(query).all()

    def set_status(self, item_id: int, status: str, reason: str | None, when: datetime) -> None:
        """One UPDATE."""
        statement = (
            sa.update(Item)
            .where(Item.id == item_id)  # type: ignore[arg-type]
            .values(status=status, status_reason=reason, status_at=when)
        )
        self.session.execute(statement)


class SqlScans:
    """Public verifications in the `item_scan` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, scan: ItemScan) -> None:
        """Insert and flush."""
        self.session.add(scan)
        _flush(self.session)

    def recent(self, item_id: int, since: datetime, limit: int) -> Sequence[ItemScan]:
        """The newest `limit` at or after `since` (one indexed query), oldest first."""
        query = (
            select(ItemScan)
            .where(ItemScan.item_id == item_id, ItemScan.scanned_at >= since)
            .order_by(ItemScan.scanned_at.desc(), ItemScan.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit)
        )
        return list(reversed(self.session.exec(query).all()))


class SqlSunKeys:
    """Sealed SUN key epochs in the `sun_key` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key: SunKey) -> SunKey:
        """Insert and flush (an epoch number stored twice is a Conflict)."""
        self.session.add(key)
        _flush(self.session)
        return key

    def epochs(self, organization_id: int) -> Sequence[SunKey]:
        """By epoch number, ascending."""
        query = (
            select(SunKey).where(SunKey.organization_id == organization_id).order_by(SunKey.epoch)  # type: ignore[arg-type]
        )
        return self.session.exec(query).all()


class SqlDevices:
    """Reader devices in the `device` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, device: Device) -> Device:
        """Insert or update, and flush (an address stored twice is a Conflict)."""
        self.session.add(device)
        _flush(self.session)
        return device

    def get(self, address: str) -> Device | None:
        """By checksummed address."""
        return self.session.exec(select(Device).where(Device.address == address)).first()

    def page(self, organization_id: int, after: str | None, limit: int) -> Sequence[Device]:
        """The organization's devices with addresses above `after`, ascending."""
        owned = select(Device).where(Device.organization_id == organization_id)
        return self.session.exec(_keyset(owned, Device.address, after, limit)).all()

    def by_addresses(self, addresses: Collection[str]) -> Sequence[Device]:
        """One IN query."""
        if not addresses:
            return []
        query = select(Device).where(Device.address.in_(list(addresses)))  # type: ignore[attr-defined]
        return self.session.exec(query).all()

    def seen(self, addresses: Collection[str], when: datetime) -> None:
        """One UPDATE."""
        if not addresses:
            return
        statement = (
            sa.update(Device)
            .where(Device.address.in_(list(addresses)))  # type: ignore[attr-defined]
            .values(last_seen_at=when)
        )
        self.session.execute(statement)


# Above this many supplied items or recorded events, an organization's readable items are too
# many to gather for every page of its events (SqlCustodyEvents.readable).
MANY_ROWS = 20_000


def _item_is_readable(item_id: Any, organization_id: int) -> Any:
    """Whether the item `item_id` names is readable by the organization, as three probes."""
    item = Item.__table__.c  # type: ignore[attr-defined]
    event = CustodyEvent.__table__.alias("recorded").c  # type: ignore[attr-defined]
    transfer = OwnershipTransfer.__table__.c  # type: ignore[attr-defined]
    return sa.or_(
        item_id.in_(sa.select(item.id).where(item.organization_id == organization_id)),
        sa.exists().where(event.item_id == item_id, event.organization_id == organization_id),
        sa.exists().where(
            transfer.item_id == item_id,
            sa.or_(
                transfer.from_organization_id == organization_id,
                transfer.to_organization_id == organization_id,
            ),
        ),
    )


def _readable_items(organization_id: int) -> Any:
    """The ids of the items the organization may read, as a UNION of three indexed lookups."""
    event = CustodyEvent.__table__.c  # type: ignore[attr-defined]
    transfer = OwnershipTransfer.__table__.c  # type: ignore[attr-defined]
    return sa.union(
        sa.select(Item.__table__.c.id).where(Item.__table__.c.organization_id == organization_id),  # type: ignore[attr-defined]
        sa.select(event.item_id).where(event.organization_id == organization_id),
        sa.select(transfer.item_id).where(
            sa.or_(
                transfer.from_organization_id == organization_id,
                transfer.to_organization_id == organization_id,
            )
        ),
    )


class SqlCustodyEvents:
    """Accepted custody events in the `custody_event` table, written in bulk."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, events: Sequence[NewCustodyEvent]) -> None:
        """One executemany INSERT (no ORM objects, no per-row round trip)."""
        if not events:
            return
        rows = [{name: getattr(event, name) for name in NEW_EVENT_FIELDS} for event in events]
        try:
            self.session.execute(sa.insert(CustodyEvent.__table__), rows)  # type: ignore[attr-defined]
        except sa.exc.IntegrityError as exc:
            raise Conflict(_CLASH) from exc

    def by_event_ids(self, event_ids: Collection[str]) -> Sequence[CustodyEvent]:
        """One IN query."""
        if not event_ids:
            return []
        query = select(CustodyEvent).where(CustodyEvent.event_id.in_(list(event_ids)))  # type: ignore[attr-defined]
        return self.session.exec(query).all()

    def for_items(self, item_ids: Collection[int]) -> Sequence[CustodyEvent]:
        """One IN query, by id (arrival order)."""
        if not item_ids:
            return []
        query = (
            select(CustodyEvent)
            .where(CustodyEvent.item_id.in_(list(item_ids)))  # type: ignore[attr-defined]
            .order_by(CustodyEvent.id)  # type: ignore[arg-type]
        )
        return self.session.exec(query).all()

    def steps_for_items(self, item_ids: Collection[int]) -> Sequence[EventStep]:
        """One IN query of eight columns: a long history costs no ORM rows."""
        if not item_ids:
            return []
        columns = [getattr(CustodyEvent, name) for name in EVENT_STEP_FIELDS]
        query = (
            sa.select(*columns)
            .where(CustodyEvent.item_id.in_(list(item_ids)))  # type: ignore[attr-defined]
            .order_by(CustodyEvent.id)  # type: ignore[arg-type]
        )
        return [EventStep(*row) for row in self.session.execute(query)]

    def readable(
        self, organization_id: int, where: EventFilter, after: int | None, limit: int
    ) -> Sequence[CustodyEvent]:
        """The page's events of the items the organization may read, by arrival.

        Two shapes, chosen by a capped count of the organization's own rows: for an
        organization with few items and events, the readable items as a UNION of three indexed
        lookups, then their events; for one with many (a supplier of 100,000 items), the
        events in arrival order, each kept if its item is readable (index probes), which stops
        at the page's end instead of first gathering every item the organization ever touched.
        """
        if self._touches_many(organization_id):
            readable = _item_is_readable(CustodyEvent.__table__.c.item_id, organization_id)  # type: ignore[attr-defined]
            query = select(CustodyEvent).where(readable)
        else:
            items = _readable_items(organization_id)
            query = select(CustodyEvent).where(CustodyEvent.item_id.in_(items))  # type: ignore[attr-defined]
        if after is not None:
            query = query.where(CustodyEvent.id > after)  # type: ignore[operator]
        if where.ge_time is not None:
            query = query.where(CustodyEvent.event_time >= where.ge_time)
        if where.lt_time is not None:
            query = query.where(CustodyEvent.event_time < where.lt_time)
        if where.biz_steps is not None:
            query = query.where(CustodyEvent.biz_step.in_(sorted(where.biz_steps)))  # type: ignore[attr-defined]
        if where.item is not None:
            gtin, serial = where.item
            item = sa.select(Item.id).where(Item.gtin == gtin, Item.serial == serial)
            query = query.where(CustodyEvent.item_id == item.scalar_subquery())
        query = query.order_by(CustodyEvent.id).limit(limit)  # type: ignore[arg-type]
        return self.session.exec(query).all()

    def _touches_many(self, organization_id: int) -> bool:
        """Whether the organization supplied or recorded more than MANY_ROWS items or events."""
        for table in (Item.__table__, CustodyEvent.__table__):  # type: ignore[attr-defined]
            column = table.c.organization_id
            capped = sa.select(sa.literal(1)).select_from(table).where(column == organization_id)
            found = sa.select(sa.func.count()).select_from(capped.limit(MANY_ROWS + 1).subquery())
            if self.session.execute(found).scalar_one() > MANY_ROWS:
                return True
        return False


class SqlAnchorBatches:
    """Closed batches in `anchor_batch`; their events' places in `custody_event`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def unanchored(self, limit: int) -> Sequence[PendingEvent]:
        """Two queries, one per kind, merged in arrival order; on PostgreSQL the rows stay
        locked, and rows locked by another are skipped (FOR UPDATE cannot take a UNION)."""
        waiting: list[PendingEvent] = []
        for kind, model in ((CUSTODY, CustodyEvent), (CAPTURED, CapturedEvent)):
            query = (
                sa.select(model.id, model.digest, model.salt, model.received_at)  # type: ignore[call-overload]
                .where(model.batch_id.is_(None))  # type: ignore[attr-defined]
                .order_by(model.id)
                .limit(limit)
                .with_for_update(
                    skip_locked=True
                )  # SQLite renders nothing: its write lock serializes
            )
            waiting += [
                PendingEvent(row[0], bytes(row[1]), bytes(row[2]), row[3], kind)
                for row in self.session.execute(query)
            ]
        return sorted(waiting, key=arrival)[:limit]

    def close(self, batch: AnchorBatch, placements: Sequence[Placement]) -> AnchorBatch:
        """Insert the batch, then per kind one executemany UPDATE guarded by `batch_id IS NULL`."""
        self.session.add(batch)
        _flush(self.session)
        for kind, model in ((CUSTODY, CustodyEvent), (CAPTURED, CapturedEvent)):
            placed = [p for p in placements if p.kind == kind]
            if not placed:
                continue
            table = model.__table__  # type: ignore[attr-defined]
            statement = (
                table.update()
                .where(table.c.id == sa.bindparam("event_pk"), table.c.batch_id.is_(None))
                .values(
                    batch_id=batch.id,
                    leaf_index=sa.bindparam("leaf"),
                    proof=sa.bindparam("path", type_=sa.JSON),
                )
            )
            rows = [{"event_pk": p.event_pk, "leaf": p.leaf_index, "path": p.proof} for p in placed]
            result = self.session.connection().execute(statement, rows)
            if result.rowcount != len(placed):
                # An event already batched elsewhere: the held rows should make this impossible.
                raise Conflict("an event of this batch is already in another batch")
        return batch

    def by_ids(self, ids: Collection[int]) -> Sequence[AnchorBatch]:
        """One IN query."""
        if not ids:
            return []
        query = select(AnchorBatch).where(AnchorBatch.id.in_(list(ids)))  # type: ignore[union-attr]
        return self.session.exec(query).all()


class SqlCaptureJobs:
    """EPCIS capture jobs in the `capture_job` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: CaptureJob) -> CaptureJob:
        self.session.add(job)
        _flush(self.session)
        return job

    def get(self, public_id: str) -> CaptureJob | None:
        query = select(CaptureJob).where(CaptureJob.public_id == public_id)
        return self.session.exec(query).first()


def _naming(item_ids: Any) -> Any:
    """The ids of the captured events naming one of these items (a subquery of item ids)."""
    epc = CapturedEventEpc.__table__.c  # type: ignore[attr-defined]
    item = Item.__table__  # type: ignore[attr-defined]
    return (
        sa.select(epc.captured_event_id)
        .join(item, sa.and_(item.c.gtin == epc.gtin, item.c.serial == epc.serial))
        .where(item.c.id.in_(item_ids))
    )


class SqlCapturedEvents:
    """Captured EPCIS events in `captured_event`, their SGTINs in `captured_event_epc`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, job_id: int, events: Sequence[NewCapturedEvent]) -> None:
        """One executemany INSERT ... RETURNING for the events, one for their SGTINs."""
        if not events:
            return
        rows = [
            {"job_id": job_id} | {name: getattr(event, name) for name in NEW_CAPTURED_FIELDS}
            for event in events
        ]
        table = CapturedEvent.__table__  # type: ignore[attr-defined]
        try:
            ids = (
                self.session.execute(
                    sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
        except sa.exc.IntegrityError as exc:
            raise Conflict(_CLASH) from exc
        epcs = [
            {"captured_event_id": pk, "epc": epc, "gtin": gtin, "serial": serial}
            for pk, event in zip(ids, events, strict=True)
            for epc, gtin, serial in event.epcs
        ]
        if epcs:
            self.session.execute(sa.insert(CapturedEventEpc.__table__), epcs)  # type: ignore[attr-defined]

    def known(self, organization_id: int, hashes: Collection[str]) -> set[str]:
        """One IN query."""
        if not hashes:
            return set()
        query = sa.select(CapturedEvent.event_hash).where(
            CapturedEvent.organization_id == organization_id,
            CapturedEvent.event_hash.in_(list(hashes)),  # type: ignore[attr-defined]
        )
        return set(self.session.execute(query).scalars())

    def for_items(self, item_ids: Collection[int]) -> Sequence[CapturedEvent]:
        """One query: the items' keys, through the SGTIN index."""
        if not item_ids:
            return []
        named = _naming(sa.select(Item.id).where(Item.id.in_(list(item_ids))))  # type: ignore[union-attr]
        query = (
            select(CapturedEvent)
            .where(CapturedEvent.id.in_(named))  # type: ignore[union-attr]
            .order_by(CapturedEvent.id)  # type: ignore[arg-type]
        )
        return self.session.exec(query).all()

    def readable(
        self, organization_id: int, where: EventFilter, after: int | None, limit: int
    ) -> Sequence[CapturedEvent]:
        """One query: its own captures, or those naming an item it may read."""
        epc = CapturedEventEpc.__table__.c  # type: ignore[attr-defined]
        about = _naming(_readable_items(organization_id))
        query = select(CapturedEvent).where(
            sa.or_(
                CapturedEvent.organization_id == organization_id,
                CapturedEvent.id.in_(about),  # type: ignore[union-attr]
            )
        )
        if after is not None:
            query = query.where(CapturedEvent.id > after)  # type: ignore[operator]
        if where.event_types is not None:
            query = query.where(CapturedEvent.event_type.in_(sorted(where.event_types)))  # type: ignore[attr-defined]
        if where.ge_time_ms is not None:
            query = query.where(CapturedEvent.event_time_ms >= where.ge_time_ms)
        if where.lt_time_ms is not None:
            query = query.where(CapturedEvent.event_time_ms < where.lt_time_ms)
        if where.biz_steps is not None:
            query = query.where(CapturedEvent.biz_step.in_(sorted(where.biz_steps)))  # type: ignore[union-attr]
        if where.item is not None:
            gtin, serial = where.item
            naming = sa.select(epc.captured_event_id).where(epc.gtin == gtin, epc.serial == serial)
            query = query.where(CapturedEvent.id.in_(naming))  # type: ignore[union-attr]
        query = query.order_by(CapturedEvent.id).limit(limit)  # type: ignore[arg-type]
        return self.session.exec(query).all()


class SqlTransfers:
    """Ownership transfers in the `ownership_transfer` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, transfer: OwnershipTransfer) -> OwnershipTransfer:
        """Insert and flush: a clash on (item, sequence) or (signer, nonce) is a Conflict.

        On PostgreSQL a concurrent insert of the same key waits for the other transaction and
        then clashes, so of two racing transfers exactly one commits.
        """
        self.session.add(transfer)
        _flush(self.session)
        return transfer

    def of_item(self, item_id: int) -> Sequence[OwnershipTransfer]:
        """By sequence, ascending."""
        query = (
            select(OwnershipTransfer)
            .where(OwnershipTransfer.item_id == item_id)
            .order_by(OwnershipTransfer.sequence)  # type: ignore[arg-type]
        )
        return self.session.exec(query).all()

    def next_nonce(self, address: str) -> int:
        """One query: the highest nonce `address` signed, plus one."""
        query = select(func.max(OwnershipTransfer.nonce)).where(
            OwnershipTransfer.from_address == address
        )
        highest = self.session.exec(query).one()
        return 0 if highest is None else int(highest) + 1


class SqlClaims:
    """Claim codes in `claim_code`, attempts per item in `claim_throttle`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, code: ClaimCode) -> ClaimCode:
        """Insert and flush: a second live code of one item clashes with the partial index."""
        self.session.add(code)
        _flush(self.session)
        return code

    def revoke_live(self, item_id: int, when: datetime) -> int:
        """One UPDATE of the live code, if any."""
        statement = (
            sa.update(ClaimCode)
            .where(ClaimCode.item_id == item_id, *_live())  # type: ignore[arg-type]
            .values(revoked_at=when)
        )
        return int(self.session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def live(self, item_id: int) -> ClaimCode | None:
        """One indexed query."""
        query = select(ClaimCode).where(ClaimCode.item_id == item_id, *_live())
        return self.session.exec(query).first()

    def of_item(self, item_id: int, organization_id: int) -> Sequence[ClaimCode]:
        """One indexed query, by id descending (the newest first)."""
        query = (
            select(ClaimCode)
            .where(ClaimCode.item_id == item_id, ClaimCode.organization_id == organization_id)
            .order_by(ClaimCode.id.desc())  # type: ignore[union-attr]
        )
        return self.session.exec(query).all()

    def spent(self, item_id: int) -> Sequence[ClaimCode]:
        """One indexed query (by item: a handful of codes at most)."""
        query = select(ClaimCode).where(
            ClaimCode.item_id == item_id,
            ClaimCode.used_at.is_not(None),  # type: ignore[union-attr]
        )
        return self.session.exec(query).all()

    def consume(self, code_id: int, when: datetime, transfer_id: int) -> bool:
        """`UPDATE ... WHERE used_at IS NULL AND revoked_at IS NULL`: one row, or none.

        On PostgreSQL a concurrent consumer waits for the row's lock, then finds it used.
        """
        statement = (
            sa.update(ClaimCode)
            .where(ClaimCode.id == code_id, *_live())  # type: ignore[arg-type]
            .values(used_at=when, transfer_id=transfer_id)
        )
        return self.session.execute(statement).rowcount == 1  # type: ignore[attr-defined]

    def reserve_attempt(
        self, item_id: int, now: datetime, limit: int, window_seconds: float
    ) -> datetime | None:
        """An INSERT of the item's row if missing, then one conditional UPDATE that counts.

        The UPDATE holds the row's lock until the unit of work ends (PostgreSQL; SQLite's
        write lock serializes anyway), so concurrent attempts on one item are counted one by
        one and never more than `limit` pass in a window.
        """
        table = ClaimThrottle.__table__  # type: ignore[attr-defined]
        at = sa.bindparam("now", now, type_=table.c.window_start.type)
        make = postgresql.insert if _dialect(self.session) == "postgresql" else sqlite.insert
        stale = table.c.window_start <= now - timedelta(seconds=window_seconds)
        count = (
            table.update()
            .where(table.c.item_id == item_id, sa.or_(stale, table.c.attempts < limit))
            .values(
                attempts=sa.case((stale, 1), else_=table.c.attempts + 1),
                window_start=sa.case((stale, at), else_=table.c.window_start),
            )
        )
        # A claim that succeeds concurrently deletes the row (clear_attempts) between the
        # INSERT, which found it, and the UPDATE (PostgreSQL, read committed): insert again.
        for _ in range(3):
            self.session.execute(
                make(table)
                .values(item_id=item_id, window_start=now, attempts=0)
                .on_conflict_do_nothing(index_elements=["item_id"])
            )
            if self.session.execute(count).rowcount == 1:  # type: ignore[attr-defined]
                return None
            start = self.session.execute(
                sa.select(table.c.window_start).where(table.c.item_id == item_id)
            ).scalar_one_or_none()
            if start is not None:
                start = start if start.tzinfo else start.replace(tzinfo=UTC)
                return start + timedelta(seconds=window_seconds)
        raise Conflict("the item's attempts were cleared concurrently; try again")

    def clear_attempts(self, item_id: int) -> None:
        """One DELETE."""
        table = ClaimThrottle.__table__  # type: ignore[attr-defined]
        self.session.execute(table.delete().where(table.c.item_id == item_id))


def _live() -> tuple[Any, Any]:
    return ClaimCode.used_at.is_(None), ClaimCode.revoked_at.is_(None)  # type: ignore[union-attr]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


_STATES = {
    WriteStatus.CONFIRMED.value: ChainState.CONFIRMED,
    WriteStatus.FAILED.value: ChainState.FAILED,
}


class SqlLedger:
    """The ledger port over the chain writer's outbox, in the unit of work's own session."""

    def __init__(self, session: Session, sender: Callable[[], str] | None) -> None:
        self.session = session
        self.sender = sender

    def owe(
        self,
        *,
        contract: str,
        function: str,
        args: Sequence[Any],
        idempotency_key: str,
        sender: str | None = None,
        value: int = 0,
        after: str | None = None,
    ) -> None:
        """An outbox row (signed by the operator key unless `sender` says whose), committed
        with the unit of work."""
        if sender is None:
            if self.sender is None:
                raise RuntimeError("this unit of work was made without a chain sender")
            sender = self.sender()
        prerequisite = None
        if after is not None:
            prerequisite = write_by_key(self.session, after)
            if prerequisite is None:
                raise NotFound(f"no write owed under {after!r} to wait for", {"after": "unknown"})
        owe_write(
            self.session,
            sender=sender,
            contract=contract,
            function=function,
            args=args,
            idempotency_key=idempotency_key,
            value=value,
            after=prerequisite,
        )

    def states(self, idempotency_keys: Sequence[str]) -> dict[str, ChainState]:
        """From each write's status; a failed write that an operator retried reads as its retry."""
        if not idempotency_keys:
            return {}
        query = select(ChainWrite).where(ChainWrite.idempotency_key.in_(idempotency_keys))  # type: ignore[attr-defined]
        found: dict[str, ChainState] = {}
        for row in self.session.exec(query).all():
            key = row.idempotency_key
            while row.status == WriteStatus.FAILED.value:
                retry = self.session.exec(
                    select(ChainWrite).where(ChainWrite.retry_of == row.id)
                ).first()
                if retry is None:
                    break
                row = retry
            found[key] = _STATES.get(row.status, ChainState.OWED)
        return found

    def receipts(self, idempotency_keys: Sequence[str]) -> dict[str, WriteReceipt]:
        """One query; a failed write that was retried reads as its retry."""
        if not idempotency_keys:
            return {}
        query = select(ChainWrite).where(ChainWrite.idempotency_key.in_(idempotency_keys))  # type: ignore[attr-defined]
        found: dict[str, WriteReceipt] = {}
        for row in self.session.exec(query).all():
            key = row.idempotency_key
            while row.status == WriteStatus.FAILED.value:
                retry = self.session.exec(
                    select(ChainWrite).where(ChainWrite.retry_of == row.id)
                ).first()
                if retry is None:
                    break
                row = retry
            state = _STATES.get(row.status, ChainState.OWED)
            found[key] = WriteReceipt(state, row.mined_tx_hash, row.block_number, row.error)
        return found

    def keyed(self, prefix: str) -> dict[str, WriteReceipt]:
        """The receipts of the writes whose keys start with `prefix`, oldest first."""
        column = ChainWrite.idempotency_key
        query = select(column).where(column.like(_like_prefix(prefix), escape="\\"))  # type: ignore[attr-defined]
        keys = list(self.session.exec(query.order_by(ChainWrite.id)).all())  # type: ignore[arg-type]
        found = self.receipts(keys)
        return {key: found[key] for key in keys if key in found}


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SqlTrades:
    """Trades in the `trade` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, trade: Trade) -> Trade:
        """Insert or update, and flush, so that the id is known; a second live trade of an
        item is a Conflict that leaves the transaction usable."""
        try:
            # A savepoint: when a concurrent open of the same item commits first, this insert
            # fails alone and the caller can still read the trade that won.
            with self.session.begin_nested():
                self.session.add(trade)
                self.session.flush()
        except sa.exc.IntegrityError as exc:
            raise Conflict(_CLASH) from exc
        return trade

    def get(self, trade_id: int) -> Trade | None:
        """By id."""
        return self.session.get(Trade, trade_id)

    def live_of_item(self, item_id: int) -> Trade | None:
        """The newest trade of the item not settled or failed."""
        done = (TradeState.SETTLED.value, TradeState.FAILED.value)
        query = (
            select(Trade)
            .where(Trade.item_id == item_id)
            .where(Trade.state.not_in(done))  # type: ignore[attr-defined]
            .order_by(Trade.id.desc())  # type: ignore[union-attr]
        )
        return self.session.exec(query).first()

    def of_organization(
        self, organization_id: int, limit: int, before: int | None = None
    ) -> Sequence[Trade]:
        """As a party or the accepted arbiter, newest first (ids below `before`, if given)."""
        query = select(Trade).where(
            sa.or_(
                Trade.seller_organization_id == organization_id,
                Trade.buyer_organization_id == organization_id,
                Trade.arbiter_organization_id == organization_id,
            )
        )
        if before is not None:
            query = query.where(Trade.id < before)  # type: ignore[operator]
        query = query.order_by(Trade.id.desc()).limit(limit)  # type: ignore[union-attr]
        return self.session.exec(query).all()

    def live(self, escrow_address: str, limit: int) -> Sequence[Trade]:
        """Not settled or failed, in that escrow (any address case), oldest `updated_at` first."""
        done = (TradeState.SETTLED.value, TradeState.FAILED.value)
        query = (
            select(Trade)
            .where(sa.func.lower(Trade.escrow_address) == escrow_address.lower())
            .where(Trade.state.not_in(done))  # type: ignore[attr-defined]
            .order_by(Trade.updated_at, Trade.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        return self.session.exec(query).all()


class SqlArbiters:
    """Arbiters in the `arbiter` table, their ties in `arbiter_tie`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, arbiter: Arbiter) -> Arbiter:
        """Insert or update, and flush."""
        self.session.add(arbiter)
        _flush(self.session)
        return arbiter

    def get(self, arbiter_id: int) -> Arbiter | None:
        """By id."""
        return self.session.get(Arbiter, arbiter_id)

    def by_organization(self, organization_id: int) -> Arbiter | None:
        """By its organization (unique)."""
        query = select(Arbiter).where(Arbiter.organization_id == organization_id)
        return self.session.exec(query).first()

    def by_address(self, address: str) -> Arbiter | None:
        """By address (unique)."""
        return self.session.exec(select(Arbiter).where(Arbiter.address == address)).first()

    def listed(self, limit: int) -> Sequence[Arbiter]:
        """Not retired, by id."""
        query = select(Arbiter).where(Arbiter.retired_at.is_(None))  # type: ignore[union-attr]
        return self.session.exec(query.order_by(Arbiter.id).limit(limit)).all()  # type: ignore[arg-type]

    def add_tie(self, tie: ArbiterTie) -> ArbiterTie:
        """Insert and flush; a pair stored twice is a Conflict."""
        self.session.add(tie)
        _flush(self.session)
        return tie

    def ties(self, arbiter_id: int) -> Sequence[ArbiterTie]:
        """Oldest first."""
        query = select(ArbiterTie).where(ArbiterTie.arbiter_id == arbiter_id)
        return self.session.exec(query.order_by(ArbiterTie.id)).all()  # type: ignore[arg-type]


class SqlTradeDetails:
    """A trade's sealed data in `trade_key`, `trade_record`, `trade_access`, `trade_legal_hold`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_trade(self, trade_id: int) -> Trade | None:
        """SELECT ... FOR UPDATE (PostgreSQL; a writing SQLite unit holds the lock already)."""
        query = select(Trade).where(Trade.id == trade_id).with_for_update()
        return self.session.exec(query).first()

    def key(self, trade_id: int) -> TradeKey | None:
        """By trade id."""
        return self.session.get(TradeKey, trade_id)

    def add_key(self, key: TradeKey) -> TradeKey:
        """Insert and flush (a second key of one trade is a Conflict)."""
        self.session.add(key)
        _flush(self.session)
        return key

    def records(self, trade_id: int) -> Sequence[TradeRecord]:
        """By sequence."""
        query = select(TradeRecord).where(TradeRecord.trade_id == trade_id)
        return self.session.exec(query.order_by(TradeRecord.sequence)).all()  # type: ignore[arg-type]

    def last_record(self, trade_id: int) -> TradeRecord | None:
        """The highest sequence."""
        query = select(TradeRecord).where(TradeRecord.trade_id == trade_id)
        return self.session.exec(query.order_by(TradeRecord.sequence.desc()).limit(1)).first()  # type: ignore[attr-defined]

    def add_record(self, record: TradeRecord) -> TradeRecord:
        """Insert and flush (a sequence taken by a concurrent record is a Conflict)."""
        self.session.add(record)
        _flush(self.session)
        return record

    def erase(self, trade_id: int, when: datetime, organization_id: int) -> int:
        """Two UPDATEs: the key row (made if missing) and every record's ciphertext."""
        key = self.session.get(TradeKey, trade_id)
        if key is None:
            key = TradeKey(trade_id=trade_id)
        key.wrapped_key = None
        key.erased_at = when
        key.erased_by_organization_id = organization_id
        self.session.add(key)
        erased = self.session.execute(
            sa.update(TradeRecord)
            .where(TradeRecord.trade_id == trade_id)  # type: ignore[arg-type]
            .values(ciphertext=None)
        )
        _flush(self.session)
        return int(erased.rowcount)  # type: ignore[attr-defined]

    def log(self, entry: TradeAccess) -> None:
        """Insert and flush."""
        self.session.add(entry)
        _flush(self.session)

    def access_log(self, trade_id: int) -> Sequence[TradeAccess]:
        """By id."""
        query = select(TradeAccess).where(TradeAccess.trade_id == trade_id)
        return self.session.exec(query.order_by(TradeAccess.id)).all()  # type: ignore[arg-type]

    def add_hold(self, hold: TradeLegalHold) -> TradeLegalHold:
        """Insert and flush."""
        self.session.add(hold)
        _flush(self.session)
        return hold


class SqlUnitOfWork:
    """One database transaction over `engine`; `with` it, then `commit()`."""

    organizations: SqlOrganizations
    operators: SqlOperators
    api_keys: SqlApiKeys
    products: SqlProducts
    items: SqlItems
    sun_keys: SqlSunKeys
    devices: SqlDevices
    events: SqlCustodyEvents
    capture_jobs: SqlCaptureJobs
    captured: SqlCapturedEvents
    counters: SqlCounterStore
    transfers: SqlTransfers
    anchors: SqlAnchorBatches
    ledger: SqlLedger
    scans: SqlScans
    claims: SqlClaims
    trades: SqlTrades
    arbiters: SqlArbiters
    trade_details: SqlTradeDetails

    def __init__(
        self, engine: Engine, *, writes: bool = True, sender: Callable[[], str] | None = None
    ) -> None:
        # A unit that may write holds SQLite's write lock from its BEGIN (db.for_writing):
        # one that read first and wrote later would fail with SQLITE_BUSY under contention.
        self.engine = db.for_writing(engine) if writes else engine
        self.sender = sender  # the chain writer's signing address, for owed writes
        self.session: Session | None = None

    def __enter__(self) -> Self:
        self.session = Session(self.engine, expire_on_commit=False)
        self.organizations = SqlOrganizations(self.session)
        self.operators = SqlOperators(self.session)
        self.api_keys = SqlApiKeys(self.session)
        self.products = SqlProducts(self.session)
        self.items = SqlItems(self.session)
        self.sun_keys = SqlSunKeys(self.session)
        self.devices = SqlDevices(self.session)
        self.events = SqlCustodyEvents(self.session)
        self.capture_jobs = SqlCaptureJobs(self.session)
        self.captured = SqlCapturedEvents(self.session)
        self.counters = SqlCounterStore(self.session)
        self.transfers = SqlTransfers(self.session)
        self.anchors = SqlAnchorBatches(self.session)
        self.ledger = SqlLedger(self.session, self.sender)
        self.scans = SqlScans(self.session)
        self.claims = SqlClaims(self.session)
        self.trades = SqlTrades(self.session)
        self.arbiters = SqlArbiters(self.session)
        self.trade_details = SqlTradeDetails(self.session)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        assert self.session is not None
        try:
            self.session.rollback()
        finally:
            self.session.close()
            self.session = None

    def commit(self) -> None:
        """Commit; a uniqueness clash found only now is a Conflict."""
        assert self.session is not None, "commit outside `with`"
        try:
            self.session.commit()
        except sa.exc.IntegrityError as exc:
            self.session.rollback()
            raise Conflict(_CLASH) from exc

    def rollback(self) -> None:
        """Forget the changes since the last commit."""
        assert self.session is not None, "rollback outside `with`"
        self.session.rollback()
