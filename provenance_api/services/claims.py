"""Claims: a buyer takes an item's passport from its owner with the owner's one-time code.

At the sale the owner (the seller: an organization whose key the API holds) makes a code for
the item; the buyer, who has no account, sends it back with an address. The passport then
moves through the ordinary consent transfer (services.transfers), signed with the seller's
key, and the code is spent in the same transaction. A buyer without a wallet first has one
made with the code (`make_wallet`), which spends and moves nothing, then claims to its
address: the passport never moves to a key that only a lost answer held. Only the code's
SHA-256 is stored; one code per item is live, and it is void once the item has moved by other
means.

A wrong, expired, spent or replaced code, and an unknown item, get one and the same answer, so
that a guesser learns nothing from it. Every attempt on an item is counted in SQL before its
code is looked at (`ClaimRepository.reserve_attempt`), so that across workers and hosts no more
than CLAIM_ATTEMPTS are checked per CLAIM_WINDOW_SECONDS; a claim that succeeds clears the
count. With 80-bit codes that leaves a guesser nothing.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_account import Account

from provenance_api import claim_codes
from provenance_api.keys import KeyBox
from provenance_api.models import ClaimCode
from provenance_api.schemas import (
    ClaimCodeCreated,
    ClaimCodeList,
    ClaimCodePublic,
    ClaimCodeState,
    ClaimCreate,
    ClaimPublic,
    TransferPublic,
    WalletCreate,
    WalletPublic,
    as_utc,
)
from provenance_api.services import transfers
from provenance_api.services.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    TooManyAttempts,
)
from provenance_api.services.ports import UnitOfWork

# scrypt's cost for the keystore of a key made for a buyer: 128 MiB and about 0.3 s on one
# core, between geth's "light" (2**12) and standard (2**18) settings. The keystore is the only
# thing that protects the buyer's key wherever they keep it; the cost is paid only after a
# valid code, so guessers cannot make the service pay it.
KEYSTORE_SCRYPT_N = 2**17
_NO_CODE = "0" * 64  # compared against when the item has no live code
REFUSED = (
    "this code does not claim this item: it may be mistyped, expired, already used or "
    "replaced by a newer one; check it, or ask the seller for a new code"
)


@dataclass(frozen=True)
class ClaimLimits:
    """How long codes live, and how many attempts per item a window allows (CLAIM_*)."""

    code_days: int
    attempts: int
    window_seconds: int


def create_code(
    uow: UnitOfWork,
    organization_id: int,
    gtin: str,
    serial: str,
    limits: ClaimLimits,
    now: datetime,
    random: bytes,
) -> ClaimCodeCreated:
    """A new one-time code for the caller's item (`random`: claim_codes.RANDOM_BYTES bytes).

    The caller must be the item's current owner (404 if it never held it, 409 if it no longer
    does) and an organization whose key the API holds, since the API signs its consent when
    the buyer claims. The item's earlier unused code is revoked and its attempts forgotten.
    """
    shown = claim_codes.new_code(random)
    with uow:
        item, owner = transfers.owned_item(uow, organization_id, gtin, serial)
        if owner.encrypted_key is None:
            raise InvalidInput(
                "your organization holds its own key, so the API cannot consent for it when a "
                "buyer claims: transfer the item with POST /v1/transfers and your signature",
                {"serial": "the owner holds its own key"},
            )
        assert item.id is not None
        replaced = uow.claims.revoke_live(item.id, now) > 0
        uow.claims.clear_attempts(item.id)
        code = uow.claims.add(
            ClaimCode(
                item_id=item.id,
                organization_id=organization_id,
                sha256=claim_codes.digest(claim_codes.normalize(shown)),
                created_at=now,
                expires_at=now + timedelta(days=limits.code_days),
            )
        )
        uow.commit()  # a concurrent new code of the item clashes here: 409
    return ClaimCodeCreated(
        gtin=item.gtin,
        serial=item.serial,
        code=shown,
        created_at=code.created_at,
        expires_at=code.expires_at,
        replaced=replaced,
    )


def list_codes(
    uow: UnitOfWork, organization_id: int, gtin: str, serial: str, now: datetime
) -> ClaimCodeList:
    """The codes the caller made for the item (never the codes themselves), newest first.

    For the item's supplier and the parties to its transfers, like its passport; anyone else
    gets 404.
    """
    with uow:
        item, _ = transfers.readable_item(uow, organization_id, gtin, serial)
        assert item.id is not None
        codes = uow.claims.of_item(item.id, organization_id)
        return ClaimCodeList(items=[_code_public(code, now) for code in codes])


def _code_public(code: ClaimCode, now: datetime) -> ClaimCodePublic:
    if code.used_at is not None:
        state = ClaimCodeState.USED
    elif code.revoked_at is not None:
        state = ClaimCodeState.REVOKED
    elif as_utc(code.expires_at) <= now:
        state = ClaimCodeState.EXPIRED
    else:
        state = ClaimCodeState.LIVE
    return ClaimCodePublic(
        state=state,
        created_at=code.created_at,
        expires_at=code.expires_at,
        used_at=code.used_at,
        revoked_at=code.revoked_at,
    )


def make_wallet(
    uow: UnitOfWork, data: WalletCreate, limits: ClaimLimits, now: datetime
) -> WalletPublic:
    """A new key for the buyer to claim with, encrypted under `data.passphrase`, once.

    The code is checked as `claim` checks it (an attempt counted, the same refusal, the same
    429) but not spent, and nothing moves: the passport goes to the new address only by a
    claim to it, once the buyer has saved the key. A lost answer so costs nothing; the buyer
    makes another. scrypt (128 MiB, ~0.3 s) runs only after the code checked out, so that
    guessers cannot make the service pay it, and the throttle bounds how often a holder can.

    Nothing is stored: the service must not hold buyers' keys. A copy here would let anyone
    who breaks into the service, or compels it, move every buyer's passport, and the buyer's
    title would be only as good as our word.
    """
    try:
        _admit(uow, data.gtin, data.serial, data.code, limits, now)
    except _Refused:
        raise _refused() from None
    account = Account.create()
    keystore = Account.encrypt(
        account.key, data.passphrase, kdf="scrypt", iterations=KEYSTORE_SCRYPT_N
    )
    return WalletPublic(address=account.address, keystore=keystore)


def claim(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: transfers.PassportDomain,
    data: ClaimCreate,
    limits: ClaimLimits,
    now: datetime,
) -> ClaimPublic:
    """Move the item's passport to `data.address`, the buyer who holds its code; the code is
    spent with it.

    A claim whose code was already spent by a claim to this same address is answered with
    that claim (`replayed`): the caller holds both already, so nothing leaks, and a client
    that lost the first answer can retry safely. Any other use of a spent code is refused.

    Plain values in, a typed answer out: the JSON route and a web form call it alike (a form
    builds `ClaimCreate` from its fields and shows the error's `fields`).
    """
    try:
        code_id, seller_id = _admit(uow, data.gtin, data.serial, data.code, limits, now)
        for _ in range(transfers.ATTEMPTS):
            try:
                moved = _take(uow, keybox, domain, data, code_id, seller_id, now)
            except transfers.Clash:
                continue
            return ClaimPublic(owner_address=data.address, transfer=moved)
    except _Refused:
        # Run for every refusal, whatever its cause, so that its cost does not tell them
        # apart; it also catches a retry that raced the first claim and lost to it.
        replayed = _replay(uow, data)
        if replayed is None:
            raise _refused() from None
        return ClaimPublic(owner_address=data.address, transfer=replayed, replayed=True)
    raise Conflict(
        f"item {data.gtin}/{data.serial} was transferred concurrently; try again",
        {"serial": "transferred concurrently"},
    )


class _Refused(Exception):
    """The code does not claim the item now (becomes the uniform refusal, or a replay)."""


def _refused() -> InvalidInput:
    return InvalidInput(REFUSED, {"code": "not valid for this item"})


def _admit(
    uow: UnitOfWork, gtin: str, serial: str, typed: str, limits: ClaimLimits, now: datetime
) -> tuple[int, int]:
    """Count the attempt, then check the code: (code id, seller), or _Refused."""
    with uow:
        item = uow.items.get(gtin, serial)
        if item is None or item.id is None:
            raise _Refused
        retry_at = uow.claims.reserve_attempt(item.id, now, limits.attempts, limits.window_seconds)
        if retry_at is not None:
            seconds = math.ceil((retry_at - now).total_seconds())
            raise TooManyAttempts(
                f"too many attempts to claim this item; try again in {seconds} seconds",
                seconds,
                {"code": "too many attempts"},
            )
        # Every check runs whatever the others found, so that the time taken does not tell
        # a wrong code from a spent or expired one either.
        code = uow.claims.live(item.id)
        owner = transfers.owner_id(uow, item)
        # A seller that took its key back since cannot consent: its code is void (and a
        # wallet made with it could claim nothing).
        seller = uow.organizations.get(owner) if owner is not None else None
        stored = code.sha256 if code is not None else _NO_CODE
        matches = hmac.compare_digest(stored, claim_codes.digest(typed))
        valid = (
            code is not None
            and matches
            and as_utc(code.expires_at) > now
            and owner == code.organization_id
            and seller is not None
            and seller.encrypted_key is not None
        )
        uow.commit()  # the attempt stays counted, whatever the answer
    if not valid:
        raise _Refused
    assert code is not None and code.id is not None
    return code.id, code.organization_id


def _replay(uow: UnitOfWork, data: ClaimCreate) -> TransferPublic | None:
    """The transfer by which this code, already spent, moved the item to `data.address`."""
    with uow:
        item = uow.items.get(data.gtin, data.serial)
        if item is None or item.id is None:
            return None
        typed = claim_codes.digest(data.code)
        codes = uow.claims.spent(item.id)
        spent = {c.transfer_id for c in codes if hmac.compare_digest(c.sha256, typed)}
        # Without the spent code nothing matches, and the work done depends only on the
        # item's history, not on what was typed: a guesser learns nothing from its time.
        for row in uow.transfers.of_item(item.id):
            if row.id in spent and row.to_address.lower() == data.address.lower():
                return transfers.public_transfer(uow, item, row)
        return None


def _take(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: transfers.PassportDomain,
    data: ClaimCreate,
    code_id: int,
    seller_id: int,
    now: datetime,
) -> TransferPublic:
    """The transfer and the spent code in one transaction; Clash when a concurrent one won."""
    with uow:
        item = uow.items.get(data.gtin, data.serial)
        assert item is not None and item.id is not None
        code = uow.claims.live(item.id)
        if code is None or code.id != code_id:
            raise _Refused  # spent or replaced since it was checked
        try:
            moved, row = transfers.record_claimed(
                uow,
                keybox,
                domain,
                seller_id,
                item.gtin,
                item.serial,
                data.address,
                int(now.timestamp()),
            )
        except (NotFound, Conflict):
            raise _Refused from None  # the seller no longer owns it: the code is void
        except InvalidInput as exc:
            if "to_address" in exc.fields:
                raise InvalidInput(exc.message, {"address": exc.fields["to_address"]}) from None
            # The seller has taken its key back since: the API can no longer consent for it.
            raise _Refused from None
        assert row.id is not None
        if not uow.claims.consume(code_id, now, row.id):
            raise _Refused  # a concurrent claim spent it first
        uow.claims.clear_attempts(item.id)
        try:
            uow.commit()
        except Conflict:
            raise transfers.Clash from None
    return moved
