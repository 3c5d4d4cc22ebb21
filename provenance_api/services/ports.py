"""The ports services run over: a unit of work with its repositories, and the ledger.

Each port has one real adapter (provenance_api.unit_of_work: SQLModel) and one fake
(tests/fakes/unit_of_work.py: in memory); tests/integration/test_unit_of_work.py runs the same
suite against both so that the fake cannot drift. Records are the SQLModel row classes used
as plain objects; a repository never commits, the unit of work does.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol, Self

from firmware_tools.verify import CounterStore
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
)


class OwnerKind(enum.StrEnum):
    """Who can hold API keys: an organization, or an operator (the service's own staff)."""

    ORGANIZATION = "organization"
    OPERATOR = "operator"


@dataclasses.dataclass(frozen=True)
class Owner:
    """The holder of an API key."""

    kind: OwnerKind
    id: int


@dataclasses.dataclass
class KeyRecord:
    """An API key as stored: its owner, public prefix and SHA-256; never the key itself."""

    owner: Owner
    prefix: str
    sha256: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class NewItem:
    """An item to insert, as plain values: 10,000 SQLModel rows would cost a second to build."""

    organization_id: int
    gtin: str
    serial: str
    lot: str | None
    expiry: str | None
    tag: str
    uid: str | None
    commissioned_at: datetime


NEW_ITEM_FIELDS = tuple(field.name for field in dataclasses.fields(NewItem))


@dataclasses.dataclass(frozen=True, slots=True)
class ProductSigner:
    """Which supplier's key signs a GTIN's labels and tags."""

    gtin: str
    supplier: str
    supplier_address: str


@dataclasses.dataclass(frozen=True, slots=True)
class NewCustodyEvent:
    """An accepted custody event to insert, as plain values (see models.CustodyEvent)."""

    event_id: str
    item_id: int
    organization_id: int
    party: str
    gtin: str
    serial: str
    biz_step: str
    disposition: str
    read_point: str
    from_party: str
    to_party: str
    event_time: int
    time_zone_offset: int
    tag_url: str
    tag_uid: bytes
    tag_originality_signature: bytes
    tag_evidence: bytes
    device: str
    signature: bytes
    digest: bytes
    salt: bytes
    tag_verdict: str
    tag_codes: list[str]
    flags: list[str]
    received_at: datetime


NEW_EVENT_FIELDS = tuple(field.name for field in dataclasses.fields(NewCustodyEvent))
# The fields a device signs (contracts_abi.eip712.CustodyEvent) and a stored event copies.
SIGNED_EVENT_FIELDS = (
    "gtin",
    "serial",
    "biz_step",
    "disposition",
    "read_point",
    "from_party",
    "to_party",
    "event_time",
    "time_zone_offset",
    "tag_evidence",
    "device",
)


def new_custody_event(signed: Any, **stored: Any) -> NewCustodyEvent:
    """An event to store: the signed fields of `signed` (an eip712.CustodyEvent), plus the rest."""
    copied = {name: getattr(signed, name) for name in SIGNED_EVENT_FIELDS}
    return NewCustodyEvent(event_id=str(signed.event_id), **copied, **stored)


@dataclasses.dataclass(frozen=True, slots=True)
class EventStep:
    """What the custody rules read of a stored event: a few columns, not the whole row."""

    id: int
    item_id: int
    event_id: str
    biz_step: str
    party: str
    event_time: int
    from_party: str
    to_party: str


EVENT_STEP_FIELDS = tuple(field.name for field in dataclasses.fields(EventStep))


class OrganizationRepository(Protocol):
    """Organizations by id and by name."""

    def add(self, organization: Organization) -> Organization:
        """Store a new organization; its `id` is set on return."""
        ...

    def get(self, organization_id: int) -> Organization | None:
        """The organization with this id, if any."""
        ...

    def by_name(self, name: str) -> Organization | None:
        """The organization with exactly this name, if any."""
        ...

    def by_address(self, address: str) -> Organization | None:
        """The organization whose key has this (checksummed) address, if any."""
        ...

    def page(self, after: int | None, limit: int) -> Sequence[Organization]:
        """Up to `limit` organizations with ids above `after`, by id."""
        ...


class OperatorRepository(Protocol):
    """The service's staff accounts."""

    def add(self, operator: OperatorAccount) -> OperatorAccount:
        """Store a new operator; its `id` is set on return."""
        ...

    def get(self, operator_id: int) -> OperatorAccount | None:
        """The operator with this id, if any."""
        ...

    def by_name(self, name: str) -> OperatorAccount | None:
        """The operator with exactly this name, if any."""
        ...


class ApiKeyRepository(Protocol):
    """API keys of organizations and operators, found by prefix."""

    def add(self, key: KeyRecord) -> None:
        """Store a new key (its prefix must be unused)."""
        ...

    def by_prefix(self, prefix: str) -> KeyRecord | None:
        """The key with this prefix, whoever owns it."""
        ...

    def page(self, owner: Owner, after: str | None, limit: int) -> Sequence[KeyRecord]:
        """Up to `limit` of `owner`'s keys with prefixes above `after`, by prefix."""
        ...

    def count_active(self, owner: Owner) -> int:
        """How many of `owner`'s keys are not revoked."""
        ...

    def revoke(self, prefix: str, when: datetime) -> None:
        """Mark the key revoked at `when` (a key already revoked keeps its first time)."""
        ...


class ProductRepository(Protocol):
    """Products by GTIN-14."""

    def add(self, product: Product) -> Product:
        """Store a new product, or the changes to one read from this repository."""
        ...

    def get(self, gtin: str) -> Product | None:
        """The product with this GTIN-14, whoever owns it."""
        ...

    def page(self, organization_id: int, after: str | None, limit: int) -> Sequence[Product]:
        """Up to `limit` of the organization's products with GTINs above `after`, by GTIN."""
        ...

    def owned(self, organization_id: int, gtins: Collection[str]) -> set[str]:
        """Which of `gtins` the organization holds (one query, whatever their number)."""
        ...

    def signers(self, after: str | None, limit: int) -> Sequence[ProductSigner]:
        """Every supplier's GTINs above `after`, ascending, each with its supplier."""
        ...


class ItemRepository(Protocol):
    """Serialized items by (GTIN-14, serial); a chip UID belongs to one item at most."""

    def add_many(self, items: Sequence[NewItem]) -> list[int]:
        """Store new items in bulk, returning their ids in order; a clash is a Conflict."""
        ...

    def by_keys(self, keys: Collection[tuple[str, str]]) -> Sequence[Item]:
        """The items with these (GTIN, serial) keys, whoever owns them (one query, <= 10,000)."""
        ...

    def by_uids(self, uids: Collection[str]) -> Sequence[Item]:
        """The items bound to these chip UIDs (one query, <= 10,000)."""
        ...

    def get(self, gtin: str, serial: str) -> Item | None:
        """The item (GTIN, serial), whoever owns it."""
        ...

    def by_id(self, item_id: int) -> Item | None:
        """The item with this row id, whoever owns it."""
        ...

    def page(self, gtin: str, after: str | None, limit: int) -> Sequence[Item]:
        """Up to `limit` items of `gtin` with serials above `after`, by serial."""
        ...

    def set_status(self, item_id: int, status: str, reason: str | None, when: datetime) -> None:
        """Set the item's status (active, recalled, stolen, destroyed), its reason and time."""
        ...


class SunKeyRepository(Protocol):
    """Suppliers' sealed SUN master keys, one row per (organization, epoch)."""

    def add(self, key: SunKey) -> SunKey:
        """Store a new epoch; an (organization, epoch) already stored is a Conflict."""
        ...

    def epochs(self, organization_id: int) -> Sequence[SunKey]:
        """The organization's epochs, oldest (lowest number) first."""
        ...


class DeviceRepository(Protocol):
    """Reader devices by address (EIP-55 checksummed)."""

    def add(self, device: Device) -> Device:
        """Store a new device, or the changes to one read from this repository."""
        ...

    def get(self, address: str) -> Device | None:
        """The device with this address, whichever organization holds it."""
        ...

    def page(self, organization_id: int, after: str | None, limit: int) -> Sequence[Device]:
        """Up to `limit` of the organization's devices with addresses above `after`."""
        ...

    def by_addresses(self, addresses: Collection[str]) -> Sequence[Device]:
        """The devices with these addresses, whoever holds them (one query, <= 1,000)."""
        ...

    def seen(self, addresses: Collection[str], when: datetime) -> None:
        """Set `last_seen_at` of these devices to `when` (one statement)."""
        ...


class CustodyEventRepository(Protocol):
    """Accepted custody events by event id (a UUID in lower-case canonical form)."""

    def add_many(self, events: Sequence[NewCustodyEvent]) -> None:
        """Store new events in bulk; an event id already stored is a Conflict."""
        ...

    def by_event_ids(self, event_ids: Collection[str]) -> Sequence[CustodyEvent]:
        """The events with these ids (one query, <= 1,000)."""
        ...

    def for_items(self, item_ids: Collection[int]) -> Sequence[CustodyEvent]:
        """Every event of these items, in arrival order (one query)."""
        ...

    def steps_for_items(self, item_ids: Collection[int]) -> Sequence[EventStep]:
        """`for_items` reduced to what the custody rules read, in arrival order (one query)."""
        ...

    def readable(
        self, organization_id: int, where: EventFilter, after: int | None, limit: int
    ) -> Sequence[CustodyEvent]:
        """Up to `limit` events matching `where` whose item the organization may read, by row id
        above `after` (one query). It may read an item it supplied, recorded an event of, or
        was a party to a transfer of (services.history.readers).
        """
        ...


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """Which events an EPCIS query asks for; None means no condition."""

    ge_time: int | None = None  # event_time >= this (UTC seconds)
    lt_time: int | None = None  # event_time < this
    biz_steps: frozenset[str] | None = None
    item: tuple[str, str] | None = None  # (GTIN-14, serial)
    # Captured events keep milliseconds: the same bounds in UTC milliseconds.
    ge_time_ms: int | None = None
    lt_time_ms: int | None = None
    event_types: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class NewCapturedEvent:
    """A captured EPCIS event to insert, with the SGTINs it names (see models.CapturedEvent)."""

    organization_id: int
    event_hash: str
    received_event_id: str | None
    event_type: str
    event_time_ms: int
    time_zone_offset: str
    biz_step: str | None
    event: dict[str, Any]
    context: list[Any]
    digest: bytes
    salt: bytes
    received_at: datetime
    epcs: list[tuple[str, str, str]]  # the SGTINs it names: (EPC as given, GTIN-14, serial)


NEW_CAPTURED_FIELDS = tuple(
    field.name for field in dataclasses.fields(NewCapturedEvent) if field.name != "epcs"
)

# The two kinds of anchored events, in the order a batch takes them when received together.
CUSTODY = "custody"
CAPTURED = "captured"


@dataclasses.dataclass(frozen=True, slots=True)
class PendingEvent:
    """An accepted event not yet in a batch, as the anchoring service needs it.

    `kind` says which table it is in (CUSTODY: device-signed, CAPTURED: EPCIS capture);
    `id` is its row id there.
    """

    id: int
    digest: bytes
    salt: bytes
    received_at: datetime
    kind: str = CUSTODY


@dataclasses.dataclass(frozen=True, slots=True)
class Placement:
    """Where an event sits in its batch's tree: its leaf index and proof (0x-hex siblings)."""

    event_pk: int
    leaf_index: int
    proof: list[str]
    kind: str = CUSTODY


class CaptureJobRepository(Protocol):
    """EPCIS capture jobs by their public id (a UUID)."""

    def add(self, job: CaptureJob) -> CaptureJob:
        """Store a new job (its `id` set on return), or the changes to one read from here."""
        ...

    def get(self, public_id: str) -> CaptureJob | None:
        """The job with this public id, whoever captured it."""
        ...


class CapturedEventRepository(Protocol):
    """Events captured from other systems, unique per (capturing organization, hash ID)."""

    def add_many(self, job_id: int, events: Sequence[NewCapturedEvent]) -> None:
        """Store new events of a job with their SGTINs; a hash ID stored before is a Conflict."""
        ...

    def known(self, organization_id: int, hashes: Collection[str]) -> set[str]:
        """Which of these hash IDs the organization has captured before (one query)."""
        ...

    def for_items(self, item_ids: Collection[int]) -> Sequence[CapturedEvent]:
        """Every captured event naming one of these items, by row id, each once (one query)."""
        ...

    def readable(
        self, organization_id: int, where: EventFilter, after: int | None, limit: int
    ) -> Sequence[CapturedEvent]:
        """Up to `limit` captured events matching `where`, by row id above `after`, that the
        organization captured or that name an item it may read (one query)."""
        ...


class AnchorBatchRepository(Protocol):
    """Closed Merkle batches, and the accepted events still waiting for one."""

    def unanchored(self, limit: int) -> Sequence[PendingEvent]:
        """Up to `limit` events in no batch, held for this unit of work: device-signed and
        captured ones together, by (received_at, kind, id).

        Two units of work never get the same event (PostgreSQL: FOR UPDATE SKIP LOCKED;
        SQLite: the write lock taken at BEGIN).
        """
        ...

    def close(self, batch: AnchorBatch, placements: Sequence[Placement]) -> AnchorBatch:
        """Store `batch` (its `id` set on return) and put each placed event, of either kind,
        in it."""
        ...

    def by_ids(self, ids: Collection[int]) -> Sequence[AnchorBatch]:
        """The batches with these row ids (one query)."""
        ...


@dataclasses.dataclass(frozen=True)
class WriteReceipt:
    """Where an owed write stands, with its transaction and block once mined."""

    state: ChainState
    tx_hash: str | None
    block_number: int | None
    error: str | None = None


class Counters(CounterStore, Protocol):
    """The last SUN counter per (chip UID, key epoch), in the unit of work's transaction."""

    def advance_many(self, taps: Sequence[tuple[bytes, int, int]]) -> set[tuple[bytes, int]]:
        """`advance` each (uid, key_epoch, counter) at once; the (uid, key_epoch) that advanced.

        Each (uid, key_epoch) may appear once (ValueError otherwise).
        """
        ...

    def last(self, uid: bytes, key_epoch: int) -> int | None:
        """The last accepted counter of (uid, key_epoch), if any."""
        ...


class TransferRepository(Protocol):
    """Ownership transfers: per item by sequence, and each signer's consent nonces."""

    def add(self, transfer: OwnershipTransfer) -> OwnershipTransfer:
        """Store a new transfer; an (item, sequence) or (signer, nonce) taken is a Conflict."""
        ...

    def of_item(self, item_id: int) -> Sequence[OwnershipTransfer]:
        """The item's transfers, first (sequence 1, the mint) first."""
        ...

    def next_nonce(self, address: str) -> int:
        """The consent nonce `address` signs next: one above its highest recorded, else 0."""
        ...


class ScanRepository(Protocol):
    """Public verifications of items (scans), for the anomaly rules and the supplier."""

    def add(self, scan: ItemScan) -> None:
        """Store a new scan."""
        ...

    def recent(self, item_id: int, since: datetime, limit: int) -> Sequence[ItemScan]:
        """The item's scans at or after `since`, oldest first, at most the `limit` newest."""
        ...


class ClaimRepository(Protocol):
    """Buyers' one-time claim codes (one live per item) and the attempts counted per item."""

    def add(self, code: ClaimCode) -> ClaimCode:
        """Store a new code; a second live code of one item is a Conflict."""
        ...

    def revoke_live(self, item_id: int, when: datetime) -> int:
        """Revoke the item's live (unused, unrevoked) code at `when`; how many were revoked."""
        ...

    def live(self, item_id: int) -> ClaimCode | None:
        """The item's code that is neither used nor revoked (it may have expired), if any."""
        ...

    def of_item(self, item_id: int, organization_id: int) -> Sequence[ClaimCode]:
        """The codes `organization_id` made for the item, newest first."""
        ...

    def spent(self, item_id: int) -> Sequence[ClaimCode]:
        """The item's codes that a claim used (each with its `transfer_id`)."""
        ...

    def consume(self, code_id: int, when: datetime, transfer_id: int) -> bool:
        """Mark the code used by `transfer_id` if it is still live (compare-and-set); whether it
        was. Of two units of work consuming one code, exactly one gets True."""
        ...

    def reserve_attempt(
        self, item_id: int, now: datetime, limit: int, window_seconds: float
    ) -> datetime | None:
        """Count one attempt on the item, unless `limit` were counted in the window that began
        with the first of them; None when counted, else when the window ends (atomic)."""
        ...

    def clear_attempts(self, item_id: int) -> None:
        """Forget the item's counted attempts (a claim succeeded, or a new code was made)."""
        ...


class TradeRepository(Protocol):
    """Trades (the index of TradeEscrow's trades, with their cached state)."""

    def add(self, trade: Trade) -> Trade:
        """Store a new trade, or the changes to one read from here; its `id` set on return.
        A second live trade (neither settled nor failed) of an item is a Conflict, after
        which the unit of work can still read."""
        ...

    def get(self, trade_id: int) -> Trade | None:
        """The trade with this id, whoever its parties are."""
        ...

    def live_of_item(self, item_id: int) -> Trade | None:
        """The item's trade that is neither settled nor failed, if any."""
        ...

    def of_organization(
        self, organization_id: int, limit: int, before: int | None = None
    ) -> Sequence[Trade]:
        """Up to `limit` trades the organization is a party to or the accepted arbiter of,
        newest first; with `before`, only those with a smaller id (the next page)."""
        ...

    def live(self, escrow_address: str, limit: int) -> Sequence[Trade]:
        """Up to `limit` trades of that escrow neither settled nor failed, the longest
        unrefreshed first (`updated_at`, then id)."""
        ...


class ArbiterRepository(Protocol):
    """Registered arbiters and their declared or flagged ties."""

    def add(self, arbiter: Arbiter) -> Arbiter:
        """Store a new arbiter, or the changes to one read from here; a second one of an
        organization is a Conflict."""
        ...

    def get(self, arbiter_id: int) -> Arbiter | None:
        """The arbiter with this id."""
        ...

    def by_organization(self, organization_id: int) -> Arbiter | None:
        """The organization's arbiter entry, if it registered."""
        ...

    def by_address(self, address: str) -> Arbiter | None:
        """The arbiter whose address this is (checksummed), if any."""
        ...

    def listed(self, limit: int) -> Sequence[Arbiter]:
        """Up to `limit` arbiters not retired, by id."""
        ...

    def add_tie(self, tie: ArbiterTie) -> ArbiterTie:
        """Store a tie; the same (arbiter, organization) twice is a Conflict."""
        ...

    def ties(self, arbiter_id: int) -> Sequence[ArbiterTie]:
        """The arbiter's ties, oldest first."""
        ...


class TradeDetailsRepository(Protocol):
    """A trade's sealed personal data: its wrapped key, records, access log and legal holds."""

    def lock_trade(self, trade_id: int) -> Trade | None:
        """The trade row (as `trades.get`), locked until the unit ends: writers of one trade's
        records queue."""
        ...

    def key(self, trade_id: int) -> TradeKey | None:
        """The trade's key row, once a record was added or the details erased."""
        ...

    def add_key(self, key: TradeKey) -> TradeKey:
        """Store a trade's first key row; a second one for the trade is a Conflict."""
        ...

    def records(self, trade_id: int) -> Sequence[TradeRecord]:
        """The trade's records by sequence."""
        ...

    def last_record(self, trade_id: int) -> TradeRecord | None:
        """The trade's record with the highest sequence."""
        ...

    def add_record(self, record: TradeRecord) -> TradeRecord:
        """Store a record; a sequence the trade already has is a Conflict."""
        ...

    def erase(self, trade_id: int, when: datetime, organization_id: int) -> int:
        """Destroy the trade's wrapped key and every ciphertext; how many records were erased."""
        ...

    def log(self, entry: TradeAccess) -> None:
        """Append one access (or refusal) to the trade's access log."""
        ...

    def access_log(self, trade_id: int) -> Sequence[TradeAccess]:
        """The trade's access log, oldest first."""
        ...

    def add_hold(self, hold: TradeLegalHold) -> TradeLegalHold:
        """Record a legal hold set on the trade."""
        ...


class UnitOfWork(Protocol):
    """One transaction: `with uow:` opens it, `commit()` keeps it, leaving without rolls back.

    A uniqueness clash (a name, a GTIN or a prefix stored twice) raises
    services.errors.Conflict from `add` or `commit`.
    """

    organizations: OrganizationRepository
    operators: OperatorRepository
    api_keys: ApiKeyRepository
    products: ProductRepository
    items: ItemRepository
    sun_keys: SunKeyRepository
    devices: DeviceRepository
    events: CustodyEventRepository
    capture_jobs: CaptureJobRepository
    captured: CapturedEventRepository
    # The last SUN counter per tag, advanced in this unit's transaction: a rolled-back
    # unit advances nothing.
    counters: Counters
    transfers: TransferRepository
    anchors: AnchorBatchRepository
    ledger: Ledger
    scans: ScanRepository
    claims: ClaimRepository
    trades: TradeRepository
    arbiters: ArbiterRepository
    trade_details: TradeDetailsRepository

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: Any) -> None: ...

    def commit(self) -> None:
        """Make everything done in this unit of work durable."""
        ...

    def rollback(self) -> None:
        """Forget everything done in this unit of work since it began or last committed."""
        ...


class ChainState(enum.StrEnum):
    """Where an owed chain write stands, as callers see it."""

    OWED = "owed"  # recorded, not yet confirmed (pending, signed, sent or mined)
    CONFIRMED = "confirmed"
    FAILED = "failed"


class Ledger(Protocol):
    """What the services owe the chain, recorded in the same transaction as their change.

    It belongs to the unit of work (`uow.ledger`): an owed write commits or rolls back with
    the change that owes it. The real adapter is the chain writer's outbox
    (services.chain_writes.owe_write).
    """

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
        """Record that `contract.function(*args)` must be mined exactly once.

        Signed by `sender` (None: the operator key; else a custodial organization's address),
        carrying `value` wei, and not before the write owed under idempotency key `after` is
        confirmed (if that one fails, this one fails too).
        """
        ...

    def states(self, idempotency_keys: Sequence[str]) -> dict[str, ChainState]:
        """Where each of these owed writes stands; keys never owed are left out."""
        ...

    def receipts(self, idempotency_keys: Sequence[str]) -> dict[str, WriteReceipt]:
        """Like `states`, with the transaction hash and block of each mined write."""
        ...

    def keyed(self, prefix: str) -> dict[str, WriteReceipt]:
        """`receipts` of every owed write whose idempotency key starts with `prefix`."""
        ...


class EscrowReader(Protocol):
    """What the services read from TradeEscrow (and ProductPassport) on the chain.

    The real adapter is provenance_api.escrow_chain.EscrowChain (web3); reads are views.
    """

    address: str  # TradeEscrow's address
    passport: str  # ProductPassport's address
    chain_id: int

    def status(self, trade_id: int) -> Any:
        """statusOf(trade_id) as contracts_abi.escrow.Status."""
        ...

    def deadline(self, trade_id: int) -> int:
        """deadlineOf(trade_id): the end (inclusive) of the current state's window; 0 settled."""
        ...

    def credit(self, address: str) -> int:
        """creditOf(address): wei it can withdraw."""
        ...

    def opened_trade_id(self, tx_hash: str) -> int | None:
        """The trade id in the TradeOpened log of the mined `open` transaction, if any."""
        ...

    def is_eligible(self, trade_id: int, arbiter: str) -> bool:
        """isEligible(trade_id, arbiter)."""
        ...

    def passport_owner(self, token_id: int) -> str | None:
        """ProductPassport.ownerOf(token_id); None before it is minted."""
        ...

    def calldata(self, contract: str, function: str, args: Sequence[Any]) -> str:
        """The 0x-hex call data of `contract.function(*args)` ("TradeEscrow" or
        "ProductPassport")."""
        ...
