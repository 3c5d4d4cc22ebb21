"""Custody and ownership of one item from its events: who holds it, who owns it, what is odd.

Pure: no I/O; events are plain values, times are arguments.

Custody (EPCIS possessing party) and ownership (owning party) are separate: a carrier holds
goods it does not own. The rules fold over the item's events in event-time order, never in
arrival order, so that a late-arriving event lands where it happened and the answer depends
only on what happened, not on when the API heard of it:

- `commissioning` by a party: it possesses and owns the item (unless the event names
  another owner).
- `shipping` by the giver, naming `to_party`: the item is in transit to that party; custody
  stays with the giver until the taker receives it. A shipping by a party that does not hold
  the item is accepted and flagged.
- `receiving` by a party that the latest unreceived shipping named as `to_party`: custody
  moves to the receiver (a handoff). A receiving that matches no earlier shipping is accepted
  and flagged, and custody does not move: nobody handed the item over.
- An event naming `owner` moves ownership (title) to it; custody is untouched.
- Events at the same second: commissioning first, then shipping, then the rest, then by
  arrival and id, so that a handoff recorded within one second still matches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

COMMISSIONING = "commissioning"
SHIPPING = "shipping"
RECEIVING = "receiving"

# Order of steps recorded at the same second (see the module docstring).
_RANK = {COMMISSIONING: 0, SHIPPING: 1}
_LATER = 2

UNMATCHED_RECEIVING = "unmatched_receiving"
SHIPPED_BY_NON_HOLDER = "shipped_by_non_holder"
UNRECEIVED_SHIPPING_REPLACED = "unreceived_shipping_replaced"
COMMISSIONED_TWICE = "commissioned_twice"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One accepted custody event of the item, reduced to what the rules read.

    `party` recorded it (the signing device's organization); `event_time` is UTC seconds
    (the time-zone offset does not order events); `arrival` is the order the API accepted it.
    """

    event_id: str
    biz_step: str
    party: str
    event_time: int
    arrival: int
    from_party: str | None = None
    to_party: str | None = None
    owner: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Flag:
    """An accepted event that does not fit the story: a code and a sentence for people."""

    event_id: str
    code: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Handoff:
    """Custody moved from `giver` to `taker`: the shipping matched by the receiving."""

    shipping_id: str
    receiving_id: str
    giver: str
    taker: str
    event_time: int


@dataclasses.dataclass(frozen=True, slots=True)
class Custody:
    """Where the item stands after its events."""

    possessor: str | None
    owner: str | None
    in_transit_to: str | None
    handoffs: tuple[Handoff, ...]
    flags: tuple[Flag, ...]


def in_event_order(events: Iterable[Event]) -> list[Event]:
    """The events by event time (not arrival); ties as the module docstring says."""
    return sorted(
        events,
        key=lambda e: (e.event_time, _RANK.get(e.biz_step, _LATER), e.arrival, e.event_id),
    )


def custody(events: Sequence[Event]) -> Custody:
    """Who possesses and who owns the item after `events` (in any order), and what is odd."""
    possessor: str | None = None
    owner: str | None = None
    shipping: Event | None = None  # the latest shipping not yet received
    handoffs: list[Handoff] = []
    flags: list[Flag] = []
    commissioned = False

    for event in in_event_order(events):
        if event.biz_step == COMMISSIONING:
            if commissioned:
                flags.append(Flag(event.event_id, COMMISSIONED_TWICE, "commissioned again"))
            else:
                possessor, owner, commissioned = event.party, event.party, True
        elif event.biz_step == SHIPPING:
            if event.party != possessor:
                flags.append(
                    Flag(
                        event.event_id,
                        SHIPPED_BY_NON_HOLDER,
                        f"shipped by {event.party}, but {possessor or 'nobody'} held it",
                    )
                )
            if shipping is not None:
                flags.append(
                    Flag(
                        shipping.event_id,
                        UNRECEIVED_SHIPPING_REPLACED,
                        f"shipping to {shipping.to_party} was never received before another",
                    )
                )
            shipping = event
        elif event.biz_step == RECEIVING:
            if shipping is not None and shipping.to_party == event.party:
                handoffs.append(
                    Handoff(
                        shipping.event_id,
                        event.event_id,
                        shipping.party,
                        event.party,
                        event.event_time,
                    )
                )
                possessor, shipping = event.party, None
            else:
                expected = f"a shipping to {shipping.to_party}" if shipping else "no shipping"
                flags.append(
                    Flag(
                        event.event_id,
                        UNMATCHED_RECEIVING,
                        f"received by {event.party}, but there was {expected} before it",
                    )
                )
        if event.owner is not None:
            owner = event.owner

    return Custody(
        possessor=possessor,
        owner=owner,
        in_transit_to=shipping.to_party if shipping else None,
        handoffs=tuple(handoffs),
        flags=tuple(flags),
    )
