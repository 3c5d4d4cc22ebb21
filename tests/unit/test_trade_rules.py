"""services.trade_rules: what each viewer of a trade can do next, and why not."""

from __future__ import annotations

import pytest

from provenance_api.services.trade_rules import (
    Action,
    TradeView,
    Viewer,
    expired,
    next_actions,
    owes_timeout,
    refusal,
)

NOW = 1_800_000_000
ARBITER = "0x" + "ab" * 20


def view(viewer: Viewer | None, state: str, **fields) -> TradeView:
    return TradeView(viewer=viewer, state=state, deadline=NOW + 60, **fields)


@pytest.mark.parametrize(
    ("viewer", "state", "fields", "expected"),
    [
        (Viewer.SELLER, "opening", {}, []),
        (Viewer.SELLER, "open", {}, ["deposit", "cancel"]),
        (Viewer.SELLER, "open", {"seller_deposited": True}, ["cancel"]),
        (Viewer.BUYER, "open", {"seller_deposited": True}, ["deposit", "cancel"]),
        (Viewer.SELLER, "funded", {}, ["ship", "dispute"]),
        (Viewer.BUYER, "funded", {}, ["confirm", "dispute"]),
        (Viewer.SELLER, "shipped", {}, ["dispute"]),
        (Viewer.BUYER, "shipped", {}, ["confirm", "dispute"]),
        (Viewer.BUYER, "disputed", {"arbiter": ARBITER}, ["decline_arbiter", "accept_arbiter"]),
        (Viewer.BUYER, "disputed", {}, ["accept_arbiter"]),
        (Viewer.SELLER, "arbitration", {"arbiter": ARBITER}, []),
        (Viewer.ARBITER, "arbitration", {"arbiter": ARBITER, "viewer_address": ARBITER}, ["rule"]),
        (Viewer.ARBITER, "arbitration", {"arbiter": ARBITER, "viewer_address": "0x1"}, []),
        (Viewer.BUYER, "settled", {"credit": 5}, ["withdraw"]),
        (Viewer.BUYER, "settled", {}, []),
        (None, "funded", {}, []),
    ],
)
def test_next_actions_by_viewer_and_state(viewer, state, fields, expected):
    assert next_actions(view(viewer, state, **fields), NOW) == expected


def test_after_the_window_only_timeout_and_withdraw():
    late = view(Viewer.BUYER, "funded", credit=1)
    assert expired(late, NOW + 61) and not expired(late, NOW + 60)  # the last second counts
    assert next_actions(late, NOW + 61) == ["timeout", "withdraw"]
    reason = refusal(Action.CONFIRM, late, NOW + 61)
    assert reason is not None and reason.startswith("the window closed on 2027-01-15 08:01:00 UTC")
    assert "only timeout" in reason


def test_reasons_name_what_is_wrong():
    assert "not the arbiter" in str(
        refusal(Action.RULE, view(Viewer.ARBITER, "arbitration", arbiter=ARBITER), NOW)
    )
    assert refusal(Action.SHIP, view(Viewer.BUYER, "funded"), NOW) == (
        "a buyer cannot ship this trade"
    )
    assert "runs until" in str(refusal(Action.TIMEOUT, view(Viewer.SELLER, "open"), NOW))
    assert "already deposited" in str(
        refusal(Action.DEPOSIT, view(Viewer.BUYER, "open", buyer_deposited=True), NOW)
    )
    assert "funded or shipped" in str(refusal(Action.CONFIRM, view(Viewer.BUYER, "open"), NOW))


WAITING = ["open", "funded", "shipped", "disputed", "arbitration"]


@pytest.mark.parametrize("state", WAITING)
def test_the_service_owes_timeout_only_strictly_after_the_deadline(state):
    deadline = NOW + 60
    assert not owes_timeout(state, deadline, NOW)
    assert not owes_timeout(state, deadline, deadline)  # its last second is still in it
    assert owes_timeout(state, deadline, deadline + 1)


@pytest.mark.parametrize("state", WAITING)
def test_the_grace_waits_for_the_chain_clock_to_pass_the_deadline_too(state):
    deadline = NOW + 60
    assert not owes_timeout(state, deadline, deadline + 5, grace=5)
    assert owes_timeout(state, deadline, deadline + 6, grace=5)
    assert owes_timeout(state, deadline, deadline + 1, grace=-3)  # no negative grace


@pytest.mark.parametrize("state", ["opening", "settled", "failed"])
def test_a_trade_not_waiting_is_never_timed_out(state):
    assert not owes_timeout(state, NOW, NOW + 10**6)
    assert not owes_timeout(state, None, NOW + 10**6)


def test_a_trade_whose_deadline_is_unknown_is_not_timed_out():
    assert not owes_timeout("funded", None, NOW + 10**6)
