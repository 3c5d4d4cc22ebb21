"""The trade sweeper on the embedded chain: expired trades settled by the service itself,
one timeout write whoever asks first, trades settled by a party's own transaction noticed."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from sqlmodel import Session, func, select

from contracts_abi.passport import passport_id
from provenance_api import config, db
from provenance_api.app import create_app
from provenance_api.cli import cli
from provenance_api.models import ChainWrite, Trade
from provenance_api.services.trades import action_key
from tests.integration.api_support import GTIN, make_api
from tests.integration.test_api_trades import (
    DEPOSIT,
    PRICE,
    act,
    close_world,
    credit,
    get,
    new_item,
    open_trade,
    self_custody,
    send,
    settle,
    trading_world,
)
from tests.integration.test_api_transfers import org_of, passport, transfer


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    # No grace: the embedded chain stamps blocks with the wall clock's second.
    made = trading_world(tmp_path_factory.mktemp("sweeper"), TRADE_SWEEP_GRACE_SECONDS=0)
    made.sweeper = made.rt.new_sweeper()
    yield made
    close_world(made)


def row(api, trade_id: int) -> Trade:
    """The trade's row as cached, without a request that would refresh it."""
    with Session(api.rt.engine) as session:
        found = session.get(Trade, trade_id)
        assert found is not None
        return found


def timeout_writes(api, trade_id: int) -> int:
    prefix = action_key(trade_id, "timeout", "")
    with Session(api.rt.engine) as session:
        query = select(func.count()).select_from(ChainWrite)
        query = query.where(ChainWrite.idempotency_key.startswith(prefix))  # type: ignore[attr-defined]
        return int(session.exec(query).one())


def wait_past(deadline: str) -> None:
    """Sleep until the wall clock (and so the embedded chain's next block) is past `deadline`."""
    end = datetime.fromisoformat(deadline.replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, end + 1 - time.time()))


def opened(api, serial: str, buyer_id: int, **windows) -> int:
    answer = open_trade(api, serial, buyer_id, **windows)
    assert answer.status_code == 201, answer.get_json()
    settle(api)
    return answer.get_json()["id"]


def test_a_deposit_window_that_passed_is_cancelled_and_the_deposit_credited_back(api):
    # Long enough for the buyer's deposit to be mined in it on a busy machine.
    tid = opened(api, new_item(api), api.shop["id"], deposit_window=8)
    early = api.sweeper.tick()
    assert timeout_writes(api, tid) == 0 and early.refreshed >= 1
    assert row(api, tid).state == "open"  # the sweep read the mined open
    before = credit(api, api.retailer)
    assert act(api, api.retailer, tid, "deposit").status_code == 202
    settle(api)
    seen = get(api, api.retailer, tid)
    assert seen["buyer"]["deposited"] and not seen["seller"]["deposited"], seen

    wait_past(seen["deadline"])
    swept = api.sweeper.tick()
    assert swept.timeouts_owed >= 1 and timeout_writes(api, tid) == 1
    settle(api)
    again = api.sweeper.tick()
    assert again.settled >= 1
    done = row(api, tid)
    assert (done.state, done.outcome) == ("settled", "cancelled")
    assert done.settled_at is not None
    assert credit(api, api.retailer) == before + DEPOSIT + PRICE
    # A settled trade is not looked at again.
    with api.uow() as uow:
        assert tid not in [t.id for t in uow.trades.live(api.sweeper.escrow().address, 1000)]


def test_a_funded_trade_never_shipped_is_settled_not_shipped(api):
    serial = new_item(api)
    tid = opened(api, serial, api.shop["id"], ship_window=4)
    seller_before, buyer_before = credit(api, api.supplier), credit(api, api.retailer)
    # Not minted yet: the supplier's MintConsent puts the passport straight into escrow.
    for key in (api.supplier, api.retailer):
        assert act(api, key, tid, "deposit").status_code == 202
    settle(api)
    funded = get(api, api.supplier, tid)
    assert funded["state"] == "funded" and funded["passport_held"], funded

    wait_past(funded["deadline"])
    api.sweeper.tick()
    assert timeout_writes(api, tid) == 1
    settle(api)
    api.sweeper.tick()
    done = row(api, tid)
    assert (done.state, done.outcome) == ("settled", "not_shipped")
    assert credit(api, api.supplier) == seller_before + DEPOSIT
    assert credit(api, api.retailer) == buyer_before + DEPOSIT + PRICE
    # The passport minted into escrow went back to the seller, on record as well as on-chain.
    assert (
        passport(api).functions.ownerOf(passport_id(GTIN, serial)).call() == (api.maker["address"])
    )
    owner = api.call("GET", f"/v1/items/{GTIN}/{serial}/passport", api.supplier).get_json()
    assert owner["owner_organization_id"] == api.maker["id"]


def test_a_timeout_asked_for_by_a_party_and_by_the_sweep_is_owed_once(api):
    first = opened(api, new_item(api), api.shop["id"], deposit_window=3)
    second = opened(api, new_item(api), api.shop["id"], deposit_window=3)
    wait_past(get(api, api.retailer, second)["deadline"])

    asked = act(api, api.retailer, first, "timeout")
    assert asked.status_code == 202, asked.get_json()
    api.sweeper.tick()
    assert timeout_writes(api, first) == 1
    # The other way round: the sweep first, then the party's request gets the same write.
    assert timeout_writes(api, second) == 1
    asked = act(api, api.supplier, second, "timeout")
    assert asked.status_code == 202, asked.get_json()
    [write] = [w for w in asked.get_json()["writes"] if ":timeout:" in w["key"]]
    assert write["key"] == action_key(second, "timeout", "open")
    assert timeout_writes(api, second) == 1
    settle(api)
    assert api.sweeper.tick().timeouts_owed == 0  # nothing expired is left unsettled
    for tid in (first, second):
        assert (row(api, tid).state, row(api, tid).outcome) == ("settled", "cancelled")
        assert timeout_writes(api, tid) == 1


def test_a_trade_settled_by_a_self_custody_party_unlocks_its_item_at_the_sweep(api):
    key, account = self_custody(api, "Own Keys")
    serial = new_item(api)
    tid = opened(api, serial, org_of(api, key)["id"])
    built = act(api, key, tid, "cancel")
    assert built.status_code == 200, built.get_json()
    [transaction] = built.get_json()["transactions"]
    send(api, account, transaction)  # on-chain, with no request that reads the trade after it
    assert row(api, tid).state == "open"
    locked = transfer(api, api.supplier, serial, to_organization_id=api.shop["id"])
    assert locked.status_code == 409, locked.get_json()
    assert locked.get_json()["fields"] == {"serial": f"in trade {tid}"}

    swept = api.sweeper.tick()
    assert swept.settled >= 1 and swept.refreshed >= 1
    assert (row(api, tid).state, row(api, tid).outcome) == ("settled", "cancelled")
    moved = transfer(api, api.supplier, serial, to_organization_id=api.shop["id"])
    assert moved.status_code == 201, moved.get_json()
    settle(api)


def test_the_sweep_command_prints_its_counts(api):
    tid = opened(api, new_item(api), api.shop["id"], deposit_window=3)
    wait_past(get(api, api.supplier, tid)["deadline"])
    runner = api.app.test_cli_runner()
    result = runner.invoke(cli, ["trades", "sweep", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["timeouts_owed"] >= 1 and counts["refreshed"] >= 1, counts
    assert set(counts) == {"refreshed", "settled", "timeouts_owed", "timeouts_failed", "errors"}
    assert timeout_writes(api, tid) == 1
    settle(api)
    result = runner.invoke(cli, ["trades", "sweep"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("refreshed ") and "settled" in result.output
    assert row(api, tid).state == "settled"


def test_the_sweep_command_says_when_the_escrow_is_not_deployed(tmp_path):
    bare = make_api("sqlite", tmp_path)
    try:
        result = bare.app.test_cli_runner().invoke(cli, ["trades", "sweep"])
    finally:
        bare.app.extensions["provenance"].close()
    assert result.exit_code == 1
    assert "TradeEscrow is not deployed" in result.output


def bare_app(tmp_path, **settings):
    app = create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), **settings})
    db.upgrade(app.config["DATABASE_URL"])
    return app


def test_the_runtime_sweeps_in_a_thread_and_healthz_shows_it(tmp_path):
    app = bare_app(tmp_path, TRADE_SWEEP_SECONDS=0.05)
    rt = app.extensions["provenance"]
    try:
        assert app.test_client().get("/healthz").get_json()["trade_sweeper"]["running"] is False
        sweeper = rt.start_sweeper()
        assert sweeper is not None and rt.start_sweeper() is sweeper  # one thread
        deadline = time.monotonic() + 10
        while sweeper.last_pass is None:
            assert time.monotonic() < deadline, "the sweeper never swept"
            time.sleep(0.02)
        shown = app.test_client().get("/healthz").get_json()["trade_sweeper"]
        assert shown["running"] is True and shown["every_seconds"] == 0.05
        assert shown["last_counts"]["refreshed"] == 0 and shown["last_error"] is None
        rt.stop_sweeper()
        assert sweeper.running is False
    finally:
        rt.close()


def test_a_sweep_every_zero_seconds_is_off(tmp_path):
    app = bare_app(tmp_path, TRADE_SWEEP_SECONDS=0)
    rt = app.extensions["provenance"]
    try:
        assert rt.start_sweeper() is None
        assert app.test_client().get("/healthz").get_json()["trade_sweeper"]["running"] is False
    finally:
        rt.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRADE_SWEEP_SECONDS", -1),
        ("TRADE_SWEEP_SECONDS", "often"),
        ("TRADE_SWEEP_SECONDS", 86_401),
        ("TRADE_SWEEP_GRACE_SECONDS", -5),
        ("TRADE_SWEEP_GRACE_SECONDS", 1.5),
        ("TRADE_SWEEP_BATCH", 0),
    ],
)
def test_bad_sweep_settings_are_refused_by_name(tmp_path, name, value):
    with pytest.raises(config.ConfigError, match=f"PROVENANCE_{name} must be"):
        create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), name: value})
