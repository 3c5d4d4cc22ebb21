"""Organizations: a secp256k1 identity held encrypted, and API keys shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from eth_account import Account
from sqlmodel import Session, select

from provenance_api.keys import KeyBox
from provenance_api.models import ApiKey, Organization, OrganizationCreate, OrganizationPublic
from provenance_api.services.errors import Conflict, Unauthorized

API_KEY_PREFIX = "pk_"


@dataclass(frozen=True)
class NewOrganization:
    """A created organization and its API key in clear (the only time it is visible)."""

    organization: OrganizationPublic
    api_key: str


def create_organization(
    session: Session, keybox: KeyBox, data: OrganizationCreate
) -> NewOrganization:
    """Create an organization with a fresh key pair (sealed by `keybox`) and a first API key."""
    account = Account.create()
    existing = session.exec(select(Organization).where(Organization.name == data.name)).first()
    if existing is not None:
        raise Conflict(f"organization {data.name!r} already exists", {"name": "already taken"})
    org = Organization(
        name=data.name,
        kind=data.kind,
        address=account.address,
        encrypted_key=keybox.seal(bytes(account.key), account.address),
    )
    session.add(org)
    session.flush()
    assert org.id is not None
    plain = issue_api_key(session, org.id)
    return NewOrganization(OrganizationPublic.model_validate(org), plain)


def issue_api_key(session: Session, organization_id: int) -> str:
    """A new API key for an organization; only its prefix and SHA-256 are stored."""
    prefix = secrets.token_hex(6)
    plain = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(organization_id=organization_id, prefix=prefix, sha256=_digest(plain)))
    session.flush()
    return plain


def authenticate(session: Session, presented: str) -> Organization:
    """The organization owning API key `presented`; Unauthorized if unknown or revoked."""
    body = presented.removeprefix(API_KEY_PREFIX)
    prefix, _, _ = body.partition("_")
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if (
        key is None
        or key.revoked_at is not None
        or not hmac.compare_digest(key.sha256, _digest(presented))
    ):
        raise Unauthorized("invalid or revoked API key")
    org = session.get(Organization, key.organization_id)
    if org is None:
        raise Unauthorized("invalid or revoked API key")
    return org


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()
