"""Persistence shapes (SQLModel tables) and the API shapes built from them.

Tables: `chain_write` (the chain writer's outbox) with its `chain_tx_attempt` children,
`writer_lease` (one live writer per signing key), `contract_deployment`, `organization`,
`api_key`, `product`, the operators' tables, `item`, `sun_key`, `device` (reader
addresses), `sun_counter` (the last SUN counter per tag), `custody_event` (accepted
device-signed events), `ownership_transfer` (items' title moves), and `claim_code` with
`claim_throttle` (buyers' one-time claim codes and the attempts on them). API shapes
(`*Create`, `*Public`) carry no secrets.
"""

from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import field_validator
from sqlmodel import Field, SQLModel

# Zero-width (non-)joiners are format characters that some scripts and emoji need.
_JOINERS = frozenset("\u200c\u200d")


def organization_name(name: str) -> str:
    """The name as stored: NFC, outer spaces trimmed; blank names and control characters refused.

    A name is shown on buyers' pages and in logs, where a control character could forge lines
    or hide text, and a name of spaces would look like no name.
    """
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise ValueError("must not be blank")
    for position, char in enumerate(name, start=1):
        if char in _JOINERS:
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValueError(f"character U+{ord(char):04X} at position {position} is not printable")
    return name


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the database default for timestamps)."""
    return datetime.now(UTC)


class WriteStatus(enum.StrEnum):
    """Life of an owed chain write; see provenance_api.outbox."""

    PENDING = "pending"
    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class OrgKind(enum.StrEnum):
    """What part an organization plays in the chain of custody."""

    SUPPLIER = "supplier"
    CARRIER = "carrier"
    WAREHOUSE = "warehouse"
    RETAILER = "retailer"
    # Decides trade disputes (TradeEscrow); holds no goods.
    ARBITER = "arbiter"


# Statuses and kinds are stored as short strings with a CHECK rather than native enums, so that
# adding a value is a one-line migration on PostgreSQL and SQLite alike.
_STATUSES = ", ".join(f"'{s.value}'" for s in WriteStatus)
_KINDS = ", ".join(f"'{k.value}'" for k in OrgKind)


class WeiAmount(sa.types.TypeDecorator):
    """An amount of wei: NUMERIC(78,0) (any uint256) on PostgreSQL, its decimal text on SQLite.

    SQLite's NUMERIC affinity turns integers beyond 2**63 into floats; text keeps them exact.
    """

    impl = sa.Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(78))
        return dialect.type_descriptor(sa.Numeric(78, 0))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        amount = int(value)
        if not 0 <= amount < 2**256:
            raise ValueError(f"{amount} wei is not a uint256")
        return str(amount) if dialect.name == "sqlite" else Decimal(amount)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> int | None:
        return None if value is None else int(value)


class ChainWrite(SQLModel, table=True):
    """One owed chain write: a contract call (or, with function "constructor", a contract
    creation) the writer must get mined exactly once."""

    __tablename__ = "chain_write"
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_chain_write_status"),
        sa.UniqueConstraint("sender", "nonce", name="uq_chain_write_sender_nonce"),
        sa.Index("ix_chain_write_sender_status_id", "sender", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    sender: str = Field(max_length=42)
    contract: str = Field(max_length=64)
    function: str = Field(max_length=64)
    args: list[Any] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    status: str = Field(default=WriteStatus.PENDING.value, max_length=16)
    nonce: int | None = Field(default=None, sa_type=sa.BigInteger)
    to_address: str | None = Field(default=None, max_length=42)
    mined_tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=sa.BigInteger)
    confirmations: int | None = Field(default=None)
    gas_used: int | None = Field(default=None, sa_type=sa.BigInteger)
    error: str | None = Field(default=None, sa_type=sa.Text)
    # Refusals by the node for a cause that will not change; at a bound the nonce is filled.
    refusals: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    refused_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    contract_address: str | None = Field(default=None, max_length=42)
    retry_of: int | None = Field(default=None, foreign_key="chain_write.id")
    # Wei the transaction carries (a deposit, a payment); gas is paid on top.
    value: int = Field(
        default=0, sa_type=WeiAmount, nullable=False, sa_column_kwargs={"server_default": "0"}
    )
    # Not signed before this write is confirmed; meanwhile the sender's later writes wait too.
    after_write_id: int | None = Field(default=None, foreign_key="chain_write.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    sent_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    confirmed_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class ChainTxAttempt(SQLModel, table=True):
    """One signed transaction for a write; replacements share the nonce, raise the fees."""

    __tablename__ = "chain_tx_attempt"

    id: int | None = Field(default=None, primary_key=True)
    write_id: int = Field(foreign_key="chain_write.id", index=True, ondelete="CASCADE")
    tx_hash: str = Field(max_length=66, unique=True)
    nonce: int = Field(sa_type=sa.BigInteger)
    gas: int = Field(sa_type=sa.BigInteger)
    max_fee_per_gas: int = Field(sa_type=WeiAmount)
    max_priority_fee_per_gas: int = Field(sa_type=WeiAmount)
    # A 0-value transfer to self that fills the nonce of a write the node always refuses.
    filler: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    raw_tx: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    broadcast_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class WriterLease(SQLModel, table=True):
    """Who may sign for a key right now: the holder renews `expires_at` every tick."""

    __tablename__ = "writer_lease"

    sender: str = Field(max_length=42, primary_key=True)
    holder: str = Field(max_length=200)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    heartbeat_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class ContractDeployment(SQLModel, table=True):
    """Where a contract lives on one chain; written once, on first start."""

    __tablename__ = "contract_deployment"
    __table_args__ = (
        sa.UniqueConstraint("chain_id", "name", name="uq_contract_deployment_chain_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_type=sa.BigInteger)
    name: str = Field(max_length=64)
    address: str = Field(max_length=42)
    tx_hash: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class OrganizationBase(SQLModel):
    """Fields an organization shows to everyone."""

    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind = Field(sa_type=sa.String(16))


class Organization(OrganizationBase, table=True):
    """A party with a secp256k1 identity; the API holds its key encrypted unless it brings one."""

    __tablename__ = "organization"
    __table_args__ = (sa.CheckConstraint(f"kind IN ({_KINDS})", name="ck_organization_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=42, unique=True)
    encrypted_key: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class OrganizationCreate(OrganizationBase):
    """What a caller sends to create an organization."""

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        return organization_name(name)


class OrganizationPublic(OrganizationBase):
    """What the API returns about an organization."""

    id: int
    address: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # SQLite hands timestamps back without their offset; every stored time is UTC.
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ApiKey(SQLModel, table=True):
    """An organization's API key: only its prefix and SHA-256 are stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True, ondelete="CASCADE")
    prefix: str = Field(max_length=16, unique=True)
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class ChainWritePublic(SQLModel):
    """What the API and CLI show about an owed write."""

    id: int
    sender: str
    contract: str
    function: str
    args: list[Any]
    status: str
    nonce: int | None
    mined_tx_hash: str | None
    block_number: int | None
    confirmations: int | None
    error: str | None
    contract_address: str | None
    retry_of: int | None
    value: int = 0
    after_write_id: int | None = None
    created_at: datetime


class Product(SQLModel, table=True):
    """A trade item a supplier registered, by its GTIN-14; a GTIN belongs to one supplier."""

    __tablename__ = "product"
    __table_args__ = (sa.Index("ix_product_organization_gtin", "organization_id", "gtin"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id")
    gtin: str = Field(max_length=14, unique=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=sa.Text)
    image_url: str | None = Field(default=None, max_length=2048)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class OperatorAccount(SQLModel, table=True):
    """One of the service's own staff: not a party in the chain of custody, no chain key.

    Kept apart from `organization` so that an operator never holds a custody kind, and so
    that adding them did not rebuild `organization` (on SQLite a rebuild of a parent table
    cascades deletes into `api_key`).
    """

    __tablename__ = "operator_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class OperatorApiKey(SQLModel, table=True):
    """An operator's API key: only its prefix and SHA-256 are stored, as for `api_key`."""

    __tablename__ = "operator_api_key"

    id: int | None = Field(default=None, primary_key=True)
    operator_id: int = Field(foreign_key="operator_account.id", index=True, ondelete="CASCADE")
    prefix: str = Field(max_length=16, unique=True)
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class TagKind(enum.StrEnum):
    """What tag an item carries: a printed QR label or an NFC chip."""

    QR = "qr"
    NTAG21X = "ntag21x"
    NTAG424 = "ntag424"


_TAG_KINDS = ", ".join(f"'{k.value}'" for k in TagKind)


class Item(SQLModel, table=True):
    """A serialized item: one (GTIN, serial) of a supplier's product, with its tag.

    Its registration is its commissioning: a `commissioning` custody event signed with the
    supplier's key, stored with the item and anchored like any other event.
    """

    __tablename__ = "item"
    __table_args__ = (
        sa.UniqueConstraint("gtin", "serial", name="uq_item_gtin_serial"),
        sa.CheckConstraint(f"tag IN ({_TAG_KINDS})", name="ck_item_tag"),
        # A chip UID is 7 bytes: only NFC kinds carry one, and they must.
        sa.CheckConstraint("(tag = 'qr') = (uid IS NULL)", name="ck_item_uid_for_nfc"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    gtin: str = Field(max_length=14, foreign_key="product.gtin")
    serial: str = Field(max_length=20)
    lot: str | None = Field(default=None, max_length=20)
    expiry: str | None = Field(default=None, max_length=6)
    tag: str = Field(max_length=8)
    uid: str | None = Field(default=None, max_length=14, unique=True)
    commissioned_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    # Set by its supplier (POST /v1/items/{gtin}/{serial}/status): active, recalled, stolen,
    # destroyed; verification shows it.
    status: str = Field(
        default="active", max_length=16, sa_column_kwargs={"server_default": "active"}
    )
    status_reason: str | None = Field(default=None, max_length=500)
    status_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class SunKey(SQLModel, table=True):
    """One epoch of a supplier's NTAG 424 DNA SUN master key, sealed by the key box.

    The sealed form is bound to (organization, epoch): copied onto another row it does not open.
    The highest epoch is the current one; older ones stay to verify tags made under them.
    """

    __tablename__ = "sun_key"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "epoch", name="uq_sun_key_organization_epoch"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id")
    epoch: int
    sealed_key: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class Device(SQLModel, table=True):
    """A reader device's signing address, registered to one organization; never re-registered.

    `revoked_at` decides at once (a revoked device's events are refused from then on); the
    chain follows through the writer's rows `device:<address>:register` and `...:revoke`.
    """

    __tablename__ = "device"
    __table_args__ = (sa.Index("ix_device_organization_address", "organization_id", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id")
    address: str = Field(max_length=42, unique=True)  # EIP-55 checksummed
    name: str = Field(max_length=200)
    registered_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    # Set by the custody events slice when a device's event is accepted.
    last_seen_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class SunCounter(SQLModel, table=True):
    """The last accepted NTAG 424 DNA SUN counter per (chip UID, key epoch).

    Advanced only by one compare-and-set statement (provenance_api.sun_counters), so that a
    replayed tap is caught whichever thread, worker or host presents it.
    """

    __tablename__ = "sun_counter"

    uid: bytes = Field(sa_type=sa.LargeBinary(16), primary_key=True)
    key_epoch: int = Field(primary_key=True)
    last_counter: int = Field(sa_type=sa.BigInteger)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class CustodyEvent(SQLModel, table=True):
    """An accepted custody event: every field the device signed, its signature and checks.

    `event_time` is the signed UTC seconds and `time_zone_offset` the signed minutes east
    of UTC, so the EIP-712 digest can be rebuilt from the row. `salt` is the random per-event
    salt of its Merkle leaf; `batch_id`, `leaf_index` and `proof` are set when its batch is
    anchored. `party` is the address of the organization whose device recorded it.
    """

    __tablename__ = "custody_event"
    # The items an organization recorded events of (services.history.readers, EPCIS export).
    __table_args__ = (
        sa.Index("ix_custody_event_organization_id_item_id", "organization_id", "item_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)  # UUID, lower-case canonical form
    item_id: int = Field(foreign_key="item.id", index=True)
    organization_id: int = Field(foreign_key="organization.id")
    party: str = Field(max_length=42)
    gtin: str = Field(max_length=14)
    serial: str = Field(max_length=20)
    biz_step: str = Field(max_length=64)
    disposition: str = Field(max_length=64)
    read_point: str = Field(max_length=512)
    from_party: str = Field(max_length=42)
    to_party: str = Field(max_length=42)
    event_time: int = Field(sa_type=sa.BigInteger)
    time_zone_offset: int
    tag_url: str = Field(sa_type=sa.Text)
    tag_uid: bytes = Field(sa_type=sa.LargeBinary(16))
    tag_originality_signature: bytes = Field(sa_type=sa.LargeBinary(64))
    tag_evidence: bytes = Field(sa_type=sa.LargeBinary(32))
    device: str = Field(max_length=42)
    signature: bytes = Field(sa_type=sa.LargeBinary(65))
    digest: bytes = Field(sa_type=sa.LargeBinary(32))
    salt: bytes = Field(sa_type=sa.LargeBinary(32))
    tag_verdict: str = Field(max_length=16)
    tag_codes: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    flags: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    received_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    batch_id: int | None = Field(default=None, index=True, foreign_key="anchor_batch.id")
    leaf_index: int | None = None
    proof: list[str] | None = Field(default=None, sa_type=sa.JSON)


class AnchorBatch(SQLModel, table=True):
    """A closed batch of custody events: its Merkle root, anchored by one owed chain write.

    `batch_id` is random (the contract's batchId); `idempotency_key` names the owed
    `CustodyLedger.anchor(root, count, batchId)` write, committed with this row.
    """

    __tablename__ = "anchor_batch"

    id: int | None = Field(default=None, primary_key=True)
    batch_id: bytes = Field(sa_type=sa.LargeBinary(32), unique=True)
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    count: int
    closed_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    idempotency_key: str = Field(max_length=200, unique=True)


class OwnershipTransfer(SQLModel, table=True):
    """One move of an item's title (its ERC-721 passport), with the signer's EIP-712 consent.

    The database decides at once: the item's current owner is the `to` of its highest
    `sequence`, or its supplier when it has none; the chain follows through the write
    `idempotency_key`. Sequence 1 mints the passport (lazily, straight to its first owner,
    under the supplier's MintConsent); later ones relay TransferConsents. `(item_id,
    sequence)` is unique, so of two concurrent transfers of one item exactly one commits;
    `(from_address, nonce)` is unique because the contract spends each signer's nonces in order.
    """

    __tablename__ = "ownership_transfer"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "sequence", name="uq_ownership_transfer_item_sequence"),
        sa.UniqueConstraint("from_address", "nonce", name="uq_ownership_transfer_from_nonce"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    sequence: int
    from_organization_id: int = Field(foreign_key="organization.id", index=True)
    from_address: str = Field(max_length=42)  # EIP-55 checksummed; the consent's signer
    to_organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    to_address: str = Field(max_length=42)
    nonce: int = Field(sa_type=sa.BigInteger)
    deadline: int = Field(sa_type=sa.BigInteger)  # unix seconds, inclusive
    signature: bytes = Field(sa_type=sa.LargeBinary(65))
    idempotency_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class ItemScan(SQLModel, table=True):
    """One public verification of an item: what the anomaly rules read back as recent scans.

    `scanner` is a salted hash of the client (never its address); `details` holds the tag
    check's own codes and sentences, for the supplier and the operator only.
    """

    __tablename__ = "item_scan"
    __table_args__ = (sa.Index("ix_item_scan_item_id_scanned_at", "item_id", "scanned_at"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    scanned_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    tag_kind: str = Field(max_length=16)
    verdict: str = Field(max_length=16)
    codes: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    details: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    place: str | None = Field(default=None, max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    scanner: str = Field(max_length=64)
    counter: int | None = Field(default=None, sa_type=sa.BigInteger)


# The claim codes that may be live at once: unused and unrevoked (expired ones included, until
# the owner makes the next code and so revokes them).
_LIVE_CLAIM_CODE = "used_at IS NULL AND revoked_at IS NULL"


class ClaimCode(SQLModel, table=True):
    """A one-time code with which a buyer claims an item's passport from its owner at a sale.

    Only the code's SHA-256 is stored, like an API key's: the code is shown once. At most one
    code per item is live (a partial unique index), so making a new one revokes the last.
    `used_at` is set by one compare-and-set UPDATE in the claim's own transaction, so of two
    claims with one code exactly one commits.
    """

    __tablename__ = "claim_code"
    __table_args__ = (
        sa.Index(
            "uq_claim_code_live_item",
            "item_id",
            unique=True,
            sqlite_where=sa.text(_LIVE_CLAIM_CODE),
            postgresql_where=sa.text(_LIVE_CLAIM_CODE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    organization_id: int = Field(foreign_key="organization.id")  # the owner who made it
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    transfer_id: int | None = Field(default=None, foreign_key="ownership_transfer.id")


class ClaimThrottle(SQLModel, table=True):
    """Claim attempts on one item in its current window, counted in SQL for every worker.

    An attempt is counted (one atomic UPDATE) before its code is looked at; a claim that
    succeeds clears the count, so what stays counted are the failed ones.
    """

    __tablename__ = "claim_throttle"

    item_id: int = Field(foreign_key="item.id", primary_key=True)
    window_start: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    attempts: int = 0


class CaptureJob(SQLModel, table=True):
    """One EPCIS 2.0 capture (POST /v1/epcis/capture): its outcome, polled by its public id.

    `error_behaviour` is the `GS1-Capture-Error-Behaviour` asked for: `rollback` stores
    nothing unless every event is good, `proceed` stores the good ones. `errors` lists the
    bad events as `{"index", "eventID", "message"}`; the job `failed` when there is one.
    `warnings` lists good events stored with a remark (a stated hash ID that is not theirs).
    """

    __tablename__ = "capture_job"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name="ck_capture_job_status"
        ),
        sa.CheckConstraint(
            "error_behaviour IN ('rollback', 'proceed')", name="ck_capture_job_error_behaviour"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=36, unique=True)  # UUID, lower-case canonical form
    organization_id: int = Field(foreign_key="organization.id", index=True)
    status: str = Field(max_length=16)
    error_behaviour: str = Field(max_length=16)
    event_count: int
    captured_count: int = 0  # good events, stored now or captured before
    duplicate_count: int = 0  # of those, the ones captured before (stored once)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    warnings: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class CapturedEvent(SQLModel, table=True):
    """An EPCIS event captured from another system: not device-signed, anchored all the same.

    `event_hash` is GS1's event hash ID computed here over the event as received (unique per
    capturing organization, so capturing it again stores nothing new); `received_event_id`
    is the `eventID` the sender gave, if any. `event` is the event exactly as received and
    `context` the JSON-LD context entries it needs, so that its export hashes the same.
    `event_time_ms` is UTC milliseconds (EPCIS times carry them; whole seconds would make
    `GE_eventTime` filters wrong). `digest` is the SHA-256 inside the hash ID: the Merkle leaf
    is (digest, salt), so a partner holding the document alone can check the anchoring.
    """

    __tablename__ = "captured_event"
    __table_args__ = (
        sa.UniqueConstraint(
            "organization_id", "event_hash", name="uq_captured_event_organization_hash"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="capture_job.id", index=True)
    organization_id: int = Field(foreign_key="organization.id")
    event_hash: str = Field(max_length=96)
    received_event_id: str | None = Field(default=None, sa_type=sa.Text)
    event_type: str = Field(max_length=200)
    event_time_ms: int = Field(sa_type=sa.BigInteger)
    time_zone_offset: str = Field(max_length=6)
    biz_step: str | None = Field(default=None, max_length=512)
    event: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    context: list[Any] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    digest: bytes = Field(sa_type=sa.LargeBinary(32))
    salt: bytes = Field(sa_type=sa.LargeBinary(32))
    received_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    batch_id: int | None = Field(default=None, index=True, foreign_key="anchor_batch.id")
    leaf_index: int | None = None
    proof: list[str] | None = Field(default=None, sa_type=sa.JSON)


class CapturedEventEpc(SQLModel, table=True):
    """An SGTIN (EPC URI or Digital Link) a captured event names, by (GTIN-14, serial).

    Matched to items by that key when read, not by an item id set at capture: an item
    registered after a partner captured events about it is linked to them all the same.
    """

    __tablename__ = "captured_event_epc"
    __table_args__ = (sa.Index("ix_captured_event_epc_gtin_serial", "gtin", "serial"),)

    id: int | None = Field(default=None, primary_key=True)
    captured_event_id: int = Field(foreign_key="captured_event.id", index=True, ondelete="CASCADE")
    epc: str = Field(sa_type=sa.Text)
    gtin: str = Field(max_length=14)
    serial: str = Field(max_length=20)


class TradeState(enum.StrEnum):
    """A trade's state as last read from TradeEscrow, plus the two the chain cannot know."""

    OPENING = "opening"  # the operator's `open` is owed, not yet mined
    OPEN = "open"
    FUNDED = "funded"
    SHIPPED = "shipped"
    DISPUTED = "disputed"
    ARBITRATION = "arbitration"
    SETTLED = "settled"
    FAILED = "failed"  # the `open` write failed: the trade never existed on-chain


class TradeOutcome(enum.StrEnum):
    """How a settled trade ended (TradeEscrow.Outcome)."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NOT_SHIPPED = "not_shipped"
    NO_ARBITER = "no_arbiter"
    NO_RULING = "no_ruling"
    FOR_BUYER = "for_buyer"
    FOR_SELLER = "for_seller"


_TRADE_STATES = ", ".join(f"'{k.value}'" for k in TradeState)
_TRADE_OUTCOMES = ", ".join(f"'{k.value}'" for k in TradeOutcome)


# A trade holds its item until a refresh from the chain reads it settled, or its open failed.
_LIVE_TRADE = "state NOT IN ('settled', 'failed')"


class Trade(SQLModel, table=True):
    """A trade of one item between two organizations, secured in TradeEscrow.

    The chain decides its state; `state`, `outcome`, `arbiter_*` and `settled_at` cache the
    last reading, refreshed whenever the trade is read or acted on. `chain_trade_id` is
    TradeEscrow's id, known once the operator's `open` (write `open_write_key`) is mined.
    At most one trade per item is live (a partial unique index), so of two concurrent opens
    of one item exactly one commits.
    """

    __tablename__ = "trade"
    __table_args__ = (
        sa.CheckConstraint(f"state IN ({_TRADE_STATES})", name="ck_trade_state"),
        sa.CheckConstraint(
            f"outcome IS NULL OR outcome IN ({_TRADE_OUTCOMES})", name="ck_trade_outcome"
        ),
        sa.UniqueConstraint("escrow_address", "chain_trade_id", name="uq_trade_escrow_chain_id"),
        sa.Index(
            "uq_trade_live_item",
            "item_id",
            unique=True,
            sqlite_where=sa.text(_LIVE_TRADE),
            postgresql_where=sa.text(_LIVE_TRADE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    seller_organization_id: int = Field(foreign_key="organization.id", index=True)
    buyer_organization_id: int = Field(foreign_key="organization.id", index=True)
    seller_address: str = Field(max_length=42)
    buyer_address: str = Field(max_length=42)
    deposit: int = Field(sa_type=WeiAmount)
    price: int = Field(sa_type=WeiAmount)
    deposit_window: int  # seconds each waiting state may last (TradeEscrow.Terms)
    ship_window: int
    confirm_window: int
    agree_window: int
    rule_window: int
    opened_by_organization_id: int = Field(foreign_key="organization.id")
    open_write_key: str = Field(max_length=200, unique=True)
    escrow_address: str = Field(max_length=42)
    chain_trade_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    state: str = Field(default=TradeState.OPENING.value, max_length=16)
    outcome: str | None = Field(default=None, max_length=16)
    arbiter_address: str | None = Field(default=None, max_length=42)  # the accepted arbiter
    arbiter_organization_id: int | None = Field(default=None, foreign_key="organization.id")
    settled_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    details_hash: str | None = Field(default=None, max_length=66)
    legal_hold_until: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class Arbiter(SQLModel, table=True):
    """An arbiter organization in TradeEscrow's registry, with the profile parties choose by."""

    __tablename__ = "arbiter"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", unique=True)
    address: str = Field(max_length=42, unique=True)
    display_name: str = Field(max_length=200)
    # {"summary", "languages", "jurisdictions", "fee_note", "contact"}
    profile: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    register_write_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    retired_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class ArbiterTie(SQLModel, table=True):
    """An arbiter flagged as tied to an organization, so it is not eligible in its trades."""

    __tablename__ = "arbiter_tie"
    __table_args__ = (
        sa.UniqueConstraint("arbiter_id", "organization_id", name="uq_arbiter_tie_pair"),
    )

    id: int | None = Field(default=None, primary_key=True)
    arbiter_id: int = Field(foreign_key="arbiter.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    reason: str = Field(max_length=500)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class TradeRole(enum.StrEnum):
    """Who an organization is in a trade, for its details."""

    SELLER = "seller"
    BUYER = "buyer"
    ARBITER = "arbiter"  # the arbiter both parties accepted


class TradeRecordKind(enum.StrEnum):
    """What a trade record holds (trade_vault.Kind, as stored)."""

    DETAILS = "details"  # a party's own contact and delivery details (JSON)
    MESSAGE = "message"
    PHOTO = "photo"
    EVIDENCE = "evidence"


class TradeAccessAction(enum.StrEnum):
    """What an organization did with a trade's details (or was refused)."""

    READ = "read"
    EXPORT = "export"
    WRITE = "write"
    ERASE = "erase"
    REFUSED = "refused"


_TRADE_ROLES = ", ".join(f"'{k.value}'" for k in TradeRole)
_TRADE_RECORD_KINDS = ", ".join(f"'{k.value}'" for k in TradeRecordKind)
_TRADE_ACCESS_ACTIONS = ", ".join(f"'{k.value}'" for k in TradeAccessAction)


class TradeKey(SQLModel, table=True):
    """A trade's own data key, wrapped under a key derived from KEY_ENCRYPTION_KEY (trade_vault).

    Erasure sets `wrapped_key` to NULL: every record of the trade is then unreadable, in this
    database and in its backups.
    """

    __tablename__ = "trade_key"

    trade_id: int = Field(foreign_key="trade.id", primary_key=True)
    wrapped_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
    erased_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    erased_by_organization_id: int | None = Field(default=None, foreign_key="organization.id")


class TradeRecord(SQLModel, table=True):
    """One sealed record of a trade's details: its ciphertext and its link in the hash chain.

    `digest` is sha256(nonce || ciphertext) and `details_hash` the chain's hash after this record
    (trade_vault), kept after erasure so that the chain recorded on-chain stays checkable.
    """

    __tablename__ = "trade_record"
    __table_args__ = (
        sa.UniqueConstraint("trade_id", "sequence", name="uq_trade_record_sequence"),
        sa.CheckConstraint(f"author_role IN ({_TRADE_ROLES})", name="ck_trade_record_role"),
        sa.CheckConstraint(f"kind IN ({_TRADE_RECORD_KINDS})", name="ck_trade_record_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    trade_id: int = Field(foreign_key="trade.id", index=True)
    sequence: int
    author_organization_id: int = Field(foreign_key="organization.id")
    author_role: str = Field(max_length=8)
    kind: str = Field(max_length=10)
    content_type: str = Field(max_length=40)
    nonce: bytes = Field(sa_type=sa.LargeBinary(12))
    ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)  # NULL once erased
    size: int  # of the plaintext, in bytes
    digest: bytes = Field(sa_type=sa.LargeBinary(32))
    details_hash: bytes = Field(sa_type=sa.LargeBinary(32))
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )


class TradeAccess(SQLModel, table=True):
    """One access to a trade's details, or one refusal; holds no content, survives erasure."""

    __tablename__ = "trade_access"
    __table_args__ = (
        sa.CheckConstraint(f"role IN ({_TRADE_ROLES})", name="ck_trade_access_role"),
        sa.CheckConstraint(f"action IN ({_TRADE_ACCESS_ACTIONS})", name="ck_trade_access_action"),
    )

    id: int | None = Field(default=None, primary_key=True)
    trade_id: int = Field(foreign_key="trade.id", index=True)
    organization_id: int = Field(foreign_key="organization.id")
    role: str = Field(max_length=8)
    action: str = Field(max_length=8)
    record_sequence: int | None = None
    at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class TradeLegalHold(SQLModel, table=True):
    """A legal hold an operator set on a trade: erasure waits until `until` has passed."""

    __tablename__ = "trade_legal_hold"

    id: int | None = Field(default=None, primary_key=True)
    trade_id: int = Field(foreign_key="trade.id", index=True)
    until: datetime = Field(sa_type=sa.DateTime(timezone=True))
    reason: str = Field(max_length=500)
    operator_id: int = Field(foreign_key="operator_account.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False
    )
