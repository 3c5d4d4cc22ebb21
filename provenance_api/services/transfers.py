"""Ownership transfers: an item's passport moves from its current owner under its EIP-712 consent.

The database decides at once: an item's owner is the `to` of its last transfer, or its supplier
before the first; a transfer by anyone else is refused (409 for a party that held it, 404 for
everyone else, who is not told it exists). The chain follows: each transfer owes one write to
ProductPassport in the same transaction. The first transfer mints the passport straight to the
new owner under the supplier's MintConsent (one transaction; the product's supplier is recorded
on-chain once per GTIN before its first mint); later ones relay the owner's TransferConsent.

Consent nonces are predicted from the database: the contract spends each signer's nonces in
order, and every consent the API relays is recorded here with its nonce, so the next one is the
highest recorded plus one. `(item, sequence)` and `(signer, nonce)` are unique: of two
concurrent transfers of one item exactly one commits, the other is refused with 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contracts_abi import eip712
from contracts_abi.passport import passport_id, tag_commitment
from provenance_api.keys import KeyBox
from provenance_api.models import Item, Organization, OwnershipTransfer
from provenance_api.schemas import (
    PassportMint,
    PassportPublic,
    TransferCreate,
    TransferList,
    TransferPublic,
)
from provenance_api.services.errors import Conflict, InvalidInput, NotFound
from provenance_api.services.ports import ChainState, UnitOfWork

PASSPORT = "ProductPassport"
CONSENT_SECONDS = 24 * 3600  # default validity of a consent the API signs
# A concurrent transfer by the same signer (of another item) can take the nonce first; the
# retry reads the next one. A concurrent transfer of the same item is refused on the retry.
ATTEMPTS = 3


@dataclass(frozen=True)
class PassportDomain:
    """Where consents are valid: the chain and the ProductPassport deployed on it."""

    chain_id: int
    address: str


@dataclass(frozen=True)
class _Move:
    """What the caller asked: the new owner and, for an owner with its own key, its consent."""

    gtin: str
    serial: str
    to_organization_id: int | None
    to_address: str | None
    deadline: int | None
    nonce: int | None
    signature: str | None
    passport_only: bool = False


def supplier_key(gtin: str) -> str:
    """Idempotency key of recording the supplier of `gtin` on-chain (once per GTIN)."""
    return f"passport-supplier:{gtin}"


def transfer_key(gtin: str, serial: str, sequence: int) -> str:
    """Idempotency key of the chain write of the item's `sequence`-th transfer."""
    return f"passport:{gtin}:{serial}:{sequence}"


def transfer(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: PassportDomain,
    organization_id: int,
    data: TransferCreate,
    now: int,
) -> TransferPublic:
    """Move the item's passport from the caller to `data`'s new owner; `now` in unix seconds."""
    if (data.to_organization_id is None) == (data.to_address is None):
        message = "name the new owner by to_organization_id or by to_address (one of them)"
        raise InvalidInput(message, {"to_organization_id": "exactly one of the two"})
    move = _Move(
        data.gtin,
        data.serial,
        data.to_organization_id,
        data.to_address,
        data.deadline,
        data.nonce,
        data.signature,
    )
    return _with_retries(uow, keybox, domain, organization_id, move, now)


def mint_passport(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: PassportDomain,
    organization_id: int,
    gtin: str,
    serial: str,
    data: PassportMint,
    now: int,
) -> TransferPublic:
    """Mint the item's passport to its supplier (the caller) before any transfer."""
    move = _Move(
        gtin, serial, None, None, data.deadline, data.nonce, data.signature, passport_only=True
    )
    return _with_retries(uow, keybox, domain, organization_id, move, now)


def list_transfers(uow: UnitOfWork, organization_id: int, gtin: str, serial: str) -> TransferList:
    """The item's transfers, for its supplier and the parties to any of them."""
    with uow:
        item, history = _item(uow, organization_id, gtin, serial)
        states = uow.ledger.states([row.idempotency_key for row in history])
        return TransferList(items=[_public(item, row, states) for row in history])


def get_passport(uow: UnitOfWork, organization_id: int, gtin: str, serial: str) -> PassportPublic:
    """The item's passport: owner and minted, for its supplier and the parties to a transfer."""
    with uow:
        item, history = _item(uow, organization_id, gtin, serial)
        if history:
            owner_id, owner_address = history[-1].to_organization_id, history[-1].to_address
        else:
            supplier = uow.organizations.get(item.organization_id)
            assert supplier is not None
            owner_id, owner_address = supplier.id, supplier.address
        return PassportPublic(
            gtin=item.gtin,
            serial=item.serial,
            token_id=hex(passport_id(item.gtin, item.serial)),
            tag_commitment="0x" + tag_commitment_of(item).hex(),
            owner_organization_id=owner_id,
            owner_address=owner_address,
            minted=bool(history),
            transfers=len(history),
        )


def readable_item(
    uow: UnitOfWork, organization_id: int, gtin: str, serial: str
) -> tuple[Item, list[OwnershipTransfer]]:
    """The item and its transfers, for its supplier and the parties to one; else 404."""
    return _item(uow, organization_id, gtin, serial)


def owned_item(
    uow: UnitOfWork, organization_id: int, gtin: str, serial: str
) -> tuple[Item, Organization]:
    """The item and its current owner, the caller: 404 if it never held it, 409 if no longer."""
    item, history = _item(uow, organization_id, gtin, serial)
    return item, _current_owner(uow, item, history, organization_id)


def owner_id(uow: UnitOfWork, item: Item) -> int | None:
    """The organization that owns the item now; None when a buyer's address does."""
    assert item.id is not None
    history = uow.transfers.of_item(item.id)
    return history[-1].to_organization_id if history else item.organization_id


def _with_retries(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: PassportDomain,
    organization_id: int,
    move: _Move,
    now: int,
) -> TransferPublic:
    for attempt in range(ATTEMPTS):
        try:
            return _move_once(uow, keybox, domain, organization_id, move, now)
        except Clash:
            if attempt == ATTEMPTS - 1:
                break
    raise Conflict(
        f"item {move.gtin}/{move.serial} or its owner's consent nonce was taken by a "
        "concurrent transfer; read the item's transfers and send it again",
        {"serial": "transferred concurrently"},
    )


class Clash(Exception):
    """A concurrent transfer stored the same (item, sequence) or (signer, nonce) first."""


def _move_once(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: PassportDomain,
    organization_id: int,
    move: _Move,
    now: int,
) -> TransferPublic:
    with uow:
        public, row = _record(uow, keybox, domain, organization_id, move, now)
        if not move.passport_only:
            # The seller's claim code (services.claims) dies with its title.
            uow.claims.revoke_live(row.item_id, datetime.fromtimestamp(now, UTC))
        try:
            uow.commit()
        except Conflict:
            raise Clash from None
    return public


def record_claimed(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: PassportDomain,
    organization_id: int,
    gtin: str,
    serial: str,
    to_address: str,
    now: int,
) -> tuple[TransferPublic, OwnershipTransfer]:
    """Record, in the caller's open unit of work (not committed), the owner's move to a buyer.

    The owner `organization_id` consents with the key the API holds (services.claims: the
    buyer presented the owner's claim code). Clash when a concurrent transfer came first.
    """
    move = _Move(gtin, serial, None, to_address, None, None, None)
    return _record(uow, keybox, domain, organization_id, move, now)


def _record(
    uow: UnitOfWork,
    keybox: KeyBox,
    domain: PassportDomain,
    organization_id: int,
    move: _Move,
    now: int,
) -> tuple[TransferPublic, OwnershipTransfer]:
    """The transfer's row and its owed chain writes, in `uow`'s transaction (not committed)."""
    item, history = _item(uow, organization_id, move.gtin, move.serial)
    owner = _current_owner(uow, item, history, organization_id)
    if move.passport_only:
        if history:
            raise Conflict(
                f"the passport of {move.gtin}/{move.serial} is already minted",
                {"serial": "passport already minted"},
            )
        to_organization_id, to_address = owner.id, owner.address
    else:
        to_organization_id, to_address = _destination(uow, move)
        if to_address == owner.address:
            raise InvalidInput(
                "the new owner is the current owner", {"to_address": "already the owner"}
            )
    deadline = move.deadline if move.deadline is not None else now + CONSENT_SECONDS
    if deadline <= now:
        raise InvalidInput(f"the deadline {deadline} has passed", {"deadline": "in the past"})
    sequence = len(history) + 1
    mints = sequence == 1
    token_id = passport_id(item.gtin, item.serial)
    tag = tag_commitment_of(item)
    nonce = uow.transfers.next_nonce(owner.address)
    consent = {
        "chain_id": domain.chain_id,
        "passport": domain.address,
        "to": to_address,
        "token_id": token_id,
        "nonce": nonce,
        "deadline": deadline,
    }
    if mints:
        consent["tag_commitment"] = tag
    signature = _consent(keybox, owner, move, consent, mints)
    key = transfer_key(item.gtin, item.serial, sequence)
    assert item.id is not None and owner.id is not None
    try:
        row = uow.transfers.add(
            OwnershipTransfer(
                item_id=item.id,
                sequence=sequence,
                from_organization_id=owner.id,
                from_address=owner.address,
                to_organization_id=to_organization_id,
                to_address=to_address,
                nonce=nonce,
                deadline=deadline,
                signature=signature,
                idempotency_key=key,
            )
        )
    except Conflict:
        raise Clash from None
    if mints:
        owe_mint(uow, item, owner.address, to_address, deadline, signature, key)
    else:
        args = [owner.address, to_address, token_id, deadline, signature]
        uow.ledger.owe(
            contract=PASSPORT, function="transferWithConsent", args=args, idempotency_key=key
        )
    return _public(item, row, uow.ledger.states([key])), row


def owe_mint(
    uow: UnitOfWork,
    item: Item,
    supplier: str,
    to_address: str,
    deadline: int,
    signature: bytes,
    key: str,
) -> None:
    """Owe the passport's mint to `to_address` under the supplier's MintConsent `signature`.

    The product's supplier is recorded on-chain first (once per GTIN), as mintWithConsent
    requires.
    """
    uow.ledger.owe(
        contract=PASSPORT,
        function="setSupplier",
        args=[item.gtin, supplier],
        idempotency_key=supplier_key(item.gtin),
    )
    args = [to_address, item.gtin, item.serial, tag_commitment_of(item), deadline, signature]
    uow.ledger.owe(contract=PASSPORT, function="mintWithConsent", args=args, idempotency_key=key)


def _item(
    uow: UnitOfWork, organization_id: int, gtin: str, serial: str
) -> tuple[Item, list[OwnershipTransfer]]:
    """The item and its transfers, if the caller is its supplier or a party to one; else 404."""
    item = uow.items.get(gtin, serial)
    history = list(uow.transfers.of_item(item.id)) if item is not None and item.id else []
    parties = {item.organization_id} if item is not None else set()
    parties |= {row.from_organization_id for row in history}
    parties |= {row.to_organization_id for row in history if row.to_organization_id}
    if item is None or organization_id not in parties:
        raise NotFound(f"no item with GTIN {gtin} and serial {serial!r}", {"serial": "not found"})
    return item, history


def _current_owner(
    uow: UnitOfWork, item: Item, history: list[OwnershipTransfer], organization_id: int
) -> Organization:
    assert item.id is not None
    # While a trade holds it (services.trades), the item changes hands only through it.
    live = uow.trades.live_of_item(item.id)
    if live is not None:
        raise Conflict(
            f"item {item.gtin}/{item.serial} is in trade {live.id} ({live.state}): it cannot "
            f"change hands outside it until the trade settles (GET /v1/trades/{live.id} "
            "reads its state from the chain)",
            {"serial": f"in trade {live.id}"},
        )
    owner_id = history[-1].to_organization_id if history else item.organization_id
    if owner_id != organization_id:
        raise Conflict(
            f"item {item.gtin}/{item.serial} is no longer yours: it was transferred",
            {"serial": "not the current owner"},
        )
    owner = uow.organizations.get(organization_id)
    if owner is None:
        raise NotFound(f"no organization {organization_id}")
    return owner


def _destination(uow: UnitOfWork, move: _Move) -> tuple[int | None, str]:
    if move.to_organization_id is not None:
        target = uow.organizations.get(move.to_organization_id)
        if target is None:
            raise NotFound(
                f"no organization {move.to_organization_id}",
                {"to_organization_id": "not found"},
            )
        return target.id, target.address
    assert move.to_address is not None
    # An organization named by its address is that organization: it then holds the item.
    target = uow.organizations.by_address(move.to_address)
    return (target.id if target is not None else None), move.to_address


def _consent(keybox: KeyBox, owner: Organization, move: _Move, consent: dict, mints: bool) -> bytes:
    """The owner's consent signature: checked when sent, made with its sealed key otherwise."""
    kind = "MintConsent" if mints else "TransferConsent"
    if move.signature is None:
        if move.nonce is not None:
            raise InvalidInput("nonce goes with signature", {"signature": "required with nonce"})
        if owner.encrypted_key is None:
            raise InvalidInput(
                f"your organization holds its own key: send signature, nonce and deadline "
                f"of the EIP-712 {kind} (nonce {consent['nonce']})",
                {"signature": "required"},
            )
        private_key = keybox.open(owner.encrypted_key, owner.address)
        sign = eip712.sign_mint_consent if mints else eip712.sign_transfer_consent
        return sign(private_key, **consent)
    if move.nonce is None or move.deadline is None:
        raise InvalidInput(
            "a signature needs the nonce and deadline it signs",
            {"nonce" if move.nonce is None else "deadline": "required with signature"},
        )
    if move.nonce != consent["nonce"]:
        raise Conflict(
            f"the next consent nonce of {owner.address} is {consent['nonce']}, not {move.nonce}",
            {"nonce": f"expected {consent['nonce']}"},
        )
    signature = bytes.fromhex(move.signature[2:])
    recover = (
        eip712.recover_mint_consent_signer if mints else eip712.recover_transfer_consent_signer
    )
    try:
        signer = recover(signature, **consent)
    except eip712.SignatureError as exc:
        raise InvalidInput(f"the signature is malformed: {exc}", {"signature": str(exc)}) from None
    if signer != owner.address:
        raise InvalidInput(
            f"the signature is not {owner.address}'s {kind} to this transfer "
            f"(nonce {consent['nonce']}, deadline {consent['deadline']})",
            {"signature": f"not the owner's {kind}"},
        )
    return signature


def public_transfer(uow: UnitOfWork, item: Item, row: OwnershipTransfer) -> TransferPublic:
    """One recorded transfer of the item as its parties see it, with its chain write's state."""
    return _public(item, row, uow.ledger.states([row.idempotency_key]))


def tag_commitment_of(item: Item) -> bytes:
    """The item's tag commitment, as its MintConsent and its passport carry it."""
    return tag_commitment(item.tag, bytes.fromhex(item.uid) if item.uid else None)


def _public(item: Item, row: OwnershipTransfer, states: dict[str, ChainState]) -> TransferPublic:
    return TransferPublic(
        gtin=item.gtin,
        serial=item.serial,
        token_id=hex(passport_id(item.gtin, item.serial)),
        sequence=row.sequence,
        mints=row.sequence == 1,
        from_organization_id=row.from_organization_id,
        from_address=row.from_address,
        to_organization_id=row.to_organization_id,
        to_address=row.to_address,
        nonce=row.nonce,
        deadline=row.deadline,
        signature="0x" + bytes(row.signature).hex(),
        tag_commitment="0x" + tag_commitment_of(item).hex(),
        created_at=row.created_at,
        chain=states.get(row.idempotency_key, _unowed_state(row)),
    )


def _unowed_state(row: OwnershipTransfer) -> ChainState:
    # A transfer without a consent is the escrow's move at a trade's settlement: the chain made
    # it before it was recorded (services.trades), so no write is owed for it.
    return ChainState.CONFIRMED if not row.signature else ChainState.OWED
