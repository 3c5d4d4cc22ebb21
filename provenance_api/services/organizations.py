"""Organizations, operators and API keys: who a caller is, and the keys they hold.

An API key is shown once, when it is made; only its prefix and SHA-256 are stored. Rotation
is create-then-revoke: a new key works at once and the old one until it is revoked. Revoking
the caller's last active key is refused unless the caller says `allow_last`, so that nobody
locks themselves out by accident.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from eth_account import Account

from provenance_api.keys import KeyBox
from provenance_api.models import (
    OperatorAccount,
    Organization,
    OrganizationCreate,
    OrganizationPublic,
    organization_name,
    utcnow,
)
from provenance_api.schemas import (
    ApiKeyCreated,
    ApiKeyPage,
    ApiKeyPublic,
    MePublic,
    OperatorPublic,
    OrganizationPage,
    Role,
)
from provenance_api.services.errors import Conflict, InvalidInput, NotFound, Unauthorized
from provenance_api.services.ports import KeyRecord, Owner, OwnerKind, UnitOfWork

API_KEY_PREFIX = "pk_"
MAX_ACTIVE_KEYS = 10


@dataclass(frozen=True)
class NewOrganization:
    """A created organization and its API key in clear (the only time it is visible)."""

    organization: OrganizationPublic
    api_key: str


@dataclass(frozen=True)
class NewOperator:
    """A created operator account and its API key in clear (the only time it is visible)."""

    operator: OperatorPublic
    api_key: str


@dataclass(frozen=True)
class Caller:
    """Who sent a request: role, key owner, and the tenant (organization) if any."""

    role: Role
    owner: Owner
    key_prefix: str

    @property
    def organization_id(self) -> int | None:
        """The caller's organization; None for an operator."""
        return self.owner.id if self.owner.kind is OwnerKind.ORGANIZATION else None


def create_organization(
    uow: UnitOfWork, keybox: KeyBox, data: OrganizationCreate
) -> NewOrganization:
    """Create an organization with a fresh key pair (sealed by `keybox`) and a first API key."""
    account = Account.create()
    with uow:
        if uow.organizations.by_name(data.name) is not None:
            raise Conflict(f"organization {data.name!r} already exists", {"name": "already taken"})
        org = uow.organizations.add(
            Organization(
                name=data.name,
                kind=data.kind,
                address=account.address,
                encrypted_key=keybox.seal(bytes(account.key), account.address),
            )
        )
        assert org.id is not None
        plain = _issue(uow, Owner(OwnerKind.ORGANIZATION, org.id))
        public = OrganizationPublic.model_validate(org)
        uow.commit()
    return NewOrganization(public, plain.api_key)


def list_organizations(uow: UnitOfWork, after: int | None, limit: int) -> OrganizationPage:
    """One page of organizations by id."""
    with uow:
        rows = list(uow.organizations.page(after, limit + 1))
        items = [OrganizationPublic.model_validate(row) for row in rows[:limit]]
    return OrganizationPage(items=items, next=items[-1].id if len(rows) > limit else None)


def create_operator(uow: UnitOfWork, name: str) -> NewOperator:
    """Create an account for one of the service's staff, with its first API key."""
    try:
        name = organization_name(name)
    except ValueError as exc:
        raise InvalidInput(f"invalid operator name: {exc}", {"name": str(exc)}) from None
    with uow:
        if uow.operators.by_name(name) is not None:
            raise Conflict(f"operator {name!r} already exists", {"name": "already taken"})
        operator = uow.operators.add(OperatorAccount(name=name))
        assert operator.id is not None
        plain = _issue(uow, Owner(OwnerKind.OPERATOR, operator.id))
        public = OperatorPublic.model_validate(operator, from_attributes=True)
        uow.commit()
    return NewOperator(public, plain.api_key)


def authenticate(uow: UnitOfWork, presented: str) -> Caller:
    """The caller holding API key `presented`; Unauthorized if unknown or revoked."""
    prefix = _prefix_of(presented)
    with uow:
        key = uow.api_keys.by_prefix(prefix) if prefix else None
        if (
            key is None
            or key.revoked_at is not None
            or not hmac.compare_digest(key.sha256, _digest(presented))
        ):
            raise Unauthorized("invalid or revoked API key")
        if key.owner.kind is OwnerKind.OPERATOR:
            return Caller(Role.OPERATOR, key.owner, key.prefix)
        org = uow.organizations.get(key.owner.id)
        if org is None:
            raise Unauthorized("invalid or revoked API key")
        return Caller(Role(org.kind), key.owner, key.prefix)


def resume(uow: UnitOfWork, organization_id: int, key_prefix: str) -> Caller:
    """The organization a browser signed in as with key `key_prefix`, if that key still works.

    The web pages keep only these two values in their session cookie, never the key: a key
    revoked since (or an organization's key that is not this organization's) ends the session.
    """
    with uow:
        key = uow.api_keys.by_prefix(key_prefix)
        if (
            key is None
            or key.revoked_at is not None
            or key.owner != Owner(OwnerKind.ORGANIZATION, organization_id)
        ):
            raise Unauthorized("signed out: the API key was revoked")
        org = uow.organizations.get(organization_id)
        if org is None:
            raise Unauthorized("signed out: the API key was revoked")
        return Caller(Role(org.kind), key.owner, key.prefix)


def me(uow: UnitOfWork, caller: Caller) -> MePublic:
    """What the caller's key says about the caller."""
    with uow:
        if caller.owner.kind is OwnerKind.OPERATOR:
            operator = uow.operators.get(caller.owner.id)
            if operator is None:
                raise Unauthorized("invalid or revoked API key")
            shown = OperatorPublic.model_validate(operator, from_attributes=True)
            return MePublic(role=caller.role, key_prefix=caller.key_prefix, operator=shown)
        org = uow.organizations.get(caller.owner.id)
        if org is None:
            raise Unauthorized("invalid or revoked API key")
        return MePublic(
            role=caller.role,
            key_prefix=caller.key_prefix,
            organization=OrganizationPublic.model_validate(org),
        )


def create_api_key(uow: UnitOfWork, owner: Owner) -> ApiKeyCreated:
    """A new API key for `owner`, shown once; at most MAX_ACTIVE_KEYS active at a time."""
    with uow:
        if uow.api_keys.count_active(owner) >= MAX_ACTIVE_KEYS:
            raise Conflict(
                f"at most {MAX_ACTIVE_KEYS} API keys may be active; revoke one first",
                {"api_key": "too many active keys"},
            )
        created = _issue(uow, owner)
        uow.commit()
    return created


def list_api_keys(uow: UnitOfWork, owner: Owner, after: str | None, limit: int) -> ApiKeyPage:
    """One page of `owner`'s keys (revoked ones included), by prefix."""
    with uow:
        rows = list(uow.api_keys.page(owner, after, limit + 1))
    items = [_public(row) for row in rows[:limit]]
    return ApiKeyPage(items=items, next=items[-1].prefix if len(rows) > limit else None)


def revoke_api_key(
    uow: UnitOfWork, owner: Owner, prefix: str, *, allow_last: bool = False
) -> ApiKeyPublic:
    """Revoke `owner`'s key `prefix` from this moment; another owner's key is NotFound.

    Revoking a key already revoked changes nothing. The last active key goes only with
    `allow_last`: without a key the owner can no longer use the API at all.
    """
    with uow:
        key = uow.api_keys.by_prefix(prefix)
        if key is None or key.owner != owner:
            raise NotFound(f"no API key with prefix {prefix!r}", {"prefix": "not found"})
        if key.revoked_at is None:
            if not allow_last and uow.api_keys.count_active(owner) <= 1:
                raise Conflict(
                    "this is the last active API key: create another first, "
                    "or pass allow_last=true to revoke it anyway",
                    {"prefix": "last active key"},
                )
            uow.api_keys.revoke(prefix, utcnow())
            uow.commit()
            key = uow.api_keys.by_prefix(prefix)
            assert key is not None
    return _public(key)


def _issue(uow: UnitOfWork, owner: Owner) -> ApiKeyCreated:
    prefix = secrets.token_hex(6)
    plain = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(owner=owner, prefix=prefix, sha256=_digest(plain), created_at=utcnow())
    uow.api_keys.add(record)
    return ApiKeyCreated(**_public(record).model_dump(), api_key=plain)


def _public(record: KeyRecord) -> ApiKeyPublic:
    return ApiKeyPublic(
        prefix=record.prefix,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        active=record.revoked_at is None,
    )


def _prefix_of(presented: str) -> str:
    body = presented.removeprefix(API_KEY_PREFIX)
    prefix, _, _ = body.partition("_")
    return prefix[:16]


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()
