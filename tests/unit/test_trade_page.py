"""The trade page's view-model (web/trade_page.py): each state, role and clock reading in words."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from provenance_api.web.strings import catalogue
from provenance_api.web.trade_page import (
    ARBITER,
    BUYER,
    ROLES,
    SELLER,
    WINDOWS,
    Arbiter,
    Facts,
    Pending,
    Who,
    Windows,
    coin,
    trade_page,
)

TEXT = catalogue()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86400
COIN = 10**18
REFEREE = Arbiter(
    Who("Fair Referee", "0x" + "ab" * 20),
    {"summary": "Consumer goods", "languages": ["en", "fr"], "fee_note": "the loser's deposit"},
)


def facts(**changes) -> Facts:
    base = Facts(
        trade_id=7,
        state="open",
        outcome=None,
        deadline=NOW + timedelta(days=3, hours=-1),
        windows=Windows(3 * DAY, 5 * DAY, 7 * DAY, 4 * DAY, 10 * DAY),
        deposit=COIN // 10,
        price=COIN,
        seller=Who("Shop", "0x" + "11" * 20),
        buyer=Who("Client", "0x" + "22" * 20),
        item_name="Tea",
        gtin="09506000134352",
        serial="S1",
    )
    return dataclasses.replace(base, **changes)


def shown(role: str = BUYER, **changes):
    return trade_page(facts(**changes), role, False, NOW, TEXT)


def test_the_open_trade_says_whose_deposit_it_waits_for():
    assert shown().headline == TEXT("trade.state.open.none")
    assert shown(buyer_deposited=True).headline == TEXT("trade.state.open.seller")
    assert shown(seller_deposited=True).headline == "Waiting for your deposit"
    assert shown(ARBITER, seller_deposited=True).headline == TEXT("trade.state.open.buyer")
    assert shown(SELLER, buyer_deposited=True).headline == "Waiting for your deposit"


@pytest.mark.parametrize("state", list(WINDOWS))
def test_each_waiting_state_has_a_deadline_as_a_date_relative_and_its_timeout(state):
    window, outcome = WINDOWS[state]
    end = NOW - timedelta(hours=1) + timedelta(seconds=getattr(facts().windows, window))
    page = shown(state=state, arbiter=REFEREE if state == "arbitration" else None, deadline=end)
    assert page.deadline is not None
    assert page.deadline.when_iso == end.isoformat()
    assert page.deadline.when == f"{end.day} {end:%B %Y, %H:%M} UTC"
    days = getattr(facts().windows, window) // DAY - 1  # an hour has gone by
    assert page.deadline.relative == f"in {days} days and 23 hours"
    assert page.deadline.then == TEXT(f"trade.timeout.{outcome}")
    assert not page.deadline.passed


def test_a_passed_deadline_says_so():
    page = shown(deadline=NOW - timedelta(days=1, minutes=5))
    assert page.deadline.passed
    assert page.deadline.relative == "1 day ago"  # its next unit, hours, is 0


def test_no_deadline_before_the_chain_has_the_trade_or_after_it_ends():
    assert shown(state="opening", deadline=None).deadline is None
    assert shown(state="settled", outcome="completed").deadline is None


def test_the_funded_state_in_plain_words():
    page = shown(state="funded", buyer_deposited=True, seller_deposited=True)
    assert page.headline == "Paid in: waiting for the seller to ship"
    assert shown(SELLER, state="funded").headline == "Paid in: waiting for you to ship"
    assert shown(BUYER, state="shipped").headline == "Shipped: waiting for you to confirm receipt"
    assert page.passport == TEXT("trade.passport.with_seller")
    held = dict(page.money)[TEXT("trade.money.held")]
    assert held == coin(COIN // 10 * 2 + COIN, TEXT) == "1.2 ETH"


def test_money_says_what_each_pays_and_who_gets_what_on_each_outcome():
    page = shown()
    money = dict(page.money)
    assert money[TEXT("trade.money.buyer_pays")] == "1.1 ETH"
    assert money[TEXT("trade.money.seller_pays")] == "0.1 ETH"
    outcomes = dict(page.outcomes)
    assert "0.1 ETH deposit goes to the arbiter" in outcomes[TEXT("trade.ends.for_buyer")]
    assert "1.1 ETH back" in outcomes[TEXT("trade.ends.for_buyer")]
    assert len(page.outcomes) == 4


def test_a_deposit_button_shows_the_terms_and_each_role_its_own_amount():
    buyer = shown(BUYER, actions=["deposit", "cancel"])
    assert buyer.deposit_terms
    deposit = buyer.buttons[0]
    assert deposit.label == "Deposit 1.1 ETH and agree to the terms"
    assert "agreeing to the terms" in deposit.explain
    assert [row[1] for row in buyer.terms] == [
        TEXT(f"trade.timeout.{then}") for _, then in WINDOWS.values()
    ]
    assert buyer.terms[0][0] == "Both deposit within 3 days"
    seller = shown(SELLER, actions=["deposit"])
    assert seller.buttons[0].label == "Deposit 0.1 ETH and agree to the terms"
    assert "passport in escrow" in seller.buttons[0].explain
    assert not shown(SELLER, state="funded", actions=["ship"]).deposit_terms


def test_final_buttons_are_marked_and_unknown_actions_are_not_offered():
    page = shown(state="shipped", actions=["confirm", "dispute", "frobnicate"])
    assert [(b.action, b.final) for b in page.buttons] == [("confirm", True), ("dispute", True)]
    assert "cannot dispute afterwards" in page.buttons[0].explain


def test_a_sent_action_is_pending_not_a_button_again():
    page = shown(actions=["deposit", "cancel"], pending=[Pending("deposit", BUYER)])
    assert [b.action for b in page.buttons] == ["cancel"]
    assert page.pending == ["Your deposit: sent, waiting for the chain."]
    seller = shown(SELLER, actions=["deposit"], pending=[Pending("deposit", BUYER)])
    assert [b.action for b in seller.buttons] == ["deposit"]  # the buyer's is not the seller's
    assert seller.pending == ["The buyer's deposit: sent, waiting for the chain."]
    arbiter = shown(ARBITER, state="arbitration", actions=["rule"], pending=[Pending("rule")])
    assert arbiter.buttons == []
    assert arbiter.pending == ["Your ruling: sent, waiting for the chain."]
    assert shown(pending=[Pending("something_new")]).pending == [TEXT("trade.pending.other")]


def test_the_disputed_trade_shows_the_proposed_arbiter_and_each_choice():
    page = shown(
        state="disputed",
        arbiter=REFEREE,
        buyer_choice=REFEREE.who.address,
        seller_choice=None,
        actions=["decline_arbiter", "accept_arbiter"],  # the service's order
    )
    assert page.arbiter.heading == TEXT("trade.arbiter.proposed")
    assert page.arbiter.name == "Fair Referee"
    assert (TEXT("trade.arbiter.profile.languages"), "en, fr") in page.arbiter.profile
    assert page.arbiter.choices == [
        "The buyer accepted this arbiter.",
        "Not yet chosen by the seller.",
    ]
    accept = page.buttons[0]
    assert accept.label == "Accept Fair Referee as arbiter"
    assert accept.fields == (("arbiter_address", REFEREE.who.address),)
    assert page.buttons[1].label == "Decline Fair Referee"
    assert not page.arbiter.accepted


def test_a_dispute_with_no_arbiter_to_propose_says_so_and_offers_no_accept():
    page = shown(state="disputed", arbiter=None, actions=["accept_arbiter", "decline_arbiter"])
    assert page.arbiter.heading == TEXT("trade.arbiter.none")
    assert page.buttons == []


def test_the_arbiter_reads_the_details_only_once_accepted():
    disputed = shown(ARBITER, state="disputed", arbiter=REFEREE)
    assert not disputed.details_open
    ruling = shown(ARBITER, state="arbitration", arbiter=REFEREE, actions=["rule"])
    assert [(b.action, b.key, b.fields) for b in ruling.buttons] == [
        ("rule", "rule_for_buyer", (("for_buyer", "true"),)),
        ("rule", "rule_for_seller", (("for_buyer", "false"),)),
    ]
    assert ruling.details_open
    assert ruling.headline == "In arbitration: waiting for your ruling"
    assert shown(BUYER, state="arbitration", arbiter=REFEREE).headline == (
        "In arbitration: waiting for Fair Referee's ruling"
    )
    assert "seller's 0.1 ETH deposit is paid to you" in ruling.buttons[0].explain
    assert shown(SELLER, state="disputed").details_open
    assert shown(BUYER, state="open").details_open


@pytest.mark.parametrize(
    ("outcome", "role", "tone", "passport"),
    [
        ("for_buyer", BUYER, "authentic", "trade.passport.seller"),
        ("for_buyer", SELLER, "unverifiable", "trade.passport.seller"),
        ("for_buyer", ARBITER, "authentic", "trade.passport.seller"),
        ("for_seller", SELLER, "authentic", "trade.passport.buyer"),
        ("completed", BUYER, "authentic", "trade.passport.buyer"),
        ("no_arbiter", SELLER, "unverifiable", "trade.passport.seller"),
    ],
)
def test_a_settled_trade_says_its_outcome_and_where_the_passport_went(
    outcome, role, tone, passport
):
    page = shown(role, state="settled", outcome=outcome, arbiter=REFEREE, credit=COIN)
    assert page.headline == TEXT(f"trade.outcome.{outcome}")
    assert page.tone == tone
    assert page.passport == TEXT(passport)
    assert page.credit == "1 ETH is yours to withdraw from the escrow."
    assert page.deadline is None


def test_nothing_left_to_withdraw_is_said():
    assert shown(state="settled", outcome="completed", credit=0).credit == TEXT("trade.credit.none")
    assert shown(state="funded", credit=0).credit is None


@pytest.mark.parametrize("role", ROLES)
def test_every_state_and_outcome_has_words_for_every_role(role):
    states = [*WINDOWS, "opening", "failed"]
    for state in states:
        assert shown(role, state=state, arbiter=REFEREE).headline
    for outcome in ("completed", "cancelled", "not_shipped", "no_arbiter", "no_ruling"):
        assert shown(role, state="settled", outcome=outcome).lead
    assert shown(role).you_are == TEXT(f"trade.you_are.{role}")


def test_a_role_not_in_the_trade_is_an_error():
    with pytest.raises(ValueError):
        trade_page(facts(), "stranger", False, NOW, TEXT)


def test_the_details_section_shows_messages_the_log_and_what_each_may_do():
    from provenance_api.web.trade_page import Access, Record, details

    records = [
        Record("Client", BUYER, NOW, "message", "It arrived broken."),
        Record("Shop", SELLER, NOW, "photo"),
    ]
    log = [Access("Fair Referee", ARBITER, "read", NOW), Access("Nosy", ARBITER, "refused", NOW)]
    shown = details(records, log, BUYER, "arbitration", False, TEXT)
    assert [m.text for m in shown.messages] == ["It arrived broken.", "A photo"]
    assert shown.messages[0].by == "Client (the buyer), 1 December 2026, 12:00 UTC"
    assert shown.log == [
        "Fair Referee (the arbiter) read the messages and evidence, 1 December 2026, 12:00 UTC",
        "Nosy (the arbiter) asked to read them and was refused, 1 December 2026, 12:00 UTC",
    ]
    assert shown.can_add and shown.can_export and not shown.can_erase
    settled = details(records, log, SELLER, "settled", False, TEXT)
    assert settled.can_erase and not settled.can_add
    assert not details(records, None, ARBITER, "settled", False, TEXT).can_erase
    erased = details([], log, BUYER, "settled", True, TEXT)
    assert erased.erased and not erased.can_erase and not erased.can_add


def test_a_failed_write_of_the_viewers_offers_its_button_again():
    failed = [Pending("deposit", BUYER, "insufficient funds")]
    page = shown(actions=["deposit", "cancel"], pending=failed)
    assert [b.action for b in page.buttons] == ["deposit", "cancel"]
    assert page.pending == [TEXT("trade.failed")]
    # Someone else's failure, or one the viewer can no longer retry, says nothing.
    assert shown(SELLER, actions=["deposit"], pending=failed).pending == []
    assert shown(state="funded", actions=["dispute"], pending=failed).pending == []


def test_the_access_log_is_one_line_per_reader_and_access_with_its_count():
    from provenance_api.web.trade_page import Access, access_lines

    later = NOW + timedelta(minutes=5)
    log = [
        Access("Client", BUYER, "read", NOW),
        Access("Fair Referee", ARBITER, "read", later),
        Access("Client", BUYER, "read", later),
        Access("Client", BUYER, "export", later),
    ]
    assert access_lines(log, TEXT) == [
        "Client (the buyer) read the messages and evidence, 1 December 2026, 12:05 UTC"
        " (2 times since 1 December 2026, 12:00 UTC)",
        "Fair Referee (the arbiter) read the messages and evidence, 1 December 2026, 12:05 UTC",
        "Client (the buyer) exported the messages and evidence, 1 December 2026, 12:05 UTC",
    ]


def test_a_party_may_choose_another_registered_arbiter_named_in_the_choices():
    other = Arbiter(Who("Second Opinion", "0x" + "cd" * 20))
    registry = [REFEREE, other, Arbiter(Who("Shop itself", "0x" + "11" * 20))]
    page = shown(
        state="disputed",
        arbiter=REFEREE,
        registry=registry,
        seller_choice=other.who.address,
        actions=["accept_arbiter", "decline_arbiter"],
    )
    assert page.other_arbiters == [(other.who.address, "Second Opinion")]  # not a party
    assert page.arbiter.choices[1] == "The seller accepted another arbiter: Second Opinion."
    sent = shown(
        state="disputed",
        arbiter=REFEREE,
        registry=registry,
        actions=["accept_arbiter"],
        pending=[Pending("accept", BUYER)],
    )
    assert sent.other_arbiters == []
    assert shown(ARBITER, state="arbitration", registry=registry).other_arbiters == []


@pytest.mark.parametrize(
    "name", ["trade_base.html", "trade.html", "trades.html", "sign_in.html", "trade_missing.html"]
)
def test_every_sentence_of_the_trade_pages_is_in_the_catalogue(name: str) -> None:
    import re
    from pathlib import Path

    from provenance_api.web import strings

    template = (Path(strings.__file__).parent / "templates" / name).read_text()
    keys = set(re.findall(r"\bt\('([a-z_.]+)'", template))
    assert keys and keys <= set(strings.ENGLISH), sorted(keys - set(strings.ENGLISH))
    # Nothing a person reads is written in the template itself.
    bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", template, flags=re.S)
    bare = re.sub(r"<[^>]+>", " ", bare, flags=re.S)
    assert re.findall(r"[A-Za-z]{2,}", bare) == []
