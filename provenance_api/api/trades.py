"""/v1/trades: an item sold through TradeEscrow, secured by both parties' deposits.

A custodial organization's action owes a chain write signed with its key (202, the writes in
the answer); a self-custody organization gets the transactions to sign and send itself (200).
What the contract would revert is refused first (409 with the reason). Strangers get 404.
"""

from __future__ import annotations

import time

from sqlmodel import Session

from provenance_api.api.deps import runtime
from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.escrow_chain import ESCROW, PASSPORT, EscrowChain
from provenance_api.schemas import (
    ArbiterChoice,
    CreditPublic,
    ErrorBody,
    TradeActionResult,
    TradeCreate,
    TradeList,
    TradeListQuery,
    TradePath,
    TradePublic,
    TradeRuling,
    TradeShip,
    WithdrawalResult,
)
from provenance_api.services import trades
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import Unavailable
from provenance_api.services.trade_rules import Action

bp = blueprint(
    "trades", "Trades secured by deposits in TradeEscrow, disputes settled by an arbiter."
)

ACTED = {200: TradeActionResult, 202: TradeActionResult, 404: ErrorBody, 409: ErrorBody}

# GET routes that write: each refreshes the trades' cached chain state (and may record the
# settlement's transfer), so it takes SQLite's write lock from BEGIN (app._writes).
WRITING_READS = frozenset({"trades.list_trades", "trades.get_trade"})


def escrow_reader() -> EscrowChain:
    """TradeEscrow and ProductPassport on this chain (503 before they are deployed)."""
    rt = runtime()
    chain_id = rt.chain_id
    with Session(rt.engine) as session:
        addresses = known_addresses(session, chain_id)
    if ESCROW not in addresses or PASSPORT not in addresses:
        raise Unavailable("the contracts are not deployed on this chain yet; try again shortly")
    return EscrowChain(rt.w3, addresses[ESCROW], addresses[PASSPORT], chain_id)


def _now() -> int:
    return int(time.time())


def _acted(action: Action, trade_id: int, **extra) -> Answer:
    rt = runtime()
    done = trades.act(
        unit_of_work(), escrow_reader(), rt.keybox, tenant(), trade_id, action, _now(), **extra
    )
    return answer(done.result, 202 if done.owed else 200)


@bp.post("/trades", responses={201: TradePublic, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody})
def create_trade(body: TradeCreate) -> Answer:
    """Open a trade of an item the caller owns with a buyer organization.

    The service's key opens it on-chain; the trade is `opening` until that is mined. Each
    party then deposits (depositing is agreeing to the terms shown here).
    """
    return answer(trades.open_trade(unit_of_work(), escrow_reader(), tenant(), body, _now()), 201)


@bp.get("/trades", responses={200: TradeList, 422: ErrorBody})
def list_trades(query: TradeListQuery) -> Answer:
    """The caller's trades, as a party or as the accepted arbiter, newest first, a page at a
    time: pass `next_page_token` as `page_token` for the next (older) page."""
    found = trades.list_trades(
        unit_of_work(), escrow_reader(), tenant(), _now(), query.limit, query.page_token
    )
    return answer(found)


@bp.get("/trades/<int:trade_id>", responses={200: TradePublic, 404: ErrorBody})
def get_trade(path: TradePath) -> Answer:
    """One trade, read from the chain, with what the caller can do next (`next_actions`)."""
    return answer(
        trades.get_trade(unit_of_work(), escrow_reader(), tenant(), path.trade_id, _now())
    )


@bp.post("/trades/<int:trade_id>/deposit", responses=ACTED)
def deposit(path: TradePath) -> Answer:
    """Deposit: the buyer its deposit and the price, the seller its deposit and the passport."""
    return _acted(Action.DEPOSIT, path.trade_id)


@bp.post("/trades/<int:trade_id>/cancel", responses=ACTED)
def cancel(path: TradePath) -> Answer:
    """A party cancels a trade not yet funded: whatever was deposited returns."""
    return _acted(Action.CANCEL, path.trade_id)


@bp.post("/trades/<int:trade_id>/ship", responses=ACTED)
def ship(path: TradePath, body: TradeShip) -> Answer:
    """The seller says it shipped; or a party presents the anchored custody event of the
    handoff to the buyer (`{"proof": "custody_event", "event_id": ...}`), relayed by the
    service."""
    return _acted(Action.SHIP, path.trade_id, ship=body)


@bp.post("/trades/<int:trade_id>/confirm", responses=ACTED)
def confirm(path: TradePath) -> Answer:
    """The buyer confirms receipt: deposits return, the price to the seller, the passport to
    the buyer."""
    return _acted(Action.CONFIRM, path.trade_id)


@bp.post("/trades/<int:trade_id>/dispute", responses=ACTED)
def dispute(path: TradePath) -> Answer:
    """A party disputes a funded or shipped trade; an arbiter is proposed."""
    return _acted(Action.DISPUTE, path.trade_id)


@bp.post("/trades/<int:trade_id>/arbiter/decline", responses=ACTED)
def decline_arbiter(path: TradePath) -> Answer:
    """A party declines the proposed arbiter; the next one is proposed."""
    return _acted(Action.DECLINE_ARBITER, path.trade_id)


@bp.post("/trades/<int:trade_id>/arbiter/accept", responses=ACTED)
def accept_arbiter(path: TradePath, body: ArbiterChoice) -> Answer:
    """A party accepts an arbiter (the proposed one or its own choice); once both accepted
    the same, it alone rules."""
    return _acted(Action.ACCEPT_ARBITER, path.trade_id, choice=body)


@bp.post("/trades/<int:trade_id>/rule", responses=ACTED)
def rule(path: TradePath, body: TradeRuling) -> Answer:
    """The appointed arbiter decides, for good; the loser's deposit is its fee."""
    return _acted(Action.RULE, path.trade_id, for_buyer=body.for_buyer)


@bp.post("/trades/<int:trade_id>/timeout", responses=ACTED)
def timeout(path: TradePath) -> Answer:
    """Settle a trade whose window passed with its stated outcome (relayed by the service)."""
    return _acted(Action.TIMEOUT, path.trade_id)


@bp.get("/trades/credit", responses={200: CreditPublic})
def get_credit() -> Answer:
    """What the caller can withdraw from TradeEscrow."""
    return answer(trades.credit_of(escrow_reader(), unit_of_work(), tenant()))


@bp.post("/withdrawals", responses={200: WithdrawalResult, 202: WithdrawalResult, 409: ErrorBody})
def withdraw() -> Answer:
    """Take the caller's credit out of TradeEscrow (a party's or an arbiter's)."""
    result, owed = trades.withdraw(unit_of_work(), escrow_reader(), tenant())
    return answer(result, 202 if owed else 200)
