"""API shapes: what callers send and get back, as typed pydantic models (no secrets stored).

The checks here are pure: a GTIN is normalized to 14 digits, an image URL must be https,
attributes are a small JSON object. The OpenAPI document is generated from these models.
"""

from __future__ import annotations

import enum
import json
import math
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from eth_utils import to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from firmware_tools.errors import GS1Error
from firmware_tools.formats.gs1 import normalize_gtin
from provenance_api.models import (
    OrganizationCreate,
    OrganizationPublic,
    OrgKind,
    organization_name,
)

PAGE_LIMIT_MAX = 200
PAGE_LIMIT_DEFAULT = 50
NAME_MAX = 200
DESCRIPTION_MAX = 2000
IMAGE_URL_MAX = 2048
ATTRIBUTES_MAX_BYTES = 4096
ATTRIBUTES_MAX_DEPTH = 4
ATTRIBUTE_KEY_MAX = 64


class Role(enum.StrEnum):
    """Who a caller is: an organization's kind, or the service's own staff."""

    SUPPLIER = OrgKind.SUPPLIER.value
    CARRIER = OrgKind.CARRIER.value
    WAREHOUSE = OrgKind.WAREHOUSE.value
    RETAILER = OrgKind.RETAILER.value
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


def eth_address(value: str) -> str:
    """A 0x address, EIP-55 checksummed or all one case, as its checksummed form.

    Mixed case is a checksum (EIP-55): one mistyped letter is caught rather than registering
    an address nobody holds the key of.
    """
    digits = value[2:]
    checksummed = to_checksum_address(value)
    if digits not in (digits.lower(), digits.upper()) and value != checksummed:
        raise ValueError("mixed-case address with a wrong EIP-55 checksum (mistyped?)")
    if not int(digits, 16):
        raise ValueError("the zero address has no key; nobody can sign for it")
    return checksummed


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
    after: int = Field(default=None, ge=0)  # type: ignore[assignment]


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
