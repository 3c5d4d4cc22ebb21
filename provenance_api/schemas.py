"""API shapes: what callers send and get back, as typed pydantic models (no secrets stored).

The checks here are pure: a GTIN is normalized to 14 digits, an image URL must be https,
attributes are a small JSON object. The OpenAPI document is generated from these models.
"""

from __future__ import annotations

import enum
import json
import math
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from contracts_abi.cbv import BIZ_STEPS, DISPOSITIONS
from firmware_tools.errors import FormatError, GS1Error
from firmware_tools.formats.gs1 import check_ai_value, check_expiry, normalize_gtin
from firmware_tools.formats.qr import address_bytes, checksummed
from provenance_api import claim_codes
from provenance_api.epcis import query as epcis_query
from provenance_api.models import (
    OrganizationCreate,
    OrganizationPublic,
    OrgKind,
    TagKind,
    TradeRecordKind,
    organization_name,
)
from provenance_api.services import trade_rules

PAGE_LIMIT_MAX = 200
PAGE_LIMIT_DEFAULT = 50
NAME_MAX = 200
DESCRIPTION_MAX = 2000
IMAGE_URL_MAX = 2048
ATTRIBUTES_MAX_BYTES = 4096
ATTRIBUTES_MAX_DEPTH = 4
ATTRIBUTE_KEY_MAX = 64
ITEMS_PER_BATCH_MAX = 10_000


class Role(enum.StrEnum):
    """Who a caller is: an organization's kind, or the service's own staff."""

    SUPPLIER = OrgKind.SUPPLIER.value
    CARRIER = OrgKind.CARRIER.value
    WAREHOUSE = OrgKind.WAREHOUSE.value
    RETAILER = OrgKind.RETAILER.value
    ARBITER = OrgKind.ARBITER.value
    OPERATOR = "operator"


def as_utc(value: datetime) -> datetime:
    """`value` with its UTC offset (SQLite returns stored UTC times without one)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def gtin14(value: str) -> str:
    """A GTIN-8/12/13/14 with a correct check digit, as 14 digits."""
    try:
        return normalize_gtin(value)
    except GS1Error as exc:
        raise ValueError(str(exc)) from None


def https_url(value: str) -> str:
    """An absolute https URL with a host and no whitespace or control characters."""
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme != "https":
        raise ValueError("must be an https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    return value


def text_block(value: str) -> str:
    """Free text as stored: NFC, outer spaces trimmed; newlines and tabs are the only controls."""
    value = unicodedata.normalize("NFC", value).strip()
    for position, char in enumerate(value, start=1):
        if char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn"):
            raise ValueError(f"character U+{ord(char):04X} at position {position} is not allowed")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _plain(value: Any, where: str) -> None:
    # Python's JSON parser takes NaN and Infinity (and 1e400 becomes inf): JSON has neither and
    # PostgreSQL refuses them. Control characters would reach buyers' pages and logs.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a JSON number")
    if isinstance(value, str):
        _printable_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _printable_text(key, f"key {key!r}")
            _plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _plain(item, f"{where}[{index}]")


def _printable_text(text: str, where: str) -> None:
    for position, char in enumerate(text, start=1):
        if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"{where}: character U+{ord(char):04X} at position {position}")


def small_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON of at most 4 KiB (compact UTF-8), nested at most 4 deep, short printable keys.

    Plain: finite numbers only, no control characters but newline and tab in any string.
    """
    for key in value:
        if not 1 <= len(key) <= ATTRIBUTE_KEY_MAX:
            raise ValueError(f"keys must have 1 to {ATTRIBUTE_KEY_MAX} characters")
    _plain(value, "attributes")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > ATTRIBUTES_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {ATTRIBUTES_MAX_BYTES}")
    if _depth(value) > ATTRIBUTES_MAX_DEPTH:
        raise ValueError(f"is nested more than {ATTRIBUTES_MAX_DEPTH} levels deep")
    return value


def gs1_serial(value: str) -> str:
    """A serial (AI 21): 1 to 20 characters of GS1 character set 82."""
    try:
        return check_ai_value("21", value)
    except GS1Error as exc:
        raise ValueError(str(exc)) from None


def gs1_lot(value: str) -> str:
    """A lot (AI 10): 1 to 20 characters of GS1 character set 82."""
    try:
        return check_ai_value("10", value)
    except GS1Error as exc:
        raise ValueError(str(exc)) from None


def gs1_expiry(value: str) -> str:
    """An expiry date (AI 17) as YYMMDD; DD=00 means the end of the month."""
    try:
        return check_expiry(value)
    except GS1Error as exc:
        raise ValueError(str(exc)) from None


def eth_address(value: str) -> str:
    """A 0x address, EIP-55 checksummed or all one case, as its checksummed form.

    Mixed case is a checksum (EIP-55): one mistyped letter is caught rather than registering
    an address nobody holds the key of.
    """
    try:
        raw = address_bytes(value)  # the tag library's one EIP-55 rule
    except FormatError as exc:
        raise ValueError(str(exc)) from None
    if not any(raw):
        raise ValueError("the zero address has no key; nobody can sign for it")
    return checksummed(raw)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
EthAddress = Annotated[
    str,
    Field(
        min_length=42,
        max_length=42,
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="A 0x address: EIP-55 checksummed, or all lower or all upper case hex.",
    ),
    AfterValidator(eth_address),
]
Gtin = Annotated[
    str,
    Field(
        min_length=8,
        max_length=14,
        pattern=r"^[0-9]+$",
        description="GTIN-8, -12, -13 or -14 with its check digit; stored as GTIN-14.",
    ),
    AfterValidator(gtin14),
]
ProductName = Annotated[
    str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(organization_name)
]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX), AfterValidator(text_block)]
ImageUrl = Annotated[
    str,
    Field(
        min_length=9,
        max_length=IMAGE_URL_MAX,
        pattern=r"^https://",
        json_schema_extra={"format": "uri"},
    ),
    AfterValidator(https_url),
]
Attributes = Annotated[
    dict[str, JsonValue],
    Field(
        max_length=64,
        description=(
            f"A small JSON object: at most {ATTRIBUTES_MAX_BYTES} bytes as compact JSON, "
            f"nested at most {ATTRIBUTES_MAX_DEPTH} levels."
        ),
    ),
    AfterValidator(small_json_object),
]
Limit = Annotated[int, Field(ge=1, le=PAGE_LIMIT_MAX, description="Page size.")]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """The JSON body of every error: a code, a sentence, and each bad field with its reason."""

    error: str = Field(examples=["invalid_input"])
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


# --- who is calling -----------------------------------------------------------------------


class OperatorPublic(BaseModel):
    """One of the service's staff, as shown to that operator."""

    id: int
    name: str
    created_at: UtcDatetime


class MePublic(BaseModel):
    """The caller: its role, the key it used, and its organization (or operator account)."""

    role: Role
    key_prefix: str
    organization: OrganizationPublic | None = None
    operator: OperatorPublic | None = None


class ApiKeyPublic(BaseModel):
    """An API key as listed: its prefix only (the key itself is never shown again)."""

    prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    active: bool


class ApiKeyCreated(ApiKeyPublic):
    """A new API key, with the key itself: shown this once, store it now."""

    api_key: str


class ApiKeyPage(BaseModel):
    """The caller's API keys, ordered by prefix; pass `next` as `after` for more."""

    items: list[ApiKeyPublic]
    next: str | None = None


class ApiKeyPath(BaseModel):
    """An API key named by its prefix."""

    prefix: str = Field(min_length=1, max_length=16, pattern=r"^[0-9a-f]+$")


class ApiKeyListQuery(Strict):
    """Paging through API keys."""

    limit: Limit = PAGE_LIMIT_DEFAULT
    # Non-nullable types with a None default: the parameter is either absent or a value.
    after: str = Field(default=None, max_length=16, pattern=r"^[0-9a-f]+$")  # type: ignore[assignment]


class RevokeQuery(Strict):
    """Revoking a key; the caller's last active key only with `allow_last=true`."""

    allow_last: bool = False


# --- organizations (operators) ------------------------------------------------------------


class OrganizationCreateBody(OrganizationCreate):
    """What an operator sends to create an organization (unknown fields are an error)."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class OrganizationCreated(BaseModel):
    """A new organization and its first API key (shown this once)."""

    organization: OrganizationPublic
    api_key: str


class OrganizationPage(BaseModel):
    """Organizations by id; pass `next` as `after` for more."""

    items: list[OrganizationPublic]
    next: int | None = None


class OrganizationListQuery(Strict):
    """Paging through organizations."""

    limit: Limit = PAGE_LIMIT_DEFAULT
    # Ids are BIGINT at most: a larger `after` would overflow the database driver (a 500).
    after: int = Field(default=None, ge=0, le=2**63 - 1)  # type: ignore[assignment]


# --- products -----------------------------------------------------------------------------


class ProductCreate(Strict):
    """A product to register; the caller (a supplier) becomes the GTIN's owner."""

    gtin: Gtin
    name: ProductName
    description: Description | None = None
    image_url: ImageUrl | None = None
    attributes: Attributes = Field(default_factory=dict)


class ProductUpdate(Strict):
    """Fields to change; a field left out stays, `null` clears description or image_url."""

    # A default of None with a non-nullable type: left out means "keep", null is refused.
    name: ProductName = None  # type: ignore[assignment]
    description: Description | None = None
    image_url: ImageUrl | None = None
    attributes: Attributes = None  # type: ignore[assignment]


class ProductPublic(BaseModel):
    """A product as its supplier sees it."""

    gtin: str = Field(examples=["09506000134352"])
    name: str
    description: str | None
    image_url: str | None
    attributes: dict[str, JsonValue]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ProductPage(BaseModel):
    """The caller's products by GTIN; pass `next` as `after` for more."""

    items: list[ProductPublic]
    next: str | None = None


class ProductPath(BaseModel):
    """A product named by its GTIN (8, 12, 13 or 14 digits)."""

    gtin: Gtin


class ProductListQuery(Strict):
    """Paging through products."""

    limit: Limit = PAGE_LIMIT_DEFAULT
    after: Gtin = None  # type: ignore[assignment]


class ProductSignerPublic(BaseModel):
    """The supplier whose key signs a GTIN's labels and tags (public: its labels carry it)."""

    gtin: str
    supplier: str
    supplier_address: str = Field(description="EIP-55 address that signs its labels and tags.")


class TrustPage(BaseModel):
    """Every registered GTIN with its supplier, by GTIN; pass `next` as `after` for more."""

    items: list[ProductSignerPublic]
    next: str | None = None


# --- items --------------------------------------------------------------------------------

Serial = Annotated[
    str,
    Field(
        min_length=1,
        max_length=20,
        description="Serial (GS1 AI 21): 1 to 20 characters of GS1 character set 82.",
    ),
    AfterValidator(gs1_serial),
]
Lot = Annotated[
    str,
    Field(min_length=1, max_length=20, description="Lot (GS1 AI 10), as a serial."),
    AfterValidator(gs1_lot),
]
Expiry = Annotated[
    str,
    Field(
        min_length=6,
        max_length=6,
        pattern=r"^[0-9]{6}$",
        description="Expiry date (GS1 AI 17) as YYMMDD; DD=00 means the end of the month.",
    ),
    AfterValidator(gs1_expiry),
]
ChipUid = Annotated[
    str,
    Field(
        min_length=14,
        max_length=14,
        pattern=r"^[0-9A-Fa-f]{14}$",
        description="The NFC chip's 7-byte UID as 14 hex digits; stored upper-case.",
    ),
    AfterValidator(str.upper),
]


class ItemCreate(Strict):
    """One serialized item to register: the chip UID is required for NFC tags, refused for QR."""

    gtin: Gtin
    serial: Serial
    lot: Lot | None = None
    expiry: Expiry | None = None
    tag: TagKind
    uid: ChipUid | None = Field(default=None, validate_default=True)

    @field_validator("uid")
    @classmethod
    def _uid_for_nfc_only(cls, uid: str | None, info: ValidationInfo) -> str | None:
        tag = info.data.get("tag")  # absent when the tag itself was invalid
        if tag is TagKind.QR and uid is not None:
            raise ValueError("a QR label has no chip UID")
        if tag is not None and tag is not TagKind.QR and uid is None:
            raise ValueError(f"an {tag.value} tag needs its chip UID")
        return uid


class ItemBatch(Strict):
    """Up to 10,000 items to register in one request."""

    items: list[ItemCreate] = Field(min_length=1, max_length=ITEMS_PER_BATCH_MAX)


class ItemBatchQuery(Strict):
    """How a batch is stored: the good rows (default), or all rows or none (`atomic=true`)."""

    atomic: bool = False


class ItemPublic(BaseModel):
    """A registered item as its supplier sees it."""

    gtin: str = Field(examples=["09506000134352"])
    serial: str
    lot: str | None
    expiry: str | None
    tag: TagKind
    uid: str | None
    commissioned_at: UtcDatetime


class ItemStored(ItemPublic):
    """A row of a batch that is stored: `created`, or the same item already registered."""

    index: int
    created: bool


class ItemRefused(BaseModel):
    """A row of a batch that was refused, with each bad field and why."""

    index: int
    error: str = Field(examples=["invalid_input", "unknown_product", "conflict"])
    fields: dict[str, str]


class ItemBatchResult(BaseModel):
    """One answer per row: `items` stored (new or already there), `refused` with reasons."""

    created: int
    unchanged: int
    refused_count: int
    items: list[ItemStored]
    refused: list[ItemRefused]


class ItemPath(BaseModel):
    """An item named by its GTIN and serial."""

    gtin: Gtin
    serial: Serial


class ItemListQuery(Strict):
    """Paging through the caller's items of one product, by serial."""

    gtin: Gtin
    limit: Limit = PAGE_LIMIT_DEFAULT
    after: Serial = None  # type: ignore[assignment]


class ItemPage(BaseModel):
    """Items of one product by serial; pass `next` as `after` for more."""

    items: list[ItemPublic]
    next: str | None = None


# --- SUN keys (NTAG 424 DNA) ----------------------------------------------------------------


class SunKeyCreate(Strict):
    """A new SUN key epoch: the API generates the master key, or imports `master_key`."""

    master_key: str = Field(
        default=None,  # type: ignore[assignment]
        min_length=32,
        max_length=32,
        pattern=r"^[0-9A-Fa-f]{32}$",
        description="A 16-byte AES master key as 32 hex digits; left out, the API makes one.",
    )


class SunKeyPublic(BaseModel):
    """A key epoch as listed: its number and time, never the key."""

    epoch: int
    created_at: UtcDatetime
    current: bool


class SunKeyList(BaseModel):
    """The caller's key epochs, oldest first; the last is current."""

    items: list[SunKeyPublic]


# --- devices ------------------------------------------------------------------------------


class DeviceStatus(enum.StrEnum):
    """A device is active until revoked; revoked is for good."""

    ACTIVE = "active"
    REVOKED = "revoked"


class DeviceCreate(Strict):
    """A reader device to register: the address `firmware-tools device provision` printed."""

    address: EthAddress
    # Printable, as an organization's or product's name: it is shown on pages and in logs.
    name: ProductName = Field(description="A label for people, e.g. 'Dock door 3'.")


class DevicePublic(BaseModel):
    """A device as its organization sees it, with where its chain registration stands."""

    address: str
    name: str
    status: DeviceStatus
    registered_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    last_seen_at: UtcDatetime | None = None
    chain_registration: str = Field(
        description="The on-chain registration: owed (not yet confirmed), confirmed or failed."
    )
    chain_revocation: str | None = Field(
        default=None,
        description="The on-chain revocation, once revoked: owed, confirmed or failed.",
    )


class DevicePage(BaseModel):
    """The caller's devices by address; pass `next` as `after` for more."""

    items: list[DevicePublic]
    next: str | None = None


class DevicePath(BaseModel):
    """A device named by its address."""

    address: EthAddress


class DeviceListQuery(Strict):
    """Paging through devices."""

    limit: Limit = PAGE_LIMIT_DEFAULT
    after: EthAddress = None  # type: ignore[assignment]


# --- custody events -----------------------------------------------------------------------

EVENTS_PER_BATCH_MAX = 1_000

TIME_ZONE_OFFSET_MAX_MINUTES = 14 * 60


def signed_text(value: str) -> str:
    """Text a device signed: kept byte for byte (no normalizing), control characters refused."""
    _printable_text(value, "text")
    if "\n" in value or "\t" in value:
        raise ValueError("must be one line")
    return value


def event_time(value: datetime) -> datetime:
    """A time with its UTC offset, in whole seconds, the offset in whole minutes within ±14 h."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("must carry its time-zone offset, e.g. 2026-12-01T10:00:00+01:00")
    if value.microsecond:
        raise ValueError("must be whole seconds (the device signs seconds)")
    if value.timestamp() < 0:
        raise ValueError("must not be before 1970 (the device signs unsigned seconds)")
    minutes, rest = divmod(int(offset.total_seconds()), 60)
    if rest or abs(minutes) > TIME_ZONE_OFFSET_MAX_MINUTES:
        raise ValueError("the offset must be whole minutes within ±14:00")
    return value


def hex_bytes(value: str) -> str:
    """Hex digits of whole bytes, stored upper-case."""
    if len(value) % 2:
        raise ValueError("must be whole bytes (an even number of hex digits)")
    return value.upper()


Gtin14 = Annotated[
    str,
    Field(
        min_length=14,
        max_length=14,
        pattern=r"^[0-9]{14}$",
        description="GTIN-14 with its check digit, as the device signed it.",
    ),
    AfterValidator(gtin14),
]
SignedText = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(signed_text)]
EventTime = Annotated[
    datetime,
    Field(
        description=(
            "When it happened, RFC 3339 with the local offset where it happened, whole seconds:"
            " the device signs the UTC seconds and the offset in minutes."
        ),
        examples=["2026-12-01T10:00:00+01:00"],
    ),
    AfterValidator(event_time),
]


class TagEvidence(Strict):
    """The tag as read: the URL; for a read NTAG 21x chip also its UID and originality signature."""

    url: str = Field(min_length=1, max_length=2048, description="The scanned URL, exactly as read.")
    uid: ChipUid | None = None
    originality_signature: str | None = Field(
        default=None,
        min_length=2,
        max_length=128,
        pattern=r"^[0-9A-Fa-f]+$",
        validate_default=True,
        description="The chip's NXP originality signature as hex (READ_SIG).",
    )

    @field_validator("url")
    @classmethod
    def _one_line(cls, url: str) -> str:
        return signed_text(url)

    @field_validator("originality_signature")
    @classmethod
    def _chip_read(cls, signature: str | None, info: ValidationInfo) -> str | None:
        if signature is not None:
            signature = hex_bytes(signature)
        if (signature is None) != (info.data.get("uid") is None) and "uid" in info.data:
            raise ValueError("a chip read has both its UID and its originality signature")
        return signature


class EventCreate(Strict):
    """One custody event as the device signed it (EIP-712 `CustodyEvent`) and its signature."""

    event_id: uuid.UUID
    gtin: Gtin14
    serial: Serial
    biz_step: Literal[BIZ_STEPS] = Field(description="CBV 2.0 business step (short name).")  # type: ignore[valid-type]
    disposition: Literal[DISPOSITIONS] = Field(description="CBV 2.0 disposition (short name).")  # type: ignore[valid-type]
    read_point: SignedText = Field(description="Where it was read: an SGLN URI or your own id.")
    from_party: EthAddress | None = Field(default=None, description="The giver, if any.")
    to_party: EthAddress | None = Field(default=None, description="The taker, if any.")
    event_time: EventTime
    device: EthAddress
    tag: TagEvidence
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="The device's 65-byte signature (r || s || v) over the EIP-712 digest.",
    )


class EventBatch(Strict):
    """Up to 1,000 device-signed events in one request."""

    events: list[EventCreate] = Field(min_length=1, max_length=EVENTS_PER_BATCH_MAX)


class EventStatus(enum.StrEnum):
    """What became of one event of a batch."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # sent before with the same content: stored once, nothing new
    REJECTED = "rejected"


class EventResult(BaseModel):
    """One event's outcome: codes and sentences for a rejection; flags of an accepted event."""

    index: int
    event_id: str
    status: EventStatus
    codes: list[str] = Field(default_factory=list, examples=[["replayed_counter"]])
    reasons: list[str] = Field(default_factory=list)
    flags: list[str] = Field(
        default_factory=list,
        description="What custody rules found odd in an accepted event (it is kept anyway).",
    )
    tag_verdict: str | None = None
    received_at: UtcDatetime | None = Field(
        default=None, description="When it was first accepted (accepted and duplicate)."
    )


class EventBatchResult(BaseModel):
    """One result per event, in the order sent."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class AnchorState(enum.StrEnum):
    """Where an event's anchoring stands."""

    PENDING = "pending"  # accepted, not yet in a closed batch
    OWED = "owed"  # in a batch whose anchor write is not confirmed yet
    CONFIRMED = "confirmed"
    FAILED = "failed"


class EventPath(BaseModel):
    """An event named by its id."""

    event_id: uuid.UUID


class CustodyEventPublic(BaseModel):
    """A stored event: what its device signed, and its proof of anchoring once batched.

    Check it on-chain with `CustodyLedger.verifyEvent(root, digest, salt, proof)`.
    """

    event_id: str
    gtin: str
    serial: str
    biz_step: str
    disposition: str
    read_point: str
    from_party: str
    to_party: str
    event_time: UtcDatetime
    time_zone_offset: int = Field(description="Signed minutes east of UTC.")
    device: str
    party: str = Field(description="Address of the organization whose device recorded it.")
    tag_url: str
    tag_uid: str
    tag_originality_signature: str
    tag_evidence: str
    signature: str
    digest: str = Field(description="EIP-712 digest of the signed event.")
    flags: list[str]
    received_at: UtcDatetime
    anchoring: AnchorState
    salt: str
    leaf: str = Field(description="The salted StandardMerkleTree leaf of (digest, salt).")
    leaf_index: int | None = None
    proof: list[str] | None = None
    root: str | None = None
    batch_id: str | None = None
    transaction: str | None = None
    block_number: int | None = None
    confirmations: int | None = None


class ItemHistory(BaseModel):
    """An item's custody timeline, by event time."""

    gtin: str
    serial: str
    events: list[CustodyEventPublic]


UINT64_MAX = 2**63 - 1  # BIGINT: deadlines and nonces as stored
ConsentSignature = Annotated[
    str,
    Field(
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="A 65-byte secp256k1 signature (r, s, v) as 0x-hex.",
    ),
]


class TransferCreate(Strict):
    """Move an item's passport from the caller (its current owner) to another party.

    Name the new owner by `to_organization_id` or by `to_address` (a buyer's wallet), not both.
    Without `signature` the API signs the consent with the caller's key it holds; an
    organization that holds its own key sends `signature` over the EIP-712 consent with
    `nonce` and `deadline`: a `MintConsent` for the item's first transfer (the passport is
    minted straight to the new owner), a `TransferConsent` afterwards.
    """

    gtin: Gtin
    serial: Serial
    to_organization_id: int | None = Field(default=None, ge=1, le=UINT64_MAX)
    to_address: EthAddress | None = None
    deadline: int | None = Field(
        default=None,
        ge=1,
        le=UINT64_MAX,
        description="Last unix second at which the consent is valid; default: a day from now.",
    )
    nonce: int | None = Field(
        default=None, ge=0, le=UINT64_MAX, description="The signer's consent nonce (own keys)."
    )
    signature: ConsentSignature | None = None


class PassportMint(Strict):
    """Mint an item's passport to its supplier; a supplier with its own key signs it."""

    deadline: int | None = Field(default=None, ge=1, le=UINT64_MAX)
    nonce: int | None = Field(default=None, ge=0, le=UINT64_MAX)
    signature: ConsentSignature | None = None


class TransferPublic(BaseModel):
    """One move of an item's title, as the parties to it see it."""

    gtin: str
    serial: str
    token_id: str = Field(description="The passport's ERC-721 token id, as 0x-hex.")
    sequence: int = Field(description="1 for the first (which mints the passport), then 2, ...")
    mints: bool = Field(description="Whether this transfer mints the passport.")
    from_organization_id: int
    from_address: str
    to_organization_id: int | None
    to_address: str
    nonce: int
    deadline: int
    signature: str
    tag_commitment: str = Field(description="What the passport records about the tag (0x-hex).")
    created_at: UtcDatetime
    chain: str = Field(
        description="The on-chain write: owed (not yet confirmed), confirmed, failed."
    )


class TransferList(BaseModel):
    """An item's transfers, first first."""

    items: list[TransferPublic]


class TransferQuery(Strict):
    """The item whose transfers to list."""

    gtin: Gtin
    serial: Serial


class PassportPublic(BaseModel):
    """An item's passport as the database sees it now: its owner and whether it is minted."""

    gtin: str
    serial: str
    token_id: str = Field(description="The passport's ERC-721 token id, as 0x-hex.")
    tag_commitment: str = Field(description="What the passport records about the tag (0x-hex).")
    owner_organization_id: int | None = Field(description="None when a buyer's address owns it.")
    owner_address: str
    minted: bool = Field(description="Whether a mint is recorded (its chain write may be owed).")
    transfers: int


# --- claims: a buyer takes an item's passport with the seller's one-time code ------------

PASSPHRASE_MIN = 12
PASSPHRASE_MAX = 1024  # the KDF's work does not grow with it, but a body should stay small

ClaimCodeText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description=(
            "The seller's one-time code, e.g. 7K3M-Q9XD-2F8H-VN4P: any case, dashes and "
            "spaces optional."
        ),
    ),
    AfterValidator(claim_codes.normalize),
]


class ClaimCodeCreated(BaseModel):
    """A new claim code for an item, shown this once (only its hash is stored)."""

    gtin: str
    serial: str
    code: str = Field(description="Give it to the buyer; it is shown only this once.")
    created_at: UtcDatetime
    expires_at: UtcDatetime
    replaced: bool = Field(description="Whether an unused earlier code was revoked by this one.")


class ClaimCodeState(enum.StrEnum):
    """Where a claim code stands."""

    LIVE = "live"  # a buyer can claim with it
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"  # replaced by a newer code, or void because the item moved otherwise


class ClaimCodePublic(BaseModel):
    """One claim code as its maker sees it afterwards: never the code itself."""

    state: ClaimCodeState
    created_at: UtcDatetime
    expires_at: UtcDatetime
    used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class ClaimCodeList(BaseModel):
    """The codes the caller made for an item, newest first."""

    items: list[ClaimCodePublic]


WALLET_ROUTE = "POST /v1/claims/wallet"


def _no_passphrase(value: object) -> None:
    raise ValueError(
        f"a claim goes only to an address: make a wallet first with {WALLET_ROUTE} (the same "
        "code and a passphrase; the code is not spent), save it, then claim to its address"
    )


class ClaimCreate(Strict):
    """Claim an item's passport with the seller's code, to the buyer's `address`.

    Only ever to an address the buyer already holds the key of (a wallet of their own, or one
    made with POST /v1/claims/wallet), so that a lost answer cannot leave the passport with a
    key nobody holds.
    """

    gtin: Gtin
    serial: Serial
    code: ClaimCodeText
    address: EthAddress = Field(description="The buyer's wallet: the passport's new owner.")
    # Gone since claims go only to an address. Kept as a field (and out of the document) so
    # that a client of the old one-step claim is told where to go rather than only that the
    # field is unknown and `address` missing.
    passphrase: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)

    _passphrase = field_validator("passphrase", mode="before")(_no_passphrase)


class ClaimPublic(BaseModel):
    """A claim that was accepted: the transfer it made and the item's new owner."""

    owner_address: str = Field(description="The buyer's address: the passport's new owner.")
    transfer: TransferPublic
    replayed: bool = Field(
        default=False,
        description=(
            "True when this code had already claimed the item for this same address: the "
            "answer (200) repeats that claim, so a client may safely retry a lost answer."
        ),
    )


class WalletCreate(Strict):
    """Make a wallet for a buyer who has none, to claim with: the seller's code and a passphrase.

    The code is checked as a claim checks it but not spent; the answer is the only copy.
    """

    gtin: Gtin
    serial: Serial
    code: ClaimCodeText
    passphrase: str = Field(
        min_length=PASSPHRASE_MIN,
        max_length=PASSPHRASE_MAX,
        description="Encrypts the new key (scrypt); the service never keeps it.",
    )


class WalletPublic(BaseModel):
    """A new key for the buyer, encrypted under their passphrase; the service keeps no copy."""

    address: str = Field(description="Claim to this address with POST /v1/claims.")
    keystore: dict[str, Any] = Field(
        description=(
            "The new key as a Web3 Secret Storage (v3) keystore that wallets import, shown "
            "this once: save it before claiming. Nothing was spent or moved: if it is lost, "
            "make another."
        )
    )


# --- EPCIS 2.0 export: GET /v1/epcis/events ---------------------------------------------


def _epcis_check(parse: Any) -> Any:
    """A validator that refuses what `parse` (provenance_api.epcis.query) refuses."""

    def check(value: str | None) -> str | None:
        if value is not None:
            parse(value)
        return value

    return AfterValidator(check)


def _rfc3339(value: Any) -> Any:
    """Only an RFC 3339 date-time: pydantic would also take a bare number as Unix seconds."""
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}", value):
        raise ValueError("an RFC 3339 date-time with a time zone, e.g. 2026-12-01T10:00:00Z")
    return value


EpcisTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class EpcisEventQuery(Strict):
    """EPCIS 2.0 SimpleEventQuery parameters (REST binding); any other parameter is a 422."""

    eventType: Annotated[str | None, _epcis_check(epcis_query.event_types)] = Field(
        None,
        description="Comma-separated; device-signed events are ObjectEvents, captured ones"
        " keep their type.",
    )
    GE_eventTime: EpcisTime | None = Field(None, description="Events at or after this time.")
    LT_eventTime: EpcisTime | None = Field(None, description="Events before this time.")
    EQ_bizStep: Annotated[str | None, _epcis_check(epcis_query.biz_steps)] = Field(
        None, description="Comma-separated CBV business steps: short names or CBV URIs."
    )
    MATCH_epc: Annotated[str | None, _epcis_check(epcis_query.item_of_epc)] = Field(
        None, description="One item: an SGTIN EPC URI or a GS1 Digital Link URI."
    )
    perPage: int = Field(100, ge=1, le=1000, description="Events per page.")
    nextPageToken: Annotated[str | None, _epcis_check(epcis_query.page_after)] = Field(
        None, max_length=64, description="From the previous page's `Link: <...>; rel=next`."
    )


class EpcisDocument(BaseModel):
    """An EPCIS 2.0 EPCISDocument (JSON-LD), as sent to the capture interface; GS1's EPCIS JSON
    schema describes it fully and is what the capture checks it against."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    context: Any = Field(alias="@context")
    type: Literal["EPCISDocument"]
    schemaVersion: str
    creationDate: str
    epcisBody: dict[str, Any]


class EpcisQueryDocument(BaseModel):
    """An EPCIS 2.0 EPCISQueryDocument (JSON-LD); GS1's EPCIS JSON schema describes it fully."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    context: list[Any] = Field(alias="@context")
    type: Literal["EPCISQueryDocument"]
    schemaVersion: Literal["2.0"]
    creationDate: str
    epcisBody: dict[str, Any]


class CaptureErrorPublic(BaseModel):
    """One event a capture refused: its place in the document, the eventID it came with."""

    index: int | None = Field(description="The event's place in eventList; null: the document.")
    eventID: str | None = None
    message: str


class CaptureJobPublic(BaseModel):
    """An EPCIS 2.0 capture job (§12.7: `GET /capture/{captureID}`), with its counts."""

    captureID: str
    status: Literal["running", "succeeded", "failed"]
    running: bool
    success: bool | None = Field(None, description="Unknown while running.")
    captureErrorBehaviour: Literal["rollback", "proceed"]
    createdAt: UtcDatetime
    finishedAt: UtcDatetime | None = None
    eventCount: int = Field(description="Events in the document.")
    capturedCount: int = Field(
        description="Good events: stored by this job, or captured before (see duplicateCount)."
    )
    duplicateCount: int = Field(
        description="Of those, events this organization had captured already: stored once."
    )
    errors: list[CaptureErrorPublic]
    warnings: list[CaptureErrorPublic] = Field(
        default_factory=list,
        description="Events stored all the same, e.g. under our hash ID instead of the one stated.",
    )


class CapturePath(BaseModel):
    """A capture job named by its captureID."""

    capture_id: uuid.UUID


# --- verification (issue 10): GET /v1/verify, the resolver, item status -------------------


class ItemStatus(enum.StrEnum):
    """What an item's supplier says about it; verification shows anything but `active`."""

    ACTIVE = "active"
    RECALLED = "recalled"
    STOLEN = "stolen"
    DESTROYED = "destroyed"


class ItemStatusUpdate(Strict):
    """A supplier's report about one of its items, with a reason shown to whoever checks it."""

    status: ItemStatus
    reason: str = Field(min_length=1, max_length=500)


class ItemStatusPublic(BaseModel):
    """An item's status, its reason and when it was set."""

    gtin: str
    serial: str
    status: ItemStatus
    reason: str | None = None
    status_at: UtcDatetime | None = None


class RecallStatusPublic(BaseModel):
    """An item's status as anyone may see it (GS1 `gs1:recallStatus`): no key, no owner."""

    gtin: str
    serial: str
    status: ItemStatus
    reason: str | None = Field(default=None, description="The supplier's public reason.")
    since: UtcDatetime | None = Field(default=None, description="When the status was set.")


class Verdict(enum.StrEnum):
    """A verification's answer; `unverifiable` means "we could not check", never "fake"."""

    AUTHENTIC = "authentic"
    SUSPICIOUS = "suspicious"
    COUNTERFEIT = "counterfeit"
    UNVERIFIABLE = "unverifiable"


class VerifyQuery(Strict):
    """A scanned or tapped tag URL, and where the phone is (optional, for the travel rule)."""

    url: str = Field(min_length=1, max_length=2048, description="The tag's URL, as scanned.")
    geo: str | None = Field(
        default=None, max_length=100, description="The phone's position: `geo:lat,lon`."
    )
    place: str | None = Field(default=None, max_length=200, description="A city, for people.")


class ReasonPublic(BaseModel):
    """A reason: a stable code and a plain sentence."""

    code: str
    message: str


class PartyPublic(BaseModel):
    """An organization as the public sees it."""

    name: str
    address: str


class ProductBrief(BaseModel):
    """The product as a buyer sees it."""

    gtin: str
    name: str
    image_url: str | None = None


class HistoryStep(BaseModel):
    """One custody event as the public sees it, with its anchoring (no tag URL: it can be
    copied).

    Everything its device signed is here but the tag as read, which only its digest
    `tag_evidence` stands for, so that a browser can recompute `digest` (EIP-712
    `CustodyEvent`, contracts_abi.eip712), recover `device` from `signature` and fold `proof`
    up to `root` without the service.

    `device_signed` is false for an event captured over EPCIS from another system: the
    organization named by `party` stated it, no reader device signed it, and the anomaly rules
    do not count it as custody evidence. Its `event_id` is then its GS1 event hash ID, and its
    `digest` the SHA-256 inside that ID.
    """

    event_id: str
    device_signed: bool = True
    event_type: str = "ObjectEvent"
    biz_step: str
    disposition: str
    read_point: str
    party: str
    party_name: str | None = None
    event_time: UtcDatetime
    # What the device signed; None for an event captured over EPCIS (no device signed it).
    time_zone_offset: int | None = Field(None, description="Signed minutes east of UTC.")
    from_party: str | None = None
    to_party: str | None = None
    device: str | None = Field(
        None, description="The signing device's address (the supplier's for commissioning)."
    )
    tag_evidence: str | None = Field(
        None, description="EIP-712 digest of the tag as read (URL, UID, signature)."
    )
    signature: str | None = Field(
        None, description="The device's EIP-712 signature over the event."
    )
    anchoring: AnchorState
    digest: str
    salt: str
    leaf_index: int | None = None
    proof: list[str] | None = None
    root: str | None = None
    transaction: str | None = None
    block_number: int | None = None
    confirmations: int | None = None


class FirstVerified(BaseModel):
    """The first buyer check after the sale: when and where."""

    at: UtcDatetime
    place: str | None = None


class Attestation(BaseModel):
    """The service's EIP-712 signature over the verdict it shows (eip712 `TagVerdict`).

    Signed with the operator key of the CustodyLedger at `ledger` on chain `chain_id`: check
    that `signer` holds its OPERATOR_ROLE. `verdict`, `gtin`, `serial` and `tag_kind` repeat
    the answer's; `reasons_hash` is eip712.reasons_hash of its reasons; `checked_at` is its
    time in whole seconds.
    """

    signer: str
    signature: str
    chain_id: int
    ledger: str
    gtin: str
    serial: str
    tag_kind: str
    verdict: Verdict
    reasons_hash: str
    checked_at: int


class Verification(BaseModel):
    """The answer to "is this genuine, and where has it been?"."""

    verdict: Verdict
    reasons: list[ReasonPublic]
    checked_at: UtcDatetime
    tag_kind: str | None = None
    gtin: str | None = None
    serial: str | None = None
    status: ItemStatus | None = None
    product: ProductBrief | None = None
    supplier: PartyPublic | None = None
    owner: PartyPublic | None = None
    custodian: PartyPublic | None = None
    in_transit_to: PartyPublic | None = None
    first_verified: FirstVerified | None = None
    history: list[HistoryStep] = Field(default_factory=list)
    attestation: Attestation | None = Field(
        default=None, description="The service's signature over this verdict; None if unsigned."
    )


class ScanPublic(BaseModel):
    """One public check of an item, with the tag check's detailed causes (for its supplier)."""

    scanned_at: UtcDatetime
    verdict: Verdict
    tag_kind: str
    codes: list[str]
    details: list[ReasonPublic]
    place: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    counter: int | None = None


class ScanListQuery(Strict):
    """How many of the newest checks to show."""

    limit: Limit = PAGE_LIMIT_DEFAULT


class ScanList(BaseModel):
    """An item's recent public checks, oldest first."""

    gtin: str
    serial: str
    scans: list[ScanPublic]


# --- Trades (issue 12) -----------------------------------------------------------------------

WINDOW_MAX = 365 * 86400
Wei = Annotated[
    str,
    Field(
        min_length=1,
        max_length=78,
        pattern=r"^[0-9]+$",
        description="An amount of wei as a decimal string (JSON numbers lose precision).",
    ),
]
Window = Annotated[
    int, Field(ge=1, le=WINDOW_MAX, description="Seconds a waiting state may last (1 s..365 d).")
]


class TradeCreate(Strict):
    """Open a trade of an item the caller owns with a buyer organization.

    Amounts are wei as decimal strings: `deposit` (each party's, 1..2**96-1) and `price`
    (0..2**96-1, paid by the buyer, held until completion). Windows default to 3 days to
    deposit, 7 to ship, 7 to confirm, 5 to agree on an arbiter and 14 to rule.
    """

    gtin: Gtin
    serial: Serial
    buyer_organization_id: int = Field(ge=1, le=UINT64_MAX)
    deposit: Wei
    price: Wei = "0"
    deposit_window: Window | None = None
    ship_window: Window | None = None
    confirm_window: Window | None = None
    agree_window: Window | None = None
    rule_window: Window | None = None


# --- Trades: personal data (issue 12) --------------------------------------------------------

TRADE_TEXT_MAX_BYTES = 20_000  # a message, or a party's details as compact JSON (UTF-8)
TRADE_FILE_MAX_BYTES = 2 * 1024 * 1024  # a photo or a piece of evidence, decoded
TRADE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/pdf", "text/plain")
TradeContentType = Literal["image/jpeg", "image/png", "application/pdf", "text/plain"]
_TRADE_FILE_MAX_BASE64 = 4 * ((TRADE_FILE_MAX_BYTES + 2) // 3)


class TradePath(BaseModel):
    """A trade named by its id."""

    trade_id: int = Field(ge=1, le=UINT64_MAX)


class TradeShip(Strict):
    """The seller says it shipped (`{}`), or a party presents the anchored custody event
    of the handoff to the buyer: `{"proof": "custody_event", "event_id": ...}`."""

    proof: Literal["custody_event"] | None = None
    event_id: uuid.UUID | None = None


class ArbiterChoice(Strict):
    """The arbiter a party accepts: by its id in /v1/arbiters or by its address."""

    arbiter_id: int | None = Field(default=None, ge=1, le=UINT64_MAX)
    arbiter_address: EthAddress | None = None


class TradeRuling(Strict):
    """The appointed arbiter's final decision."""

    for_buyer: bool = Field(strict=True, description="true: the buyer wins; false: the seller.")


class TradeWindows(BaseModel):
    """Seconds each waiting state may last."""

    deposit_window: int
    ship_window: int
    confirm_window: int
    agree_window: int
    rule_window: int


class TradeParty(BaseModel):
    """A party as the trade shows it."""

    organization_id: int
    name: str
    address: str
    self_custody: bool = Field(description="Signs its own transactions (the API builds them).")
    deposited: bool
    arbiter_choice: str | None = Field(default=None, description="The arbiter it accepted.")


class ArbiterBrief(BaseModel):
    """An arbiter as a trade names it; unknown to the API when only `address` is set."""

    address: str
    id: int | None = None
    organization_id: int | None = None
    display_name: str | None = None
    profile: dict[str, Any] | None = None


class TradeWrite(BaseModel):
    """A chain write owed for this trade, and where it stands."""

    key: str
    state: str = Field(description="owed, confirmed or failed.")
    tx_hash: str | None = None
    error: str | None = None


class TransactionToSign(BaseModel):
    """A transaction a self-custody organization signs and sends itself."""

    to: str
    data: str
    value: str = Field(description="Wei as a decimal string.")
    chain_id: int
    description: str


class TradePublic(BaseModel):
    """A trade as a party or its accepted arbiter sees it; `next_actions` are the caller's."""

    id: int
    chain_trade_id: int | None
    escrow_address: str
    gtin: str
    serial: str
    token_id: str = Field(description="The passport's ERC-721 token id, as 0x-hex.")
    seller: TradeParty
    buyer: TradeParty
    deposit: str
    price: str
    windows: TradeWindows
    state: str
    outcome: str | None
    deadline: UtcDatetime | None = Field(description="End of the current state's window.")
    held: str = Field(description="Wei the escrow holds for this trade.")
    passport_held: bool
    proposed_arbiter: ArbiterBrief | None
    accepted_arbiter: ArbiterBrief | None
    writes: list[TradeWrite]
    viewer: str = Field(description="The caller's part: seller, buyer or arbiter.")
    next_actions: list[str]
    created_at: UtcDatetime
    settled_at: UtcDatetime | None


TRADE_PAGE_MAX = 100


def _trade_page_token(value: str | None) -> str | None:
    if value is not None:
        trade_rules.page_after(value)
    return value


class TradeListQuery(Strict):
    """Paging through the caller's trades, newest first."""

    limit: int = Field(
        PAGE_LIMIT_DEFAULT, ge=1, le=TRADE_PAGE_MAX, description="Trades per page (1..100)."
    )
    # Non-nullable with a None default: the parameter is either absent or a token.
    page_token: Annotated[str, AfterValidator(_trade_page_token)] = Field(
        default=None,  # type: ignore[assignment]
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The previous page's `next_page_token`: the page after it.",
    )


class TradeList(BaseModel):
    """The caller's trades, newest first; pass `next_page_token` as `page_token` for more."""

    items: list[TradePublic]
    next_page_token: str | None = None


class TradeActionResult(BaseModel):
    """What an action did: writes owed (custodial, 202) or transactions to sign (200)."""

    trade: TradePublic
    writes: list[TradeWrite]
    transactions: list[TransactionToSign]


class CreditPublic(BaseModel):
    """What the caller can withdraw from TradeEscrow."""

    address: str
    credit: str = Field(description="Wei as a decimal string.")


class WithdrawalResult(BaseModel):
    """A withdrawal: the write owed (custodial, 202) or the transaction to sign (200)."""

    credit: str
    writes: list[TradeWrite]
    transactions: list[TransactionToSign]


# --- Arbiters ------------------------------------------------------------------------------

ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(text_block)]


class ArbiterProfile(Strict):
    """What parties choose an arbiter by (public)."""

    summary: Annotated[str, Field(min_length=1, max_length=DESCRIPTION_MAX)] = Field()
    languages: list[ShortText] = Field(default_factory=list, max_length=20)
    jurisdictions: list[ShortText] = Field(default_factory=list, max_length=20)
    fee_note: Annotated[str, Field(max_length=500)] = ""
    contact: Annotated[str, Field(max_length=500)] = ""

    @field_validator("summary", "fee_note", "contact")
    @classmethod
    def _text(cls, value: str) -> str:
        return text_block(value)


class ArbiterCreate(Strict):
    """Register the calling arbiter organization, with its profile and declared ties."""

    display_name: ShortText
    profile: ArbiterProfile
    ties: list[int] = Field(
        default_factory=list,
        max_length=100,
        description="Organizations (ids) it is tied to: never proposed in their trades.",
    )


class ArbiterTieCreate(Strict):
    """The operator flags an arbiter as tied to an organization."""

    organization_id: int = Field(ge=1, le=UINT64_MAX)
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(text_block)]


class ArbiterPath(BaseModel):
    """An arbiter named by its id."""

    arbiter_id: int = Field(ge=1, le=UINT64_MAX)


class ArbiterTiePublic(BaseModel):
    """One tie of an arbiter."""

    organization_id: int
    reason: str
    created_at: UtcDatetime


class ArbiterPublic(BaseModel):
    """An arbiter's public profile."""

    id: int
    organization_id: int
    address: str
    display_name: str
    profile: dict[str, Any]
    profile_uri: str
    registered: str = Field(description="Its on-chain registration: owed, confirmed or failed.")
    created_at: UtcDatetime
    retired_at: UtcDatetime | None
    ties: list[ArbiterTiePublic]


class ArbiterList(BaseModel):
    """Arbiters not retired, by id."""

    items: list[ArbiterPublic]


class ArbiterRegistered(BaseModel):
    """A registration: the profile, and the transaction a self-custody arbiter signs."""

    arbiter: ArbiterPublic
    transactions: list[TransactionToSign]


class TradeRecordPath(BaseModel):
    """One record of a trade's details, by its sequence (1, 2, ...)."""

    trade_id: int = Field(ge=1, le=UINT64_MAX)
    sequence: int = Field(ge=1, le=UINT64_MAX)


class TradeContactDetails(Strict):
    """A party's own contact and delivery details for one trade; at least one field."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, min_length=1, max_length=2000)
    phone: str | None = Field(default=None, min_length=1, max_length=50)
    email: str | None = Field(
        default=None, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"
    )
    note: str | None = Field(default=None, min_length=1, max_length=2000)


class TradeRecordCreate(Strict):
    """Add one record to a trade's details, sealed under the trade's own key.

    `details`: the caller's own contact and delivery details (parties only). `message`: `text`.
    `photo` (image/jpeg or image/png) and `evidence` (any of image/jpeg, image/png,
    application/pdf, text/plain): `data` as base64 with its `content_type`, at most 2 MiB
    decoded. Text is at most 20,000 bytes of UTF-8.
    """

    kind: TradeRecordKind
    details: TradeContactDetails | None = None
    text: str | None = Field(default=None, min_length=1, max_length=TRADE_TEXT_MAX_BYTES)
    content_type: TradeContentType | None = None
    data: str | None = Field(
        default=None, min_length=4, max_length=_TRADE_FILE_MAX_BASE64, description="Base64."
    )


class TradeRecordPublic(BaseModel):
    """One record of a trade's details, decrypted for a party or the accepted arbiter."""

    sequence: int
    kind: TradeRecordKind
    content_type: str
    author_organization_id: int
    author_role: str = Field(description="seller, buyer or arbiter")
    size: int = Field(description="Bytes of content.")
    created_at: UtcDatetime
    details_hash: str = Field(description="The details hash after this record (0x-hex).")
    details: TradeContactDetails | None = None
    text: str | None = None
    content_url: str | None = Field(
        default=None, description="Where a photo's or evidence's bytes are (GET)."
    )
    data: str | None = Field(default=None, description="A file's bytes as base64 (export only).")
    intact: bool = Field(
        default=True, description="False when the stored record does not open (or was erased)."
    )


class TradeDetailsPublic(BaseModel):
    """A trade's details as the caller may read them."""

    trade_id: int
    role: str = Field(description="The caller's role in the trade: seller, buyer or arbiter.")
    details_hash: str | None = Field(description="The last details hash owed on-chain (0x-hex).")
    records: list[TradeRecordPublic]


class TradeAccessPublic(BaseModel):
    """One access to a trade's details (or a refusal)."""

    organization_id: int
    role: str
    action: str = Field(description="read, export, write, erase or refused")
    record_sequence: int | None
    at: UtcDatetime


class TradeAccessLog(BaseModel):
    """Every access to a trade's details, oldest first; kept after erasure."""

    trade_id: int
    items: list[TradeAccessPublic]


class TradeDetailsExport(BaseModel):
    """Everything the caller may read of a trade's details, and its access log, at once."""

    trade_id: int
    role: str
    exported_at: UtcDatetime
    erased_at: UtcDatetime | None
    details_hash: str | None
    records: list[TradeRecordPublic]
    access_log: list[TradeAccessPublic]


class TradeErasure(BaseModel):
    """A trade's details erased: the key destroyed, the ciphertexts gone; the hash stays."""

    trade_id: int
    erased_at: UtcDatetime
    erased_by_organization_id: int
    records_erased: int
    details_hash: str | None = Field(description="Still on-chain; it proves nothing about content.")


class LegalHoldCreate(Strict):
    """Keep a trade's details from erasure until `until` (an operator, for a legal duty)."""

    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class LegalHoldPublic(BaseModel):
    """A trade's legal hold."""

    trade_id: int
    until: UtcDatetime
    reason: str
    set_at: UtcDatetime
