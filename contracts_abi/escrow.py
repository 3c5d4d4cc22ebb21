"""TradeEscrow's enums and argument shapes, mirroring contracts_abi/src/TradeEscrow.sol.

Pure: no I/O. The API builds the contract's arguments from these, and tests read its
answers with them.
"""

from __future__ import annotations

import enum
from dataclasses import astuple, dataclass

from contracts_abi.eip712 import CustodyEvent, to_checksum_address


class State(enum.IntEnum):
    """TradeEscrow.State: where a trade stands."""

    NONE = 0
    OPEN = 1
    FUNDED = 2
    SHIPPED = 3
    DISPUTED = 4
    ARBITRATION = 5
    SETTLED = 6


class Outcome(enum.IntEnum):
    """TradeEscrow.Outcome: how a settled trade ended."""

    NONE = 0
    COMPLETED = 1
    CANCELLED = 2
    NOT_SHIPPED = 3
    NO_ARBITER = 4
    NO_RULING = 5
    FOR_BUYER = 6
    FOR_SELLER = 7


# The rule TradeEscrow calls RULE_REGISTRY_ORDER, its only arbiter-selection rule.
RULE_REGISTRY_ORDER = 0


@dataclass(frozen=True, slots=True)
class Terms:
    """TradeEscrow.Terms: the deal both parties agree to by depositing; windows in seconds."""

    token_id: int
    seller: str
    buyer: str
    deposit: int
    price: int
    deposit_window: int
    ship_window: int
    confirm_window: int
    agree_window: int
    rule_window: int
    arbiter_rule: int = RULE_REGISTRY_ORDER

    def as_tuple(self) -> tuple:
        """The struct as the contract's ABI takes it."""
        return astuple(self)

    @classmethod
    def from_tuple(cls, values: tuple | list) -> Terms:
        """Terms from the tuple `termsOf` returns."""
        token_id, seller, buyer, *rest = values
        return cls(token_id, to_checksum_address(seller), to_checksum_address(buyer), *rest)


@dataclass(frozen=True, slots=True)
class Status:
    """TradeEscrow.Status, as `statusOf` returns it."""

    state: State
    outcome: Outcome
    buyer_deposited: bool
    seller_deposited: bool
    passport_held: bool
    since: int
    opened_at: int
    arbiter: str
    buyer_choice: str
    seller_choice: str
    held: int
    cursor: int

    @classmethod
    def from_tuple(cls, values: tuple | list) -> Status:
        """Status from the tuple `statusOf` returns."""
        state, outcome, *rest = values
        return cls(State(state), Outcome(outcome), *rest)


def custody_event_args(event: CustodyEvent) -> tuple:
    """`event` as TradeEscrow.CustodyEvent, the struct `proveShipped` takes."""
    return (
        event.event_id.bytes,
        event.gtin,
        event.serial,
        event.biz_step,
        event.disposition,
        event.read_point,
        to_checksum_address(event.from_party),
        to_checksum_address(event.to_party),
        event.event_time,
        event.time_zone_offset,
        bytes(event.tag_evidence),
        to_checksum_address(event.device),
    )
