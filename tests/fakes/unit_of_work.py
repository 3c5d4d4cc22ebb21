"""The in-memory fake of the unit-of-work port (provenance_api.services.ports).

State is plain dicts; a unit of work edits a copy and `commit()` swaps it in, so that an
uncommitted change is lost as in SQL. Records handed out are fresh copies: a change is kept
only when passed back to `add`, which is the contract the services follow.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from provenance_api.models import (
    AnchorBatch,
    Arbiter,
    ArbiterTie,
    CapturedEvent,
    CaptureJob,
    ClaimCode,
    CustodyEvent,
    Device,
    Item,
    ItemScan,
    OperatorAccount,
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
)
from provenance_api.services.anchoring import arrival
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
    PendingEvent,
    Placement,
    ProductSigner,
    WriteReceipt,
)

_CLASH = "a record with the same unique value already exists"


class _State:
    def __init__(self) -> None:
        self.organizations: dict[int, dict[str, Any]] = {}
        self.operators: dict[int, dict[str, Any]] = {}
        self.keys: dict[str, KeyRecord] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.sun_keys: dict[tuple[int, int], dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}  # by event id, in arrival order
        self.capture_jobs: dict[int, dict[str, Any]] = {}
        self.captured: dict[int, dict[str, Any]] = {}  # by row id
        self.captured_epcs: list[dict[str, Any]] = []
        self.counters: dict[tuple[bytes, int], int] = {}
        self.transfers: dict[int, dict[str, Any]] = {}
        self.batches: dict[int, dict[str, Any]] = {}
        # Owed chain writes by idempotency key: (contract, function, args) and their state.
        self.writes: dict[str, tuple[str, str, list[Any]]] = {}
        # (sender, value, after) of each owed write: None as sender is the operator key.
        self.write_extras: dict[str, tuple[str | None, int, str | None]] = {}
        self.write_states: dict[str, ChainState] = {}
        self.scans: dict[int, dict[str, Any]] = {}
        self.mined: dict[str, tuple[str, int]] = {}  # by key: (tx hash, block number)
        self.claim_codes: dict[int, dict[str, Any]] = {}
        self.claim_attempts: dict[int, tuple[datetime, int]] = {}  # item: (window start, count)
        self.trades: dict[int, dict[str, Any]] = {}
        self.arbiters: dict[int, dict[str, Any]] = {}
        self.ties: dict[int, dict[str, Any]] = {}
        # Trades' details (trades: the rows above).
        self.trade_keys: dict[int, dict[str, Any]] = {}
        self.trade_records: dict[tuple[int, int], dict[str, Any]] = {}
        self.trade_access: list[dict[str, Any]] = []
        self.trade_holds: list[dict[str, Any]] = []


class FakeOrganizations:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, organization: Organization) -> Organization:
        rows = self.state.organizations
        if organization.id is None:
            # Like the table: the address is unique, the name is the service's to check.
            if any(row["address"] == organization.address for row in rows.values()):
                raise Conflict(_CLASH)
            organization.id = next(self.ids)
        rows[organization.id] = organization.model_dump(warnings=False)
        return organization

    def get(self, organization_id: int) -> Organization | None:
        row = self.state.organizations.get(organization_id)
        return Organization(**row) if row is not None else None

    def by_name(self, name: str) -> Organization | None:
        for row in self.state.organizations.values():
            if row["name"] == name:
                return Organization(**row)
        return None

    def by_address(self, address: str) -> Organization | None:
        for row in self.state.organizations.values():
            if row["address"] == address:
                return Organization(**row)
        return None

    def page(self, after: int | None, limit: int) -> Sequence[Organization]:
        ids = sorted(i for i in self.state.organizations if after is None or i > after)
        return [Organization(**self.state.organizations[i]) for i in ids[:limit]]


class FakeOperators:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, operator: OperatorAccount) -> OperatorAccount:
        rows = self.state.operators
        if operator.id is None:
            if any(row["name"] == operator.name for row in rows.values()):
                raise Conflict(_CLASH)
            operator.id = next(self.ids)
        rows[operator.id] = operator.model_dump()
        return operator

    def get(self, operator_id: int) -> OperatorAccount | None:
        row = self.state.operators.get(operator_id)
        return OperatorAccount(**row) if row is not None else None

    def by_name(self, name: str) -> OperatorAccount | None:
        for row in self.state.operators.values():
            if row["name"] == name:
                return OperatorAccount(**row)
        return None


class FakeApiKeys:
    def __init__(self, state: _State) -> None:
        self.state = state

    def add(self, key: KeyRecord) -> None:
        if key.prefix in self.state.keys:
            raise Conflict(_CLASH)
        self.state.keys[key.prefix] = copy.copy(key)

    def by_prefix(self, prefix: str) -> KeyRecord | None:
        key = self.state.keys.get(prefix)
        return copy.copy(key) if key is not None else None

    def page(self, owner: Owner, after: str | None, limit: int) -> Sequence[KeyRecord]:
        keys = sorted(
            (k for k in self.state.keys.values() if k.owner == owner),
            key=lambda k: k.prefix,
        )
        return [copy.copy(k) for k in keys if after is None or k.prefix > after][:limit]

    def count_active(self, owner: Owner) -> int:
        return sum(1 for k in self.state.keys.values() if k.owner == owner and not k.revoked_at)

    def revoke(self, prefix: str, when: datetime) -> None:
        key = self.state.keys.get(prefix)
        if key is not None and key.revoked_at is None:
            key.revoked_at = when


class FakeProducts:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, product: Product) -> Product:
        stored = self.state.products.get(product.gtin)
        if product.id is None:
            if stored is not None:
                raise Conflict(_CLASH)
            product.id = next(self.ids)
        elif stored is not None and stored["id"] != product.id:
            raise Conflict(_CLASH)
        self.state.products[product.gtin] = copy.deepcopy(product.model_dump())
        return product

    def get(self, gtin: str) -> Product | None:
        row = self.state.products.get(gtin)
        return Product(**copy.deepcopy(row)) if row is not None else None

    def page(self, organization_id: int, after: str | None, limit: int) -> Sequence[Product]:
        gtins = sorted(
            gtin
            for gtin, row in self.state.products.items()
            if row["organization_id"] == organization_id and (after is None or gtin > after)
        )
        return [self.get(gtin) for gtin in gtins[:limit]]  # type: ignore[misc]

    def owned(self, organization_id: int, gtins: Collection[str]) -> set[str]:
        return {
            gtin
            for gtin in gtins
            if (row := self.state.products.get(gtin)) and row["organization_id"] == organization_id
        }

    def signers(self, after: str | None, limit: int) -> Sequence[ProductSigner]:
        gtins = sorted(gtin for gtin in self.state.products if after is None or gtin > after)
        signers = []
        for gtin in gtins[:limit]:
            supplier = self.state.organizations[self.state.products[gtin]["organization_id"]]
            signers.append(ProductSigner(gtin, supplier["name"], supplier["address"]))
        return signers


class FakeItems:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add_many(self, items: Sequence[NewItem]) -> list[int]:
        rows = self.state.items
        uids = {row["uid"] for row in rows.values() if row["uid"] is not None}
        added: dict[tuple[str, str], dict[str, Any]] = {}
        for item in items:
            key = (item.gtin, item.serial)
            # Like the table: unique keys and UIDs, and the product must exist.
            clash = key in rows or key in added or item.uid in uids
            if clash or item.gtin not in self.state.products:
                raise Conflict(_CLASH)
            if item.uid is not None:
                uids.add(item.uid)
            added[key] = {name: getattr(item, name) for name in NEW_ITEM_FIELDS}
            added[key]["id"] = next(self.ids)
        rows.update(added)
        return [row["id"] for row in added.values()]

    def by_keys(self, keys: Collection[tuple[str, str]]) -> Sequence[Item]:
        return [Item(**self.state.items[key]) for key in set(keys) if key in self.state.items]

    def by_uids(self, uids: Collection[str]) -> Sequence[Item]:
        wanted = set(uids)
        return [Item(**row) for row in self.state.items.values() if row["uid"] in wanted]

    def get(self, gtin: str, serial: str) -> Item | None:
        row = self.state.items.get((gtin, serial))
        return Item(**row) if row is not None else None

    def by_id(self, item_id: int) -> Item | None:
        rows = self.state.items.values()
        return next((Item(**row) for row in rows if row["id"] == item_id), None)

    def page(self, gtin: str, after: str | None, limit: int) -> Sequence[Item]:
        serials = sorted(
            serial
            for (item_gtin, serial) in self.state.items
            if item_gtin == gtin and (after is None or serial > after)
        )
        return [Item(**self.state.items[(gtin, serial)]) for serial in serials[:limit]]

    def set_status(self, item_id: int, status: str, reason: str | None, when: datetime) -> None:
        for row in self.state.items.values():
            if row["id"] == item_id:
                row.update(status=status, status_reason=reason, status_at=when)


class FakeScans:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, scan: ItemScan) -> None:
        scan.id = next(self.ids)
        self.state.scans[scan.id] = scan.model_dump()

    def recent(self, item_id: int, since: datetime, limit: int) -> Sequence[ItemScan]:
        rows = [
            ItemScan(**row)
            for row in self.state.scans.values()
            if row["item_id"] == item_id and row["scanned_at"] >= since
        ]
        rows.sort(key=lambda scan: (scan.scanned_at, scan.id or 0))
        return rows[-limit:] if limit else []


class FakeSunKeys:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, key: SunKey) -> SunKey:
        slot = (key.organization_id, key.epoch)
        if slot in self.state.sun_keys:
            raise Conflict(_CLASH)
        key.id = next(self.ids)
        self.state.sun_keys[slot] = key.model_dump()
        return key

    def epochs(self, organization_id: int) -> Sequence[SunKey]:
        slots = sorted(slot for slot in self.state.sun_keys if slot[0] == organization_id)
        return [SunKey(**self.state.sun_keys[slot]) for slot in slots]


class FakeDevices:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, device: Device) -> Device:
        stored = self.state.devices.get(device.address)
        if device.id is None:
            if stored is not None:
                raise Conflict(_CLASH)
            device.id = next(self.ids)
        elif stored is not None and stored["id"] != device.id:
            raise Conflict(_CLASH)
        self.state.devices[device.address] = device.model_dump()
        return device

    def get(self, address: str) -> Device | None:
        row = self.state.devices.get(address)
        return Device(**row) if row is not None else None

    def page(self, organization_id: int, after: str | None, limit: int) -> Sequence[Device]:
        addresses = sorted(
            address
            for address, row in self.state.devices.items()
            if row["organization_id"] == organization_id and (after is None or address > after)
        )
        return [self.get(address) for address in addresses[:limit]]  # type: ignore[misc]

    def by_addresses(self, addresses: Collection[str]) -> Sequence[Device]:
        return [Device(**self.state.devices[a]) for a in set(addresses) if a in self.state.devices]

    def seen(self, addresses: Collection[str], when: datetime) -> None:
        for address in addresses:
            if address in self.state.devices:
                self.state.devices[address]["last_seen_at"] = when


class FakeCustodyEvents:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add_many(self, events: Sequence[NewCustodyEvent]) -> None:
        added: dict[str, dict[str, Any]] = {}
        items = {row["id"] for row in self.state.items.values()}
        for event in events:
            # Like the table: unique event ids, and the item must exist.
            if event.event_id in self.state.events or event.event_id in added:
                raise Conflict(_CLASH)
            if event.item_id not in items:
                raise Conflict(_CLASH)
            row = {name: copy.deepcopy(getattr(event, name)) for name in NEW_EVENT_FIELDS}
            row.update(id=next(self.ids), batch_id=None, leaf_index=None, proof=None)
            added[event.event_id] = row
        self.state.events.update(added)

    def by_event_ids(self, event_ids: Collection[str]) -> Sequence[CustodyEvent]:
        rows = self.state.events
        return [CustodyEvent(**rows[event_id]) for event_id in set(event_ids) if event_id in rows]

    def for_items(self, item_ids: Collection[int]) -> Sequence[CustodyEvent]:
        wanted = set(item_ids)
        rows = [row for row in self.state.events.values() if row["item_id"] in wanted]
        return [CustodyEvent(**row) for row in sorted(rows, key=lambda row: row["id"])]

    def steps_for_items(self, item_ids: Collection[int]) -> Sequence[EventStep]:
        return [
            EventStep(*(getattr(row, name) for name in EVENT_STEP_FIELDS))
            for row in self.for_items(item_ids)
        ]

    def readable(
        self, organization_id: int, where: EventFilter, after: int | None, limit: int
    ) -> Sequence[CustodyEvent]:
        items = _readable_items(self.state, organization_id)
        rows = [
            row
            for row in self.state.events.values()
            if row["item_id"] in items
            and (after is None or row["id"] > after)
            and (where.ge_time is None or row["event_time"] >= where.ge_time)
            and (where.lt_time is None or row["event_time"] < where.lt_time)
            and (where.biz_steps is None or row["biz_step"] in where.biz_steps)
            and (where.item is None or (row["gtin"], row["serial"]) == where.item)
        ]
        rows.sort(key=lambda row: row["id"])
        return [CustodyEvent(**row) for row in rows[:limit]]


def _readable_items(state: _State, organization_id: int) -> set[int]:
    """The items the organization may read: supplied, recorded an event of, transferred."""
    items = {row["id"] for row in state.items.values() if row["organization_id"] == organization_id}
    items |= {
        row["item_id"] for row in state.events.values() if row["organization_id"] == organization_id
    }
    items |= {
        row["item_id"]
        for row in state.transfers.values()
        if organization_id in (row["from_organization_id"], row["to_organization_id"])
    }
    return items


class FakeCaptureJobs:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, job: CaptureJob) -> CaptureJob:
        if job.id is None:
            if any(row["public_id"] == job.public_id for row in self.state.capture_jobs.values()):
                raise Conflict(_CLASH)
            job.id = next(self.ids)
        self.state.capture_jobs[job.id] = copy.deepcopy(job.model_dump())
        return job

    def get(self, public_id: str) -> CaptureJob | None:
        for row in self.state.capture_jobs.values():
            if row["public_id"] == public_id:
                return CaptureJob(**copy.deepcopy(row))
        return None


class FakeCapturedEvents:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add_many(self, job_id: int, events: Sequence[NewCapturedEvent]) -> None:
        # Like the table: (organization, hash ID) is unique, the job must exist.
        taken = {
            (row["organization_id"], row["event_hash"]) for row in self.state.captured.values()
        }
        keys = [(event.organization_id, event.event_hash) for event in events]
        if (
            job_id not in self.state.capture_jobs
            or len(set(keys)) != len(keys)
            or taken & set(keys)
        ):
            raise Conflict(_CLASH)
        for event in events:
            row = {name: copy.deepcopy(getattr(event, name)) for name in NEW_CAPTURED_FIELDS}
            row.update(id=next(self.ids), job_id=job_id, batch_id=None, leaf_index=None, proof=None)
            self.state.captured[row["id"]] = row
            self.state.captured_epcs += [
                {"captured_event_id": row["id"], "epc": e, "gtin": g, "serial": s}
                for e, g, s in event.epcs
            ]

    def known(self, organization_id: int, hashes: Collection[str]) -> set[str]:
        wanted = set(hashes)
        return {
            row["event_hash"]
            for row in self.state.captured.values()
            if row["organization_id"] == organization_id and row["event_hash"] in wanted
        }

    def _naming(self, test: Any) -> set[int]:
        return {row["captured_event_id"] for row in self.state.captured_epcs if test(row)}

    def _about(self, item_ids: set[int]) -> set[int]:
        # Like the table: matched by (GTIN, serial) when read, whenever the item was registered.
        keys = {key for key, row in self.state.items.items() if row["id"] in item_ids}
        return self._naming(lambda row: (row["gtin"], row["serial"]) in keys)

    def for_items(self, item_ids: Collection[int]) -> Sequence[CapturedEvent]:
        ids = self._about(set(item_ids))
        return [CapturedEvent(**copy.deepcopy(self.state.captured[i])) for i in sorted(ids)]

    def readable(
        self, organization_id: int, where: EventFilter, after: int | None, limit: int
    ) -> Sequence[CapturedEvent]:
        items = _readable_items(self.state, organization_id)
        about = self._about(items)
        matching = (
            self._naming(lambda row: (row["gtin"], row["serial"]) == where.item)
            if where.item is not None
            else None
        )
        rows = [
            row
            for row in sorted(self.state.captured.values(), key=lambda row: row["id"])
            if (row["organization_id"] == organization_id or row["id"] in about)
            and (after is None or row["id"] > after)
            and (where.event_types is None or row["event_type"] in where.event_types)
            and (where.ge_time_ms is None or row["event_time_ms"] >= where.ge_time_ms)
            and (where.lt_time_ms is None or row["event_time_ms"] < where.lt_time_ms)
            and (where.biz_steps is None or row["biz_step"] in where.biz_steps)
            and (matching is None or row["id"] in matching)
        ]
        return [CapturedEvent(**copy.deepcopy(row)) for row in rows[:limit]]


class FakeCounters:
    """The last SUN counter per tag, kept with the rest of the state (rolls back with it)."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def advance(self, uid: bytes, key_epoch: int, counter: int) -> bool:
        key = (bytes(uid), key_epoch)
        if counter < 0 or counter <= self.state.counters.get(key, -1):
            return False
        self.state.counters[key] = counter
        return True

    def advance_many(self, taps: Sequence[tuple[bytes, int, int]]) -> set[tuple[bytes, int]]:
        if len({(bytes(uid), epoch) for uid, epoch, _ in taps}) != len(taps):
            raise ValueError("each (uid, key_epoch) may be advanced once per statement")
        return {
            (bytes(uid), epoch) for uid, epoch, counter in taps if self.advance(uid, epoch, counter)
        }

    def last(self, uid: bytes, key_epoch: int) -> int | None:
        return self.state.counters.get((bytes(uid), key_epoch))


class FakeTransfers:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, transfer: OwnershipTransfer) -> OwnershipTransfer:
        rows = self.state.transfers.values()
        # Like the table's unique constraints.
        for row in rows:
            if (
                (row["item_id"], row["sequence"]) == (transfer.item_id, transfer.sequence)
                or (row["from_address"], row["nonce"]) == (transfer.from_address, transfer.nonce)
                or row["idempotency_key"] == transfer.idempotency_key
            ):
                raise Conflict(_CLASH)
        transfer.id = next(self.ids)
        self.state.transfers[transfer.id] = transfer.model_dump()
        return transfer

    def of_item(self, item_id: int) -> Sequence[OwnershipTransfer]:
        rows = [row for row in self.state.transfers.values() if row["item_id"] == item_id]
        return [OwnershipTransfer(**row) for row in sorted(rows, key=lambda r: r["sequence"])]

    def next_nonce(self, address: str) -> int:
        nonces = [r["nonce"] for r in self.state.transfers.values() if r["from_address"] == address]
        return max(nonces) + 1 if nonces else 0


class FakeClaims:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def _live_rows(self, item_id: int) -> list[dict[str, Any]]:
        return [
            row
            for row in self.state.claim_codes.values()
            if row["item_id"] == item_id and row["used_at"] is None and row["revoked_at"] is None
        ]

    def add(self, code: ClaimCode) -> ClaimCode:
        if code.used_at is None and code.revoked_at is None and self._live_rows(code.item_id):
            raise Conflict(_CLASH)  # like the partial unique index
        code.id = next(self.ids)
        self.state.claim_codes[code.id] = code.model_dump()
        return code

    def revoke_live(self, item_id: int, when: datetime) -> int:
        rows = self._live_rows(item_id)
        for row in rows:
            row["revoked_at"] = when
        return len(rows)

    def live(self, item_id: int) -> ClaimCode | None:
        rows = self._live_rows(item_id)
        return ClaimCode(**rows[0]) if rows else None

    def of_item(self, item_id: int, organization_id: int) -> Sequence[ClaimCode]:
        rows = [
            ClaimCode(**row)
            for row in self.state.claim_codes.values()
            if (row["item_id"], row["organization_id"]) == (item_id, organization_id)
        ]
        return sorted(rows, key=lambda code: -(code.id or 0))

    def spent(self, item_id: int) -> Sequence[ClaimCode]:
        rows = self.state.claim_codes.values()
        return [
            ClaimCode(**row)
            for row in rows
            if row["item_id"] == item_id and row["used_at"] is not None
        ]

    def consume(self, code_id: int, when: datetime, transfer_id: int) -> bool:
        row = self.state.claim_codes.get(code_id)
        if row is None or row["used_at"] is not None or row["revoked_at"] is not None:
            return False
        row.update(used_at=when, transfer_id=transfer_id)
        return True

    def reserve_attempt(
        self, item_id: int, now: datetime, limit: int, window_seconds: float
    ) -> datetime | None:
        start, count = self.state.claim_attempts.get(item_id, (now, 0))
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if start <= now - timedelta(seconds=window_seconds):
            start, count = now, 0
        if count >= limit:
            return start + timedelta(seconds=window_seconds)
        self.state.claim_attempts[item_id] = (start, count + 1)
        return None

    def clear_attempts(self, item_id: int) -> None:
        self.state.claim_attempts.pop(item_id, None)


class FakeTrades:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, trade: Trade) -> Trade:
        done = (TradeState.SETTLED.value, TradeState.FAILED.value)
        for row in self.state.trades.values():
            if row["id"] != trade.id and row["open_write_key"] == trade.open_write_key:
                raise Conflict(_CLASH)
            # The partial unique index uq_trade_live_item.
            live = row["state"] not in done and trade.state not in done
            if row["id"] != trade.id and row["item_id"] == trade.item_id and live:
                raise Conflict(_CLASH)
        if trade.id is None:
            trade.id = next(self.ids)
        self.state.trades[trade.id] = trade.model_dump()
        return trade

    def get(self, trade_id: int) -> Trade | None:
        row = self.state.trades.get(trade_id)
        return Trade(**row) if row else None

    def live_of_item(self, item_id: int) -> Trade | None:
        done = (TradeState.SETTLED.value, TradeState.FAILED.value)
        rows = [
            row
            for row in self.state.trades.values()
            if row["item_id"] == item_id and row["state"] not in done
        ]
        return Trade(**max(rows, key=lambda row: row["id"])) if rows else None

    def of_organization(
        self, organization_id: int, limit: int, before: int | None = None
    ) -> Sequence[Trade]:
        columns = ("seller_organization_id", "buyer_organization_id", "arbiter_organization_id")
        rows = [
            Trade(**row)
            for row in self.state.trades.values()
            if organization_id in (row[column] for column in columns)
            and (before is None or row["id"] < before)
        ]
        return sorted(rows, key=lambda trade: -(trade.id or 0))[:limit]

    def live(self, escrow_address: str, limit: int) -> Sequence[Trade]:
        done = (TradeState.SETTLED.value, TradeState.FAILED.value)
        rows = [
            Trade(**row)
            for row in self.state.trades.values()
            if row["escrow_address"].lower() == escrow_address.lower() and row["state"] not in done
        ]
        return sorted(rows, key=lambda trade: (trade.updated_at, trade.id or 0))[:limit]


class FakeArbiters:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def add(self, arbiter: Arbiter) -> Arbiter:
        for row in self.state.arbiters.values():
            if row["id"] != arbiter.id and (
                row["organization_id"] == arbiter.organization_id
                or row["address"] == arbiter.address
            ):
                raise Conflict(_CLASH)
        if arbiter.id is None:
            arbiter.id = next(self.ids)
        self.state.arbiters[arbiter.id] = arbiter.model_dump()
        return arbiter

    def get(self, arbiter_id: int) -> Arbiter | None:
        row = self.state.arbiters.get(arbiter_id)
        return Arbiter(**row) if row else None

    def by_organization(self, organization_id: int) -> Arbiter | None:
        rows = self.state.arbiters.values()
        return next((Arbiter(**r) for r in rows if r["organization_id"] == organization_id), None)

    def by_address(self, address: str) -> Arbiter | None:
        rows = self.state.arbiters.values()
        return next((Arbiter(**r) for r in rows if r["address"] == address), None)

    def listed(self, limit: int) -> Sequence[Arbiter]:
        rows = sorted(self.state.arbiters.values(), key=lambda row: row["id"])
        return [Arbiter(**row) for row in rows if row["retired_at"] is None][:limit]

    def add_tie(self, tie: ArbiterTie) -> ArbiterTie:
        for row in self.state.ties.values():
            if (row["arbiter_id"], row["organization_id"]) == (tie.arbiter_id, tie.organization_id):
                raise Conflict(_CLASH)
        tie.id = next(self.ids)
        self.state.ties[tie.id] = tie.model_dump()
        return tie

    def ties(self, arbiter_id: int) -> Sequence[ArbiterTie]:
        rows = sorted(self.state.ties.values(), key=lambda row: row["id"])
        return [ArbiterTie(**row) for row in rows if row["arbiter_id"] == arbiter_id]


class FakeAnchorBatches:
    def __init__(self, state: _State, ids: itertools.count) -> None:
        self.state, self.ids = state, ids

    def unanchored(self, limit: int) -> Sequence[PendingEvent]:
        waiting = []
        for kind, rows in (
            (CUSTODY, self.state.events.values()),
            (CAPTURED, self.state.captured.values()),
        ):
            waiting += [
                PendingEvent(row["id"], row["digest"], row["salt"], row["received_at"], kind)
                for row in sorted(rows, key=lambda row: row["id"])
                if row["batch_id"] is None
            ][:limit]
        return sorted(waiting, key=arrival)[:limit]

    def close(self, batch: AnchorBatch, placements: Sequence[Placement]) -> AnchorBatch:
        for row in self.state.batches.values():
            if row["batch_id"] == batch.batch_id or row["idempotency_key"] == batch.idempotency_key:
                raise Conflict(_CLASH)
        by_pk = {(CUSTODY, row["id"]): row for row in self.state.events.values()}
        by_pk |= {(CAPTURED, row["id"]): row for row in self.state.captured.values()}
        for placement in placements:
            row = by_pk.get((placement.kind, placement.event_pk))
            if row is None or row["batch_id"] is not None:
                raise Conflict("an event of this batch is already in another batch")
        batch.id = next(self.ids)
        self.state.batches[batch.id] = batch.model_dump()
        for placement in placements:
            by_pk[(placement.kind, placement.event_pk)].update(
                batch_id=batch.id, leaf_index=placement.leaf_index, proof=list(placement.proof)
            )
        return batch

    def by_ids(self, ids: Collection[int]) -> Sequence[AnchorBatch]:
        return [AnchorBatch(**self.state.batches[i]) for i in set(ids) if i in self.state.batches]


class FakeLedger:
    """Owed writes kept with the rest of the state; nothing is mined until a test says so."""

    def __init__(self, state: _State) -> None:
        self.state = state

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
        if after is not None and after not in self.state.writes:
            raise NotFound(f"no write owed under {after!r} to wait for", {"after": "unknown"})
        write = (contract, function, list(args))
        stored = self.state.writes.get(idempotency_key)
        if stored is not None and (stored, self.state.write_extras[idempotency_key][1]) != (
            write,
            value,
        ):
            raise Conflict(
                f"idempotency key {idempotency_key!r} already names a different write",
                {"idempotency_key": "reused for a different write"},
            )
        self.state.writes[idempotency_key] = write
        self.state.write_extras.setdefault(idempotency_key, (sender, value, after))
        self.state.write_states.setdefault(idempotency_key, ChainState.OWED)

    def states(self, idempotency_keys: Sequence[str]) -> dict[str, ChainState]:
        return {k: self.state.write_states[k] for k in idempotency_keys if k in self.state.writes}

    def receipts(self, idempotency_keys: Sequence[str]) -> dict[str, WriteReceipt]:
        return {
            key: WriteReceipt(state, *self.state.mined.get(key, (None, None)))
            for key, state in self.states(idempotency_keys).items()
        }

    def keyed(self, prefix: str) -> dict[str, WriteReceipt]:
        return self.receipts([key for key in self.state.writes if key.startswith(prefix)])


class FakeTradeDetails:
    def __init__(self, state: _State) -> None:
        self.state = state

    def lock_trade(self, trade_id: int) -> Trade | None:
        row = self.state.trades.get(trade_id)  # one unit of work at a time: nothing to lock
        return Trade(**row) if row is not None else None

    def key(self, trade_id: int) -> TradeKey | None:
        row = self.state.trade_keys.get(trade_id)
        return TradeKey(**row) if row is not None else None

    def add_key(self, key: TradeKey) -> TradeKey:
        if key.trade_id in self.state.trade_keys:
            raise Conflict(_CLASH)
        self.state.trade_keys[key.trade_id] = key.model_dump()
        return key

    def records(self, trade_id: int) -> Sequence[TradeRecord]:
        rows = [r for (t, _), r in self.state.trade_records.items() if t == trade_id]
        return [TradeRecord(**r) for r in sorted(rows, key=lambda r: r["sequence"])]

    def last_record(self, trade_id: int) -> TradeRecord | None:
        records = self.records(trade_id)
        return records[-1] if records else None

    def add_record(self, record: TradeRecord) -> TradeRecord:
        key = (record.trade_id, record.sequence)
        if key in self.state.trade_records:
            raise Conflict(_CLASH)
        record.id = len(self.state.trade_records) + 1
        self.state.trade_records[key] = record.model_dump()
        return record

    def erase(self, trade_id: int, when: datetime, organization_id: int) -> int:
        row = self.state.trade_keys.setdefault(trade_id, TradeKey(trade_id=trade_id).model_dump())
        row.update(wrapped_key=None, erased_at=when, erased_by_organization_id=organization_id)
        erased = 0
        for (t, _), record in self.state.trade_records.items():
            if t == trade_id:
                record["ciphertext"] = None
                erased += 1
        return erased

    def log(self, entry: TradeAccess) -> None:
        entry.id = len(self.state.trade_access) + 1
        self.state.trade_access.append(entry.model_dump())

    def access_log(self, trade_id: int) -> Sequence[TradeAccess]:
        return [TradeAccess(**r) for r in self.state.trade_access if r["trade_id"] == trade_id]

    def add_hold(self, hold: TradeLegalHold) -> TradeLegalHold:
        hold.id = len(self.state.trade_holds) + 1
        self.state.trade_holds.append(hold.model_dump())
        return hold


class FakeUnitOfWork:
    """Shared committed state; each `with` works on a copy until `commit()`."""

    organizations: FakeOrganizations
    operators: FakeOperators
    api_keys: FakeApiKeys
    products: FakeProducts
    items: FakeItems
    sun_keys: FakeSunKeys
    devices: FakeDevices
    events: FakeCustodyEvents
    capture_jobs: FakeCaptureJobs
    captured: FakeCapturedEvents
    counters: FakeCounters
    transfers: FakeTransfers
    anchors: FakeAnchorBatches
    ledger: FakeLedger
    scans: FakeScans
    claims: FakeClaims
    trades: FakeTrades
    arbiters: FakeArbiters
    trade_details: FakeTradeDetails

    def __init__(self) -> None:
        self.committed = _State()
        names = (
            "org",
            "operator",
            "product",
            "item",
            "sun_key",
            "device",
            "event",
            "transfer",
            "batch",
            "scan",
            "claim_code",
            "capture_job",
            "captured",
            "trade",
            "arbiter",
        )
        self._ids = {name: itertools.count(1) for name in names}
        self._work: _State | None = None
        self.commits = 0

    def __enter__(self) -> Self:
        self._begin()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._work = None

    def _begin(self) -> None:
        self._work = copy.deepcopy(self.committed)
        self.organizations = FakeOrganizations(self._work, self._ids["org"])
        self.operators = FakeOperators(self._work, self._ids["operator"])
        self.api_keys = FakeApiKeys(self._work)
        self.products = FakeProducts(self._work, self._ids["product"])
        self.items = FakeItems(self._work, self._ids["item"])
        self.sun_keys = FakeSunKeys(self._work, self._ids["sun_key"])
        self.devices = FakeDevices(self._work, self._ids["device"])
        self.events = FakeCustodyEvents(self._work, self._ids["event"])
        self.capture_jobs = FakeCaptureJobs(self._work, self._ids["capture_job"])
        self.captured = FakeCapturedEvents(self._work, self._ids["captured"])
        self.counters = FakeCounters(self._work)
        self.transfers = FakeTransfers(self._work, self._ids["transfer"])
        self.anchors = FakeAnchorBatches(self._work, self._ids["batch"])
        self.ledger = FakeLedger(self._work)
        self.scans = FakeScans(self._work, self._ids["scan"])
        self.claims = FakeClaims(self._work, self._ids["claim_code"])
        self.trades = FakeTrades(self._work, self._ids["trade"])
        self.arbiters = FakeArbiters(self._work, self._ids["arbiter"])
        self.trade_details = FakeTradeDetails(self._work)

    def commit(self) -> None:
        assert self._work is not None, "commit outside `with`"
        self.committed = copy.deepcopy(self._work)
        self.commits += 1

    def rollback(self) -> None:
        assert self._work is not None, "rollback outside `with`"
        self._begin()

    def settle(self, idempotency_key: str, state: ChainState) -> None:
        """What the chain writer does to a committed owed write (for tests)."""
        assert idempotency_key in self.committed.writes, f"{idempotency_key} was never owed"
        self.committed.write_states[idempotency_key] = state

    def mine(self, idempotency_key: str, tx_hash: str, block_number: int) -> None:
        """Record the transaction and block of a committed owed write (for tests)."""
        assert idempotency_key in self.committed.writes, f"{idempotency_key} was never owed"
        self.committed.mined[idempotency_key] = (tx_hash, block_number)
