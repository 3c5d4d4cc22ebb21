"""Organizations' wallets: the operator pays a custodial organization coin; balances are read.

An organization the service signs for pays its own gas and deposits, so it needs coin; the
operator sends it as an owed write (a plain payment), mined by the chain writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from sqlmodel import Session

from provenance_api import outbox
from provenance_api.models import ChainWrite, Organization
from provenance_api.services.chain_writes import owe_write
from provenance_api.services.errors import InvalidInput, NotFound

WEI_PER_ETHER = 10**18
MAX_WEI = 2**256 - 1


def parse_amount(ether: str | None = None, wei: str | None = None) -> int:
    """Wei from exactly one of `ether` (decimal, at most 18 places) or `wei` (whole number).

    >>> parse_amount(ether="1.5"), parse_amount(wei="7")
    (1500000000000000000, 7)
    """
    if (ether is None) == (wei is None):
        raise InvalidInput("give the amount in ether or in wei", {"amount": "ether or wei"})
    field, text = ("ether", ether) if ether is not None else ("wei", wei)
    assert text is not None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidInput(f"{text!r} is not a number", {field: "not a number"}) from None
    if not number.is_finite():
        raise InvalidInput(f"{text!r} is not a number", {field: "not a number"})
    with localcontext() as exact:
        exact.prec = 200  # any uint256 of wei, with its 18 decimals, without rounding
        amount = number * WEI_PER_ETHER if field == "ether" else number
    if amount != amount.to_integral_value():
        raise InvalidInput(f"{text} {field} is not a whole number of wei", {field: "too precise"})
    if not 0 < amount <= MAX_WEI:
        raise InvalidInput(f"{text} {field} is not a positive uint256 of wei", {field: "range"})
    return int(amount)


def organization(session: Session, organization_id: int) -> Organization:
    """The organization `organization_id`, or NotFound."""
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id}", {"organization_id": "not found"})
    return org


def fund_organization(
    session: Session,
    organization_id: int,
    wei: int,
    *,
    operator: str,
    idempotency_key: str | None = None,
) -> ChainWrite:
    """Owe a payment of `wei` from the operator to the organization's address.

    Without `idempotency_key`, every call is a new payment.
    """
    org = organization(session, organization_id)
    if not 0 < wei <= MAX_WEI:
        raise InvalidInput(f"{wei} wei is not a positive uint256", {"wei": "range"})
    return owe_write(
        session,
        sender=operator,
        contract=outbox.COIN,
        function=outbox.PAY,
        args=[org.address],
        value=wei,
        idempotency_key=idempotency_key or f"fund:{org.id}:{uuid.uuid4().hex}",
    )


@dataclass(frozen=True)
class Wallet:
    """An organization's address, whether the service holds its key, and its coin."""

    organization_id: int
    address: str
    custodial: bool
    wei: int

    def as_json(self) -> dict[str, Any]:
        """JSON fields; amounts as decimal strings (JavaScript numbers lose wei)."""
        return {
            "organization_id": self.organization_id,
            "address": self.address,
            "custodial": self.custodial,
            "wei": str(self.wei),
            "ether": ether_text(self.wei),
        }


def wallet(session: Session, organization_id: int, balance_of: Callable[[str], int]) -> Wallet:
    """The wallet of organization `organization_id`; `balance_of` reads an address's wei."""
    org = organization(session, organization_id)
    assert org.id is not None
    return Wallet(org.id, org.address, org.encrypted_key is not None, int(balance_of(org.address)))


def ether_text(wei: int) -> str:
    """`wei` in ether, exactly, without trailing zeros.

    >>> ether_text(1500000000000000000), ether_text(1), ether_text(0)
    ('1.5', '0.000000000000000001', '0')
    """
    whole, fraction = divmod(wei, WEI_PER_ETHER)
    digits = f"{fraction:018d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
