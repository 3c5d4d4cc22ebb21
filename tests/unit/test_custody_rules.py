"""Custody rules over hand-made histories: handoffs, ownership apart, flags, order of events."""

from __future__ import annotations

import dataclasses
import itertools

from provenance_api.services.custody_rules import (
    COMMISSIONED_TWICE,
    SHIPPED_BY_NON_HOLDER,
    UNMATCHED_RECEIVING,
    UNRECEIVED_SHIPPING_REPLACED,
    Event,
    Handoff,
    custody,
    in_event_order,
)

SUPPLIER, CARRIER, WAREHOUSE, RETAILER = "0xSupplier", "0xCarrier", "0xWarehouse", "0xRetailer"
T = 1_764_583_200


def ev(event_id, step, party, at, to=None, owner=None, arrival=0):
    return Event(event_id, step, party, T + at, arrival, to_party=to, owner=owner)


JOURNEY = [
    ev("c", "commissioning", SUPPLIER, 0),
    ev("s1", "shipping", SUPPLIER, 100, to=CARRIER),
    ev("r1", "receiving", CARRIER, 200),
    ev("s2", "shipping", CARRIER, 300, to=WAREHOUSE),
    ev("r2", "receiving", WAREHOUSE, 400),
]


def arrived(events, order):
    """`events` as if the API had heard of them in `order` (indexes)."""
    return [dataclasses.replace(events[i], arrival=n) for n, i in enumerate(order)]


def test_two_handoffs_move_custody_but_not_ownership():
    result = custody(arrived(JOURNEY, range(5)))
    assert (result.possessor, result.owner, result.in_transit_to) == (WAREHOUSE, SUPPLIER, None)
    assert result.handoffs == (
        Handoff("s1", "r1", SUPPLIER, CARRIER, T + 200),
        Handoff("s2", "r2", CARRIER, WAREHOUSE, T + 400),
    )
    assert result.flags == ()


def test_custody_stays_with_the_giver_while_in_transit():
    result = custody(JOURNEY[:2])
    assert (result.possessor, result.in_transit_to) == (SUPPLIER, CARRIER)
    assert result.flags == ()


def test_every_arrival_order_gives_the_same_answer():
    expected = custody(arrived(JOURNEY, range(5)))
    for order in itertools.permutations(range(5)):
        result = custody(list(reversed(arrived(JOURNEY, order))))
        assert (result.possessor, result.owner, result.handoffs, result.flags) == (
            expected.possessor,
            expected.owner,
            expected.handoffs,
            expected.flags,
        ), order


def test_a_receiving_with_no_shipping_is_flagged_and_moves_nothing():
    history = [ev("c", "commissioning", SUPPLIER, 0), ev("r", "receiving", WAREHOUSE, 50)]
    result = custody(history)
    assert result.possessor == SUPPLIER
    assert [(f.event_id, f.code) for f in result.flags] == [("r", UNMATCHED_RECEIVING)]
    assert "no shipping" in result.flags[0].message


def test_a_receiving_by_a_party_the_shipping_did_not_name_is_flagged():
    history = [*JOURNEY[:2], ev("r", "receiving", WAREHOUSE, 200)]
    result = custody(history)
    assert (result.possessor, result.in_transit_to) == (SUPPLIER, CARRIER)
    assert [f.code for f in result.flags] == [UNMATCHED_RECEIVING]
    assert CARRIER in result.flags[0].message
    # The named taker receiving afterwards still completes the handoff.
    result = custody([*history, ev("r1", "receiving", CARRIER, 250)])
    assert result.possessor == CARRIER and result.in_transit_to is None


def test_a_handoff_within_one_second_matches_whichever_arrived_first():
    history = [
        ev("c", "commissioning", SUPPLIER, 0, arrival=2),
        ev("r", "receiving", CARRIER, 10, arrival=0),  # same second, heard of first
        ev("s", "shipping", SUPPLIER, 10, to=CARRIER, arrival=1),
    ]
    assert [e.event_id for e in in_event_order(history)] == ["c", "s", "r"]
    result = custody(history)
    assert result.possessor == CARRIER and result.flags == ()


def test_a_receiving_timed_before_its_shipping_does_not_match():
    history = [
        ev("c", "commissioning", SUPPLIER, 0),
        ev("r", "receiving", CARRIER, 90),
        ev("s", "shipping", SUPPLIER, 100, to=CARRIER),
    ]
    result = custody(history)
    assert (result.possessor, result.in_transit_to) == (SUPPLIER, CARRIER)
    assert [(f.event_id, f.code) for f in result.flags] == [("r", UNMATCHED_RECEIVING)]


def test_ownership_moves_on_its_own_while_a_carrier_holds_the_goods():
    history = [*JOURNEY[:3], ev("sale", "holding", SUPPLIER, 250, owner=RETAILER)]
    result = custody(history)
    assert (result.possessor, result.owner) == (CARRIER, RETAILER)
    commissioned_for = [ev("c", "commissioning", SUPPLIER, 0, owner=RETAILER)]
    assert custody(commissioned_for).owner == RETAILER
    assert custody(commissioned_for).possessor == SUPPLIER


def test_shipping_by_a_party_that_does_not_hold_the_item_is_flagged():
    history = [JOURNEY[0], ev("s", "shipping", WAREHOUSE, 100, to=RETAILER)]
    result = custody([*history, ev("r", "receiving", RETAILER, 200)])
    assert [(f.event_id, f.code) for f in result.flags] == [("s", SHIPPED_BY_NON_HOLDER)]
    assert result.possessor == RETAILER  # accepted: the taker did receive what was shipped


def test_a_second_shipping_before_the_first_is_received_is_flagged():
    history = [*JOURNEY[:2], ev("s2", "shipping", SUPPLIER, 150, to=WAREHOUSE)]
    result = custody([*history, ev("r", "receiving", CARRIER, 200)])
    codes = [(f.event_id, f.code) for f in result.flags]
    assert codes == [("s1", UNRECEIVED_SHIPPING_REPLACED), ("r", UNMATCHED_RECEIVING)]
    assert (result.possessor, result.in_transit_to) == (SUPPLIER, WAREHOUSE)


def test_commissioning_twice_is_flagged_and_the_first_stands():
    history = [JOURNEY[0], ev("c2", "commissioning", CARRIER, 5)]
    result = custody(history)
    assert (result.possessor, result.owner) == (SUPPLIER, SUPPLIER)
    assert [f.code for f in result.flags] == [COMMISSIONED_TWICE]


def test_no_events_no_holder():
    result = custody([])
    assert (result.possessor, result.owner, result.in_transit_to) == (None, None, None)
