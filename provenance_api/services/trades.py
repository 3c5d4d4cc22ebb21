"""Trades: an item's passport sold through TradeEscrow, secured by both parties' deposits.

The chain decides a trade's state; the `trade` row indexes it and caches the last reading
(`refresh`, run whenever a trade is read or acted on). Every action is checked against that
reading first (services.trade_rules): what the contract would revert is refused with 409 and
a plain reason, and nothing is owed. A custodial organization's action owes a write that the
chain writer signs with its key (202); a self-custody organization gets the transactions to
sign itself (200). Each owed write has an idempotency key per trade, action and party, so a
retried request owes nothing twice.

Ownership (services.transfers' rule: the owner is the `to` of the item's last transfer, or its
supplier) stays consistent with the chain this way:

- While a trade on the item is live (not settled or failed), the item cannot be transferred
  and gets no claim code: 409 naming the trade (transfers' owner check asks `uow.trades`).
- A passport that was already minted enters the escrow by the seller's own approve + deposit:
  no transfer is recorded, the seller stays the owner in the database while it is escrowed.
- A passport not minted yet is minted straight into the escrow under the supplier's
  MintConsent, recorded as the item's first transfer (to the escrow's address): consent
  nonces are predicted from recorded transfers, so this one must be recorded.
- When the refresh sees a settlement that moved the passport away from the party the database
  names, it records one transfer from the escrow's address (nonce: the chain trade id, so the
  escrow's pair stays unique and no signer's nonce is touched; no signature, since the escrow
  moved it under the trade's rules): to the buyer when it completed or was ruled for the
  seller, back to the seller when a passport minted into escrow is returned. The buyer is then
  the owner and may transfer it or make a claim code like any owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from contracts_abi import eip712
from contracts_abi.escrow import Outcome, State, Status, Terms, custody_event_args
from contracts_abi.passport import passport_id
from provenance_api.keys import KeyBox
from provenance_api.models import (
    Item,
    Organization,
    OrgKind,
    OwnershipTransfer,
    Trade,
    TradeOutcome,
    TradeState,
)
from provenance_api.schemas import (
    PAGE_LIMIT_DEFAULT,
    TRADE_PAGE_MAX,
    ArbiterBrief,
    ArbiterChoice,
    CreditPublic,
    TradeActionResult,
    TradeCreate,
    TradeList,
    TradeParty,
    TradePublic,
    TradeShip,
    TradeWindows,
    TradeWrite,
    TransactionToSign,
    WithdrawalResult,
)
from provenance_api.services import transfers
from provenance_api.services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from provenance_api.services.ports import ChainState, EscrowReader, UnitOfWork, WriteReceipt
from provenance_api.services.trade_rules import (
    MAY,
    Action,
    TradeView,
    Viewer,
    owes_timeout,
    page_after,
    refusal,
)
from provenance_api.services.trade_rules import next_actions as rules_next_actions
from provenance_api.services.trade_rules import page_token as page_token_of

ESCROW = "TradeEscrow"
PASSPORT = transfers.PASSPORT
DAY = 86400
DEFAULT_WINDOWS = {
    "deposit_window": 3 * DAY,
    "ship_window": 7 * DAY,
    "confirm_window": 7 * DAY,
    "agree_window": 5 * DAY,
    "rule_window": 14 * DAY,
}
UINT96 = 2**96
ZERO = "0x" + "00" * 20
LIST_LIMIT = PAGE_LIMIT_DEFAULT  # a page of the trade list, unless asked for another size
LIST_LIMIT_MAX = TRADE_PAGE_MAX
READ_ATTEMPTS = 2

_STATES = {
    State.OPEN: TradeState.OPEN,
    State.FUNDED: TradeState.FUNDED,
    State.SHIPPED: TradeState.SHIPPED,
    State.DISPUTED: TradeState.DISPUTED,
    State.ARBITRATION: TradeState.ARBITRATION,
    State.SETTLED: TradeState.SETTLED,
}
_OUTCOMES = {
    Outcome.COMPLETED: TradeOutcome.COMPLETED,
    Outcome.CANCELLED: TradeOutcome.CANCELLED,
    Outcome.NOT_SHIPPED: TradeOutcome.NOT_SHIPPED,
    Outcome.NO_ARBITER: TradeOutcome.NO_ARBITER,
    Outcome.NO_RULING: TradeOutcome.NO_RULING,
    Outcome.FOR_BUYER: TradeOutcome.FOR_BUYER,
    Outcome.FOR_SELLER: TradeOutcome.FOR_SELLER,
}
# Outcomes that give the passport to the buyer; every other one returns it to the seller.
TO_BUYER = {TradeOutcome.COMPLETED.value, TradeOutcome.FOR_SELLER.value}
_WINDOW_OF = {
    TradeState.OPEN.value: "deposit_window",
    TradeState.FUNDED.value: "ship_window",
    TradeState.SHIPPED.value: "confirm_window",
    TradeState.DISPUTED.value: "agree_window",
    TradeState.ARBITRATION.value: "rule_window",
}


@dataclass(frozen=True)
class Call:
    """One contract call an action needs, signed by the acting party."""

    contract: str
    function: str
    args: list[Any]
    key: str
    description: str
    value: int = 0
    after: str | None = None  # the key of a write that must be confirmed first


@dataclass
class Loaded:
    """A trade after its refresh, with its chain status and the caller's part in it."""

    trade: Trade
    status: Status | None
    viewer: Viewer
    caller: Organization
    item: Item


def action_key(trade_id: int, *parts: object) -> str:
    """The idempotency key of a write owed for trade `trade_id`."""
    return ":".join(["trade", str(trade_id), *(str(part) for part in parts)])


def deadline_of(trade: Trade, since: int) -> int | None:
    """The end (inclusive, unix seconds) of the window of the trade's cached state."""
    window = _WINDOW_OF.get(trade.state)
    return None if window is None else since + int(getattr(trade, window))


def next_actions(view: TradeView, now: int) -> list[str]:
    """The viewer's actions now (services.trade_rules.next_actions, re-exported for pages)."""
    return rules_next_actions(view, now)


# --- Opening ----------------------------------------------------------------------------------


def open_trade(
    uow: UnitOfWork, escrow: EscrowReader, organization_id: int, data: TradeCreate, now: int
) -> TradePublic:
    """Open a trade of the caller's item with `data`'s buyer; the operator owes `open(terms)`."""
    deposit = _wei(data.deposit, "deposit", 1)
    price = _wei(data.price, "price", 0)
    windows = {name: getattr(data, name) or default for name, default in DEFAULT_WINDOWS.items()}
    with uow:
        _refresh_live(uow, escrow, organization_id, data.gtin, data.serial)
        item, seller = transfers.owned_item(uow, organization_id, data.gtin, data.serial)
        assert item.id is not None and seller.id is not None
        if seller.kind == OrgKind.ARBITER:
            raise InvalidInput("an arbiter cannot trade", {"serial": "the seller is an arbiter"})
        buyer = uow.organizations.get(data.buyer_organization_id)
        if buyer is None:
            raise NotFound(
                f"no organization {data.buyer_organization_id}",
                {"buyer_organization_id": "not found"},
            )
        if buyer.id == seller.id:
            raise InvalidInput(
                "the buyer is the seller", {"buyer_organization_id": "the seller itself"}
            )
        if buyer.kind == OrgKind.ARBITER:
            raise InvalidInput(
                "an arbiter cannot be a party to a trade",
                {"buyer_organization_id": "an arbiter organization"},
            )
        minted = bool(uow.transfers.of_item(item.id))
        if not minted and seller.encrypted_key is None:
            raise Conflict(
                f"the passport of {item.gtin}/{item.serial} is not minted and your organization "
                "holds its own key: mint it first (POST /v1/items/{gtin}/{serial}/passport)",
                {"serial": "passport not minted"},
            )
        trade = Trade(
            item_id=item.id,
            seller_organization_id=seller.id,
            buyer_organization_id=data.buyer_organization_id,
            seller_address=seller.address,
            buyer_address=buyer.address,
            deposit=deposit,
            price=price,
            opened_by_organization_id=seller.id,
            open_write_key=f"trade-new:{uuid.uuid4().hex}",
            escrow_address=escrow.address,
            **windows,
        )
        _insert(uow, trade, item)
        assert trade.id is not None
        trade.open_write_key = action_key(trade.id, "open")
        uow.trades.add(trade)
        terms = Terms(
            token_id=passport_id(item.gtin, item.serial),
            seller=seller.address,
            buyer=buyer.address,
            deposit=deposit,
            price=price,
            **windows,
        )
        uow.ledger.owe(
            contract=ESCROW,
            function="open",
            args=[list(terms.as_tuple())],
            idempotency_key=trade.open_write_key,
        )
        loaded = Loaded(trade, None, Viewer.SELLER, seller, item)
        public = _public(uow, escrow, loaded, now)
        uow.commit()
    return public


def _refresh_live(
    uow: UnitOfWork, escrow: EscrowReader, organization_id: int, gtin: str, serial: str
) -> None:
    """Read the item's live trade from the chain first, if the caller is a party to it.

    Its cached state may lag: settled on-chain but not read since, it must not block a new
    trade (and a completed one names the buyer the owner only once read).
    """
    item = uow.items.get(gtin, serial)
    live = uow.trades.live_of_item(item.id) if item is not None and item.id else None
    if live is not None and organization_id in (
        live.seller_organization_id,
        live.buyer_organization_id,
    ):
        refresh(uow, escrow, live)


def _insert(uow: UnitOfWork, trade: Trade, item: Item) -> None:
    """Insert the new trade; the loser of a race to open the item gets 409 naming the winner."""
    assert item.id is not None
    try:
        uow.trades.add(trade)
    except Conflict:
        # The database allows one live trade per item: a concurrent open committed first.
        won = uow.trades.live_of_item(item.id)
        if won is None:
            raise
        raise Conflict(
            f"item {item.gtin}/{item.serial} is in trade {won.id} ({won.state}), opened "
            f"meanwhile: it cannot be in two trades at once (GET /v1/trades/{won.id})",
            {"serial": f"in trade {won.id}"},
        ) from None


def _wei(text: str, name: str, least: int) -> int:
    amount = int(text)
    if not least <= amount < UINT96:
        raise InvalidInput(
            f"{name} must be {least} to 2**96-1 wei, not {amount}",
            {name: f"{least} to 2**96-1 wei"},
        )
    return amount


# --- Reading ----------------------------------------------------------------------------------


def get_trade(
    uow: UnitOfWork, escrow: EscrowReader, organization_id: int, trade_id: int, now: int
) -> TradePublic:
    """The trade, refreshed from the chain, for its parties and its accepted arbiter."""
    for attempt in range(READ_ATTEMPTS):
        try:
            with uow:
                loaded = _load(uow, escrow, organization_id, trade_id)
                public = _public(uow, escrow, loaded, now)
                uow.commit()
            return public
        except Conflict:
            # A concurrent refresh recorded the settlement's transfer first; read it again.
            if attempt == READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def list_trades(
    uow: UnitOfWork,
    escrow: EscrowReader,
    organization_id: int,
    now: int,
    limit: int = LIST_LIMIT,
    page_token: str | None = None,
) -> TradeList:
    """A page of the caller's trades as a party or the accepted arbiter, newest first,
    refreshed; `next_page_token` continues after it (trades opened meanwhile are not in it)."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidInput(f"limit must be 1 to {LIST_LIMIT_MAX}", {"limit": "out of range"})
    try:
        before = page_after(page_token) if page_token is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc), {"page_token": str(exc)}) from None
    with uow:
        caller = _organization(uow, organization_id)
        found = list(uow.trades.of_organization(organization_id, limit + 1, before))
        page = found[:limit]
        items = []
        for trade in page:
            status = refresh(uow, escrow, trade)
            item = _item_of(uow, trade)
            loaded = Loaded(trade, status, _viewer_of(trade, caller), caller, item)
            items.append(_public(uow, escrow, loaded, now))
        uow.commit()
    last = page[-1].id if len(found) > limit else None
    return TradeList(items=items, next_page_token=page_token_of(last) if last else None)


def credit_of(escrow: EscrowReader, uow: UnitOfWork, organization_id: int) -> CreditPublic:
    """What the caller can withdraw from TradeEscrow."""
    with uow:
        address = _organization(uow, organization_id).address
    return CreditPublic(address=address, credit=str(escrow.credit(address)))


def refresh(uow: UnitOfWork, escrow: EscrowReader, trade: Trade) -> Status | None:
    """Read the trade's state from the chain into its cached columns (not committed)."""
    assert trade.id is not None
    if trade.state in (TradeState.FAILED.value,) or not _in_current_escrow(trade, escrow):
        return None
    if trade.chain_trade_id is None:
        receipt = uow.ledger.receipts([trade.open_write_key]).get(trade.open_write_key)
        if receipt is None or receipt.state is ChainState.OWED:
            return None
        if receipt.state is ChainState.FAILED or receipt.tx_hash is None:
            trade.state = TradeState.FAILED.value
            _touch(uow, trade)
            return None
        chain_id = escrow.opened_trade_id(receipt.tx_hash)
        if chain_id is None:
            trade.state = TradeState.FAILED.value
            _touch(uow, trade)
            return None
        trade.chain_trade_id = chain_id
    status = escrow.status(trade.chain_trade_id)
    was = trade.state
    trade.state = _STATES[status.state].value
    trade.outcome = _OUTCOMES[status.outcome].value if status.outcome in _OUTCOMES else None
    ruled = trade.outcome in (TradeOutcome.FOR_BUYER.value, TradeOutcome.FOR_SELLER.value)
    if status.state is State.ARBITRATION or ruled:
        trade.arbiter_address = status.arbiter
        arbiter = uow.organizations.by_address(status.arbiter)
        trade.arbiter_organization_id = arbiter.id if arbiter is not None else None
    if status.state is State.SETTLED and trade.settled_at is None:
        trade.settled_at = datetime.fromtimestamp(status.since, UTC)
    if status.state is State.SETTLED and was != TradeState.SETTLED.value:
        _settle_ownership(uow, trade, status)
    _touch(uow, trade)
    return status


def _in_current_escrow(trade: Trade, escrow: EscrowReader) -> bool:
    # A new passport or ledger redeploys TradeEscrow; trades opened in the earlier one stay
    # there, and reading or writing them through the new one would mix two trades' ids.
    return trade.escrow_address.lower() == escrow.address.lower()


def _touch(uow: UnitOfWork, trade: Trade) -> None:
    trade.updated_at = datetime.now(UTC)
    uow.trades.add(trade)


def _settle_ownership(uow: UnitOfWork, trade: Trade, status: Status) -> None:
    """Record the escrow's move of the passport where the database's owner differs (module doc)."""
    if not status.passport_held:
        return
    assert trade.chain_trade_id is not None
    history = list(uow.transfers.of_item(trade.item_id))
    key = action_key(trade.id, "settlement")
    if any(row.idempotency_key == key for row in history):
        return
    in_escrow = bool(history) and history[-1].to_address == trade.escrow_address
    to_buyer = trade.outcome in TO_BUYER
    if not to_buyer and not in_escrow:
        return  # back to the seller, who the database still names
    to_id, to_address = (
        (trade.buyer_organization_id, trade.buyer_address)
        if to_buyer
        else (trade.seller_organization_id, trade.seller_address)
    )
    uow.transfers.add(
        OwnershipTransfer(
            item_id=trade.item_id,
            sequence=len(history) + 1,
            from_organization_id=trade.seller_organization_id,
            from_address=trade.escrow_address,
            to_organization_id=to_id,
            to_address=to_address,
            nonce=trade.chain_trade_id,
            deadline=0,
            signature=b"",
            idempotency_key=key,
        )
    )


def _load(uow: UnitOfWork, escrow: EscrowReader, organization_id: int, trade_id: int) -> Loaded:
    """The trade refreshed, if the caller is a party or its accepted arbiter; else 404."""
    trade = uow.trades.get(trade_id)
    caller = _organization(uow, organization_id)
    missing = NotFound(f"no trade {trade_id}", {"trade_id": "not found"})
    if trade is None:
        raise missing
    parties = (trade.seller_organization_id, trade.buyer_organization_id)
    # An arbiter learns of a trade once appointed: refresh before deciding, the cache may lag.
    if organization_id not in parties and caller.kind != OrgKind.ARBITER:
        raise missing
    status = refresh(uow, escrow, trade)
    viewer = _viewer_of(trade, caller)
    if viewer is None:
        raise missing
    return Loaded(trade, status, viewer, caller, _item_of(uow, trade))


def _viewer_of(trade: Trade, caller: Organization) -> Viewer | None:
    if caller.id == trade.seller_organization_id:
        return Viewer.SELLER
    if caller.id == trade.buyer_organization_id:
        return Viewer.BUYER
    if trade.arbiter_organization_id is not None and caller.id == trade.arbiter_organization_id:
        return Viewer.ARBITER
    return None


def _organization(uow: UnitOfWork, organization_id: int) -> Organization:
    found = uow.organizations.get(organization_id)
    if found is None:
        raise NotFound(f"no organization {organization_id}")
    return found


def _item_of(uow: UnitOfWork, trade: Trade) -> Item:
    item = uow.items.by_id(trade.item_id)
    if item is None:
        raise NotFound(f"the item of trade {trade.id} is gone")
    return item


def view_of(loaded: Loaded, credit: int = 0) -> TradeView:
    """The pure rules' view of a loaded trade."""
    trade, status = loaded.trade, loaded.status
    since = status.since if status is not None else 0
    choices = {}
    if status is not None:
        choices = {
            "buyer_deposited": status.buyer_deposited,
            "seller_deposited": status.seller_deposited,
            "arbiter": None if status.arbiter == ZERO else status.arbiter,
            "buyer_choice": None if status.buyer_choice == ZERO else status.buyer_choice,
            "seller_choice": None if status.seller_choice == ZERO else status.seller_choice,
        }
    return TradeView(
        viewer=loaded.viewer,
        state=trade.state,
        deadline=deadline_of(trade, since) if status is not None else None,
        viewer_address=loaded.caller.address,
        credit=credit,
        **choices,
    )


def _public(uow: UnitOfWork, escrow: EscrowReader, loaded: Loaded, now: int) -> TradePublic:
    trade, status, item = loaded.trade, loaded.status, loaded.item
    assert trade.id is not None
    credit = escrow.credit(loaded.caller.address) if status is not None else 0
    view = view_of(loaded, credit)
    seller = _organization(uow, trade.seller_organization_id)
    buyer = _organization(uow, trade.buyer_organization_id)
    proposed = accepted = None
    if status is not None and status.arbiter != ZERO:
        brief = _arbiter_brief(uow, status.arbiter)
        if status.state is State.DISPUTED:
            proposed = brief
        elif status.state is State.ARBITRATION or trade.arbiter_address:
            accepted = brief
    return TradePublic(
        id=trade.id,
        chain_trade_id=trade.chain_trade_id,
        escrow_address=trade.escrow_address,
        gtin=item.gtin,
        serial=item.serial,
        token_id=hex(passport_id(item.gtin, item.serial)),
        seller=_party(seller, view.seller_deposited, view.seller_choice),
        buyer=_party(buyer, view.buyer_deposited, view.buyer_choice),
        deposit=str(trade.deposit),
        price=str(trade.price),
        windows=TradeWindows(**{name: getattr(trade, name) for name in DEFAULT_WINDOWS}),
        state=trade.state,
        outcome=trade.outcome,
        deadline=datetime.fromtimestamp(view.deadline, UTC) if view.deadline else None,
        held=str(status.held if status is not None else 0),
        passport_held=bool(status.passport_held) if status is not None else False,
        proposed_arbiter=proposed,
        accepted_arbiter=accepted,
        writes=[_write(key, receipt) for key, receipt in _writes(uow, trade).items()],
        viewer=loaded.viewer.value,
        next_actions=next_actions(view, now),
        created_at=trade.created_at,
        settled_at=trade.settled_at,
    )


def _writes(uow: UnitOfWork, trade: Trade) -> dict[str, WriteReceipt]:
    return uow.ledger.keyed(action_key(trade.id, ""))


def _write(key: str, receipt: WriteReceipt) -> TradeWrite:
    return TradeWrite(
        key=key, state=receipt.state.value, tx_hash=receipt.tx_hash, error=receipt.error
    )


def _party(org: Organization, deposited: bool, choice: str | None) -> TradeParty:
    assert org.id is not None
    return TradeParty(
        organization_id=org.id,
        name=org.name,
        address=org.address,
        self_custody=org.encrypted_key is None,
        deposited=deposited,
        arbiter_choice=choice,
    )


def _arbiter_brief(uow: UnitOfWork, address: str) -> ArbiterBrief:
    arbiter = uow.arbiters.by_address(address)
    if arbiter is None:
        return ArbiterBrief(address=address)
    return ArbiterBrief(
        address=address,
        id=arbiter.id,
        organization_id=arbiter.organization_id,
        display_name=arbiter.display_name,
        profile=dict(arbiter.profile),
    )


# --- Actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acted:
    """An action's answer and whether writes were owed (202) or transactions built (200)."""

    result: TradeActionResult
    owed: bool


def act(
    uow: UnitOfWork,
    escrow: EscrowReader,
    keybox: KeyBox,
    organization_id: int,
    trade_id: int,
    action: Action,
    now: int,
    *,
    ship: TradeShip | None = None,
    choice: ArbiterChoice | None = None,
    for_buyer: bool | None = None,
) -> Acted:
    """Take `action` on the trade as the caller: refused (403/409) when it would revert."""
    with uow:
        loaded = _load(uow, escrow, organization_id, trade_id)
        trade = loaded.trade
        assert trade.id is not None
        if not _in_current_escrow(trade, escrow):
            reason = (
                f"this trade lives in an earlier TradeEscrow ({trade.escrow_address}) that the "
                "service no longer writes to; its parties can act on it there directly"
            )
            raise Conflict(reason, {"trade_id": reason})
        by_proof = action is Action.SHIP and ship is not None and ship.proof is not None
        view = view_of(loaded)
        if not by_proof:
            _check(action, view, now)
        # A proof may come from either party: the state and window rules are the seller's.
        elif (reason := refusal(Action.SHIP, replace(view, viewer=Viewer.SELLER), now)) is not None:
            raise Conflict(reason, {"trade_id": reason})
        assert trade.chain_trade_id is not None and loaded.status is not None
        tid = trade.chain_trade_id
        party = loaded.viewer.value
        relay = False  # an operator's write, whoever asked
        if action is Action.DEPOSIT:
            calls = _deposit_calls(uow, escrow, keybox, loaded, now)
        elif action is Action.CANCEL:
            calls = [Call(ESCROW, "cancel", [tid], action_key(trade.id, "cancel"), "cancel")]
        elif action is Action.SHIP and by_proof:
            assert ship is not None
            calls, relay = [_proof_call(uow, trade, loaded, ship)], True
        elif action is Action.SHIP:
            calls = [Call(ESCROW, "markShipped", [tid], action_key(trade.id, "ship"), "ship")]
        elif action is Action.CONFIRM:
            calls = [Call(ESCROW, "confirm", [tid], action_key(trade.id, "confirm"), "confirm")]
        elif action is Action.DISPUTE:
            key = action_key(trade.id, "dispute", party)
            calls = [Call(ESCROW, "dispute", [tid], key, "dispute the trade")]
        elif action is Action.DECLINE_ARBITER:
            proposed = view.arbiter
            key = action_key(trade.id, "decline", party, proposed)
            calls = [Call(ESCROW, "declineArbiter", [tid], key, f"decline arbiter {proposed}")]
        elif action is Action.ACCEPT_ARBITER:
            assert choice is not None
            address = _chosen(uow, escrow, tid, choice, view)
            key = action_key(trade.id, "accept", party, address)
            calls = [Call(ESCROW, "acceptArbiter", [tid, address], key, f"accept {address}")]
        elif action is Action.RULE:
            assert for_buyer is not None
            key = action_key(trade.id, "rule")
            side = "the buyer" if for_buyer else "the seller"
            calls = [Call(ESCROW, "rule", [tid, for_buyer], key, f"rule for {side}")]
        elif action is Action.TIMEOUT:
            key = action_key(trade.id, "timeout", trade.state)
            calls, relay = [Call(ESCROW, "timeout", [tid], key, "settle by timeout")], True
        else:  # pragma: no cover - withdraw has its own function
            raise ValueError(action)
        writes, transactions = _perform(uow, escrow, loaded.caller, calls, relay)
        public = _public(uow, escrow, loaded, now)
        uow.commit()
    result = TradeActionResult(trade=public, writes=writes, transactions=transactions)
    return Acted(result, owed=not transactions)


def _check(action: Action, view: TradeView, now: int) -> None:
    reason = refusal(action, view, now)
    if reason is None:
        return
    if view.viewer is None or view.viewer not in MAY[action]:
        raise Forbidden(reason)
    raise Conflict(reason, {"trade_id": reason})


def _deposit_calls(
    uow: UnitOfWork, escrow: EscrowReader, keybox: KeyBox, loaded: Loaded, now: int
) -> list[Call]:
    trade, status = loaded.trade, loaded.status
    assert trade.id is not None and trade.chain_trade_id is not None and status is not None
    tid = trade.chain_trade_id
    deposit_key = action_key(trade.id, "deposit", loaded.viewer.value)
    if loaded.viewer is Viewer.BUYER:
        amount = int(trade.deposit) + int(trade.price)
        return [Call(ESCROW, "deposit", [tid], deposit_key, "deposit and price", amount)]
    calls: list[Call] = []
    after = None
    token_id = passport_id(loaded.item.gtin, loaded.item.serial)
    if not status.passport_held:
        owner = escrow.passport_owner(token_id)
        if owner is None:
            after = _mint_into_escrow(uow, escrow, keybox, loaded, now)
        elif owner == trade.seller_address:
            key = action_key(trade.id, "approve", "seller")
            calls.append(
                Call(
                    PASSPORT,
                    "approve",
                    [escrow.address, token_id],
                    key,
                    "let the escrow take the passport",
                )
            )
        elif owner != escrow.address:
            raise Conflict(
                f"the passport is held by {owner}, not by the seller",
                {"trade_id": "the seller does not hold the passport"},
            )
    calls.append(
        Call(
            ESCROW,
            "deposit",
            [tid],
            deposit_key,
            "deposit (and the passport)",
            int(trade.deposit),
            after,
        )
    )
    return calls


def _mint_into_escrow(
    uow: UnitOfWork, escrow: EscrowReader, keybox: KeyBox, loaded: Loaded, now: int
) -> str:
    """Owe the operator's relay of the supplier's MintConsent to the escrow; the write's key."""
    trade, item = loaded.trade, loaded.item
    assert trade.id is not None and item.id is not None
    key = action_key(trade.id, "mint")
    history = list(uow.transfers.of_item(item.id))
    if any(row.idempotency_key == key for row in history):
        return key
    if history:
        raise Conflict(
            "the passport was minted meanwhile; read the trade again",
            {"trade_id": "passport minted meanwhile"},
        )
    supplier = _organization(uow, item.organization_id)
    if supplier.encrypted_key is None:
        raise Conflict(
            "the supplier holds its own key: mint the passport first",
            {"trade_id": "passport not minted"},
        )
    nonce = uow.transfers.next_nonce(supplier.address)
    deadline = now + transfers.CONSENT_SECONDS
    signature = eip712.sign_mint_consent(
        keybox.open(supplier.encrypted_key, supplier.address),
        chain_id=escrow.chain_id,
        passport=escrow.passport,
        to=escrow.address,
        token_id=passport_id(item.gtin, item.serial),
        tag_commitment=transfers.tag_commitment_of(item),
        nonce=nonce,
        deadline=deadline,
    )
    assert supplier.id is not None
    uow.transfers.add(
        OwnershipTransfer(
            item_id=item.id,
            sequence=1,
            from_organization_id=supplier.id,
            from_address=supplier.address,
            to_organization_id=None,
            to_address=escrow.address,
            nonce=nonce,
            deadline=deadline,
            signature=signature,
            idempotency_key=key,
        )
    )
    transfers.owe_mint(uow, item, supplier.address, escrow.address, deadline, signature, key)
    return key


def _proof_call(uow: UnitOfWork, trade: Trade, loaded: Loaded, ship: TradeShip) -> Call:
    """The operator's proveShipped with the anchored custody event of the handoff to the buyer."""
    assert trade.id is not None and trade.chain_trade_id is not None
    if ship.event_id is None:
        raise InvalidInput("name the custody event", {"event_id": "required with proof"})
    found = uow.events.by_event_ids([str(ship.event_id)])
    event = found[0] if found else None
    if event is None or event.item_id != trade.item_id:
        raise NotFound(f"no custody event {ship.event_id} of this item", {"event_id": "not found"})
    if event.to_party != trade.buyer_address:
        raise Conflict(
            "the event does not hand the item to the buyer", {"event_id": "not to the buyer"}
        )
    status = loaded.status
    assert status is not None
    if event.event_time < status.opened_at:
        raise Conflict("the event is older than the trade", {"event_id": "before the trade"})
    if event.batch_id is None or event.proof is None or event.leaf_index is None:
        raise Conflict(
            "the event is not anchored yet; try again shortly", {"event_id": "not anchored yet"}
        )
    batch = uow.anchors.by_ids([event.batch_id])[0]
    if (
        uow.ledger.states([batch.idempotency_key]).get(batch.idempotency_key)
        is not ChainState.CONFIRMED
    ):
        raise Conflict(
            "the event's batch is not anchored on the chain yet; try again shortly",
            {"event_id": "not anchored yet"},
        )
    signed = eip712.CustodyEvent(
        event_id=uuid.UUID(event.event_id),
        gtin=event.gtin,
        serial=event.serial,
        biz_step=event.biz_step,
        disposition=event.disposition,
        read_point=event.read_point,
        from_party=event.from_party,
        to_party=event.to_party,
        event_time=event.event_time,
        time_zone_offset=event.time_zone_offset,
        tag_evidence=bytes(event.tag_evidence),
        device=event.device,
    )
    args = [
        trade.chain_trade_id,
        list(custody_event_args(signed)),
        bytes(event.salt),
        bytes(batch.root),
        list(event.proof),
    ]
    key = action_key(trade.id, "prove", ship.event_id)
    return Call(ESCROW, "proveShipped", args, key, "prove the handoff to the buyer")


def _chosen(
    uow: UnitOfWork,
    escrow: EscrowReader,
    chain_trade_id: int,
    choice: ArbiterChoice,
    view: TradeView,
) -> str:
    if (choice.arbiter_id is None) == (choice.arbiter_address is None):
        raise InvalidInput(
            "name the arbiter by arbiter_id or by arbiter_address (one of them)",
            {"arbiter_id": "exactly one of the two"},
        )
    if choice.arbiter_id is not None:
        arbiter = uow.arbiters.get(choice.arbiter_id)
        if arbiter is None:
            raise NotFound(f"no arbiter {choice.arbiter_id}", {"arbiter_id": "not found"})
        address = arbiter.address
    else:
        assert choice.arbiter_address is not None
        address = choice.arbiter_address
    if not escrow.is_eligible(chain_trade_id, address):
        field_name = "arbiter_id" if choice.arbiter_id is not None else "arbiter_address"
        raise Conflict(
            f"{address} cannot arbitrate this trade: not registered, retired, a party, tied to "
            "a party, or declined in it",
            {field_name: "not eligible"},
        )
    return address


def _perform(
    uow: UnitOfWork,
    escrow: EscrowReader,
    caller: Organization,
    calls: list[Call],
    relay: bool,
) -> tuple[list[TradeWrite], list[TransactionToSign]]:
    """Owe the calls (custodial caller or operator relay) or build them for the caller's wallet."""
    if relay or caller.encrypted_key is not None:
        for call in calls:
            uow.ledger.owe(
                contract=call.contract,
                function=call.function,
                args=call.args,
                idempotency_key=call.key,
                sender=None if relay else caller.address,
                value=call.value,
                after=call.after,
            )
        receipts = uow.ledger.receipts([call.key for call in calls])
        return [_write(call.key, receipts[call.key]) for call in calls if call.key in receipts], []
    if any(call.after for call in calls):
        raise Conflict(
            "the passport is being minted into the escrow; deposit once it is there",
            {"trade_id": "passport not in escrow yet"},
        )
    return [], [
        TransactionToSign(
            to=escrow.address if call.contract == ESCROW else escrow.passport,
            data=escrow.calldata(call.contract, call.function, call.args),
            value=str(call.value),
            chain_id=escrow.chain_id,
            description=call.description,
        )
        for call in calls
    ]


# --- Withdrawals ------------------------------------------------------------------------------


def withdraw(
    uow: UnitOfWork, escrow: EscrowReader, organization_id: int
) -> tuple[WithdrawalResult, bool]:
    """Take the caller's credit out of TradeEscrow; whether a write was owed (custodial)."""
    with uow:
        caller = _organization(uow, organization_id)
        credit = escrow.credit(caller.address)
        if credit == 0:
            raise Conflict("you have nothing to withdraw", {"credit": "0"})
        call = Call(ESCROW, "withdraw", [], "", f"withdraw {credit} wei")
        if caller.encrypted_key is None:
            tx = TransactionToSign(
                to=escrow.address,
                data=escrow.calldata(ESCROW, "withdraw", []),
                value="0",
                chain_id=escrow.chain_id,
                description=call.description,
            )
            return WithdrawalResult(credit=str(credit), writes=[], transactions=[tx]), False
        # One write per credit amount until it is confirmed: a retried request while it is
        # owed gets the same write; after it, a new credit of the same amount a new one.
        index = 1
        while True:
            key = f"withdraw:{escrow.address}:{caller.address}:{credit}:{index}"
            state = uow.ledger.states([key]).get(key)
            if state is None or state is ChainState.OWED:
                break
            index += 1
        uow.ledger.owe(
            contract=ESCROW,
            function="withdraw",
            args=[],
            idempotency_key=key,
            sender=caller.address,
        )
        receipt = uow.ledger.receipts([key])[key]
        uow.commit()
    return WithdrawalResult(
        credit=str(credit), writes=[_write(key, receipt)], transactions=[]
    ), True


# --- Sweeping ---------------------------------------------------------------------------------

SWEEP_LIMIT = 100


@dataclass
class Swept:
    """What one sweep did: trades refreshed, seen settled, timeouts newly owed or failed."""

    refreshed: int = 0
    settled: int = 0
    timeouts_owed: int = 0
    timeouts_failed: int = 0
    errors: dict[int, str] = field(default_factory=dict)  # trade id -> why it was skipped

    def as_json(self) -> dict[str, Any]:
        """The counts (and skipped trades) as a JSON object."""
        return {
            "refreshed": self.refreshed,
            "settled": self.settled,
            "timeouts_owed": self.timeouts_owed,
            "timeouts_failed": self.timeouts_failed,
            "errors": {str(key): value for key, value in self.errors.items()},
        }


def sweep(
    uow: UnitOfWork, escrow: EscrowReader, now: int, limit: int = SWEEP_LIMIT, grace: int = 0
) -> Swept:
    """Refresh up to `limit` live trades, the longest unrefreshed first, and owe the operator's
    `timeout` of each whose window passed more than `grace` seconds before `now`.

    Each trade in its own unit of work, so a request on another trade never waits for the
    whole pass. The timeout's idempotency key is POST /timeout's, so a party's request and the
    sweep owe it once. A trade the refresh refuses (a DomainError) is skipped and named in
    `errors`; anything else (the chain or database down) ends the pass.
    """
    done = Swept()
    with uow:
        ids = [trade.id for trade in uow.trades.live(escrow.address, limit)]
    for trade_id in ids:
        assert trade_id is not None
        for attempt in range(READ_ATTEMPTS):
            try:
                _sweep_one(uow, escrow, trade_id, now, grace, done)
                break
            except Conflict as exc:
                # A concurrent refresh recorded the settlement's transfer first: read it again.
                if attempt == READ_ATTEMPTS - 1:
                    done.errors[trade_id] = exc.message
            except DomainError as exc:
                done.errors[trade_id] = exc.message
                break
    return done


def _sweep_one(
    uow: UnitOfWork, escrow: EscrowReader, trade_id: int, now: int, grace: int, done: Swept
) -> None:
    with uow:
        trade = uow.trades.get(trade_id)
        if trade is None or trade.state in (TradeState.SETTLED.value, TradeState.FAILED.value):
            return
        was = trade.state
        status = refresh(uow, escrow, trade)
        if status is None:
            _touch(uow, trade)  # not on the chain yet: let the others go first next pass
            uow.commit()
            return
        done.refreshed += 1
        if trade.state == TradeState.SETTLED.value and was != TradeState.SETTLED.value:
            done.settled += 1
        if owes_timeout(trade.state, deadline_of(trade, status.since), now, grace):
            key = action_key(trade_id, "timeout", trade.state)
            known = uow.ledger.states([key]).get(key)
            if known is None:
                assert trade.chain_trade_id is not None
                uow.ledger.owe(
                    contract=ESCROW,
                    function="timeout",
                    args=[trade.chain_trade_id],
                    idempotency_key=key,
                )
                done.timeouts_owed += 1
            elif known is ChainState.FAILED:
                # Not owed again by itself: `provenance-api writes retry` is the operator's call.
                done.timeouts_failed += 1
        uow.commit()
