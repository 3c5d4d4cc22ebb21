"""What a trade's viewer can do next, and why an action would revert: TradeEscrow's rules.

Pure: no I/O; the trade's last reading and the chain's time are arguments. The API refuses
with these reasons before owing a write that the contract would revert, and the trade pages
show `next_actions` in plain words.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from datetime import UTC, datetime


class Action(enum.StrEnum):
    """What a party, the arbiter or anyone may ask of a trade."""

    DEPOSIT = "deposit"
    CANCEL = "cancel"
    SHIP = "ship"
    CONFIRM = "confirm"
    DISPUTE = "dispute"
    DECLINE_ARBITER = "decline_arbiter"
    ACCEPT_ARBITER = "accept_arbiter"
    RULE = "rule"
    TIMEOUT = "timeout"
    WITHDRAW = "withdraw"


class Viewer(enum.StrEnum):
    """The caller's part in a trade."""

    SELLER = "seller"
    BUYER = "buyer"
    ARBITER = "arbiter"


# The states TradeEscrow waits in, with the name of each window (TradeState values).
WINDOWS = {
    "open": "deposit",
    "funded": "shipping",
    "shipped": "confirmation",
    "disputed": "arbiter agreement",
    "arbitration": "ruling",
}

# Who may ever take an action: the rest are refused outright (403), whatever the state.
MAY = {
    Action.DEPOSIT: {Viewer.SELLER, Viewer.BUYER},
    Action.CANCEL: {Viewer.SELLER, Viewer.BUYER},
    Action.SHIP: {Viewer.SELLER},
    Action.CONFIRM: {Viewer.BUYER},
    Action.DISPUTE: {Viewer.SELLER, Viewer.BUYER},
    Action.DECLINE_ARBITER: {Viewer.SELLER, Viewer.BUYER},
    Action.ACCEPT_ARBITER: {Viewer.SELLER, Viewer.BUYER},
    Action.RULE: {Viewer.ARBITER},
    Action.TIMEOUT: {Viewer.SELLER, Viewer.BUYER, Viewer.ARBITER},
    Action.WITHDRAW: {Viewer.SELLER, Viewer.BUYER, Viewer.ARBITER},
}


@dataclass(frozen=True)
class TradeView:
    """A trade as last read from the chain, and who is looking at it.

    `state` is a TradeState value; `deadline` the end (inclusive, unix seconds) of the current
    state's window, None when it waits for nothing; `arbiter` the proposed arbiter while
    disputed, the appointed one after; `credit` what the viewer can withdraw.
    """

    viewer: Viewer | None
    state: str
    deadline: int | None = None
    buyer_deposited: bool = False
    seller_deposited: bool = False
    arbiter: str | None = None
    buyer_choice: str | None = None
    seller_choice: str | None = None
    viewer_address: str | None = None
    credit: int = 0


def when(moment: int) -> str:
    """A unix time as the reasons write it."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def expired(view: TradeView, now: int) -> bool:
    """Whether the current state's window has passed (only `timeout` can settle it now)."""
    return view.state in WINDOWS and view.deadline is not None and now > view.deadline


def owes_timeout(state: str, deadline: int | None, now: int, grace: int = 0) -> bool:
    """Whether the service should settle a trade in `state` by `timeout` now.

    Only a waiting state, and only once `now` is more than `grace` seconds past its window's
    last second: the contract's `timeout` needs `block.timestamp > deadline`, and the grace
    lets the chain's clock pass the deadline too before the write is signed.
    """
    return state in WINDOWS and deadline is not None and now > deadline + max(0, grace)


def next_actions(view: TradeView, now: int) -> list[str]:
    """The actions the viewer can take now, in the order a page offers them."""
    found = [action for action in Action if refusal(action, view, now) is None]
    return [str(action) for action in found]


def refusal(action: Action, view: TradeView, now: int) -> str | None:
    """Why `action` by the viewer would revert now, in plain words; None when it would not."""
    if view.viewer is None or view.viewer not in MAY[action]:
        return f"a {view.viewer or 'stranger'} cannot {_verb(action)} this trade"
    if action is Action.WITHDRAW:
        return None if view.credit > 0 else "you have nothing to withdraw"
    state = view.state
    if state == "opening":
        return "the trade is not open on the chain yet; try again in a moment"
    if state == "failed":
        return "the trade could not be opened on the chain"
    if state == "settled":
        return "the trade is settled"
    if view.deadline is None:  # a trade of an earlier escrow, shown as last read
        return "the trade's state cannot be read from the current escrow"
    if action is Action.TIMEOUT:
        if expired(view, now):
            return None
        return (
            f"the {WINDOWS[state]} window runs until {when(view.deadline)}; "
            "timeout settles the trade only after it"
        )
    if expired(view, now):
        return f"the window closed on {when(view.deadline)}; only timeout can settle it now"
    return _in_state(action, view, state)


def _in_state(action: Action, view: TradeView, state: str) -> str | None:
    seller = view.viewer is Viewer.SELLER
    if action in (Action.DEPOSIT, Action.CANCEL):
        if state != "open":
            return f"the trade is {state}: deposits and cancelling end once both deposited"
        done = view.seller_deposited if seller else view.buyer_deposited
        if action is Action.DEPOSIT and done:
            return "you already deposited"
        return None
    if action is Action.SHIP:
        return None if state == "funded" else f"the trade is {state}, not funded"
    if action in (Action.CONFIRM, Action.DISPUTE):
        if state in ("funded", "shipped"):
            return None
        return f"the trade is {state}: only a funded or shipped trade can be {_done(action)}"
    if action in (Action.DECLINE_ARBITER, Action.ACCEPT_ARBITER):
        if state != "disputed":
            return f"the trade is {state}: arbiters are chosen only while it is disputed"
        if action is Action.DECLINE_ARBITER and not view.arbiter:
            return "no arbiter is proposed; accept one of your own choice"
        return None
    if action is Action.RULE:
        if state != "arbitration":
            return f"the trade is {state}: only a trade in arbitration can be ruled on"
        if view.viewer_address is None or view.viewer_address != view.arbiter:
            return "you are not the arbiter both parties accepted"
        return None
    return None  # pragma: no cover - every action is handled above


def _verb(action: Action) -> str:
    return str(action).replace("_", " ")


def _done(action: Action) -> str:
    return "confirmed" if action is Action.CONFIRM else "disputed"


# --- The trade list's pages -------------------------------------------------------------------

_PAGE_PREFIX = "trades-before:"


def page_token(before: int) -> str:
    """The opaque token of the next page of a newest-first list: the last trade id shown.

    >>> page_token(42), page_after(page_token(42))
    ('dHJhZGVzLWJlZm9yZTo0Mg', 42)
    """
    text = f"{_PAGE_PREFIX}{before}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def page_after(token: str) -> int:
    """The trade id a `page_token` stands for: the next page holds older trades than it.

    >>> page_after("NDI")
    Traceback (most recent call last):
    ...
    ValueError: not a page token this API gave out
    """
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    digits = text.removeprefix(_PAGE_PREFIX) if text.startswith(_PAGE_PREFIX) else ""
    # Ids are BIGINT at most: a longer number would overflow the database driver (a 500).
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18 and int(digits) >= 1):
        raise ValueError("not a page token this API gave out")
    return int(digits)
