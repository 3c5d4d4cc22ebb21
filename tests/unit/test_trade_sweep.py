"""services.trades.sweep over the in-memory unit of work and a TradeEscrow of fixed readings."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from contracts_abi.escrow import Outcome, State, Status
from provenance_api.models import Trade
from provenance_api.services.ports import ChainState
from provenance_api.services.trades import action_key, sweep
from tests.fakes.unit_of_work import FakeUnitOfWork

NOW = 1_800_000_000
ESCROW = "0x" + "e5" * 20
ZERO = "0x" + "00" * 20
WINDOW = 50


class Escrow:
    """TradeEscrow's `statusOf` as a dict of readings (the only view a sweep reads)."""

    address = ESCROW

    def __init__(self) -> None:
        self.states: dict[int, tuple[State, int]] = {}
        self.reads: list[int] = []

    def status(self, trade_id: int) -> Status:
        self.reads.append(trade_id)
        state, since = self.states[trade_id]
        return Status(state, Outcome.NONE, True, True, True, since, since, ZERO, ZERO, ZERO, 0, 0)


ITEMS = itertools.count(1)  # one live trade per item, as the database requires


def add_trade(uow: FakeUnitOfWork, chain_id: int | None, state: str, age: int) -> int:
    """A trade of an item of its own, last refreshed `age` seconds ago; its id."""
    with uow:
        trade = uow.trades.add(
            Trade(
                item_id=next(ITEMS),
                seller_organization_id=1,
                buyer_organization_id=2,
                seller_address="0x" + "11" * 20,
                buyer_address="0x" + "22" * 20,
                deposit=1,
                price=0,
                deposit_window=WINDOW,
                ship_window=WINDOW,
                confirm_window=WINDOW,
                agree_window=WINDOW,
                rule_window=WINDOW,
                opened_by_organization_id=1,
                open_write_key=f"open:{chain_id}:{state}:{age}",
                escrow_address=ESCROW,
                chain_trade_id=chain_id,
                state=state,
                updated_at=datetime.now(UTC) - timedelta(seconds=age),
            )
        )
        uow.commit()
    assert trade.id is not None
    return trade.id


def timeouts(uow: FakeUnitOfWork) -> list[str]:
    return [key for key in uow.committed.writes if ":timeout:" in key]


def test_an_expired_trade_is_owed_one_timeout_and_a_running_one_none():
    uow, escrow = FakeUnitOfWork(), Escrow()
    expired = add_trade(uow, 1, "open", 10)
    running = add_trade(uow, 2, "funded", 20)
    escrow.states = {1: (State.FUNDED, NOW - WINDOW - 1), 2: (State.FUNDED, NOW - WINDOW)}
    swept = sweep(uow, escrow, NOW)
    assert (swept.refreshed, swept.settled, swept.timeouts_owed) == (2, 0, 1)
    # The key is POST /timeout's, for the state just read from the chain.
    assert timeouts(uow) == [action_key(expired, "timeout", "funded")]
    assert uow.committed.writes[timeouts(uow)[0]] == ("TradeEscrow", "timeout", [1])
    with uow:
        assert uow.trades.get(running).state == "funded"
    again = sweep(uow, escrow, NOW)
    assert again.timeouts_owed == 0 and len(timeouts(uow)) == 1


def test_the_grace_holds_the_timeout_back():
    uow, escrow = FakeUnitOfWork(), Escrow()
    add_trade(uow, 1, "open", 10)
    escrow.states = {1: (State.OPEN, NOW - WINDOW - 1)}
    assert sweep(uow, escrow, NOW, grace=5).timeouts_owed == 0
    assert sweep(uow, escrow, NOW + 5, grace=5).timeouts_owed == 1


def test_a_failed_timeout_is_counted_not_owed_again():
    uow, escrow = FakeUnitOfWork(), Escrow()
    tid = add_trade(uow, 1, "shipped", 10)
    escrow.states = {1: (State.SHIPPED, NOW - WINDOW - 1)}
    assert sweep(uow, escrow, NOW).timeouts_owed == 1
    uow.settle(action_key(tid, "timeout", "shipped"), ChainState.FAILED)
    swept = sweep(uow, escrow, NOW)
    assert (swept.timeouts_owed, swept.timeouts_failed) == (0, 1)
    assert len(timeouts(uow)) == 1


def test_the_longest_unrefreshed_go_first_and_a_trade_not_on_chain_yet_waits_its_turn():
    uow, escrow = FakeUnitOfWork(), Escrow()
    opening = add_trade(uow, None, "opening", 300)  # its open write is not even owed here
    older = add_trade(uow, 1, "open", 200)
    newer = add_trade(uow, 2, "open", 100)
    escrow.states = {1: (State.OPEN, NOW), 2: (State.OPEN, NOW)}
    first = sweep(uow, escrow, NOW, limit=2)
    assert first.refreshed == 1 and escrow.reads == [1]
    # Both were touched: the next pass starts with the one left over.
    second = sweep(uow, escrow, NOW, limit=1)
    assert second.refreshed == 1 and escrow.reads == [1, 2]
    with uow:
        assert uow.trades.get(opening).state == "opening"
        assert [t.id for t in uow.trades.live(ESCROW, 3)] == [opening, older, newer]


def test_trades_of_another_escrow_are_left_alone():
    uow, escrow = FakeUnitOfWork(), Escrow()
    add_trade(uow, 1, "open", 10)
    escrow.address = "0x" + "99" * 20
    assert sweep(uow, escrow, NOW).refreshed == 0 and escrow.reads == []
