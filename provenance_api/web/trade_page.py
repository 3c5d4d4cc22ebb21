"""What a trade's page shows to one viewer (the seller, the buyer or the arbiter), in words.

Pure: no I/O; the trade's facts, the viewer, the clock's reading and the strings are
arguments. The route (api/trade_pages.py) gathers the facts from services.trades, and
templates/trade.html only lays these values out. What the viewer may do next comes from the
trades service (`actions`); this module only says each action in words, and what it leads to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from provenance_api.web.page import when
from provenance_api.web.strings import Strings

SELLER, BUYER, ARBITER = "seller", "buyer", "arbiter"
ROLES = (SELLER, BUYER, ARBITER)
WEI_PER_COIN = 10**18
# The waiting states, the window each may last (a Terms field) and the outcome of its timeout.
WINDOWS = {
    "open": ("deposit_window", "cancelled"),
    "funded": ("ship_window", "not_shipped"),
    "shipped": ("confirm_window", "completed"),
    "disputed": ("agree_window", "no_arbiter"),
    "arbitration": ("rule_window", "no_ruling"),
}
# Outcomes that give everything back to whoever paid it in (TradeEscrow `_unwind`).
UNWOUND = ("cancelled", "not_shipped", "no_arbiter", "no_ruling")
PROFILE_FIELDS = ("summary", "languages", "jurisdictions", "fee_note", "contact")
# Actions whose button warns (red): they settle the trade or give something up for good.
FINAL = frozenset({"confirm", "rule_for_buyer", "rule_for_seller", "dispute", "cancel"})
# The trades service's actions (services.trade_rules.Action) as buttons, in the order the page
# shows them: (wording, the fields the form posts). `rule` is two buttons, one for each side.
BUTTONS: dict[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = {
    "deposit": (("deposit", ()),),
    "cancel": (("cancel", ()),),
    "ship": (("ship", ()),),
    "confirm": (("confirm", ()),),
    "dispute": (("dispute", ()),),
    "accept_arbiter": (("accept", ()),),
    "decline_arbiter": (("decline", ()),),
    "rule": (
        ("rule_for_buyer", (("for_buyer", "true"),)),
        ("rule_for_seller", (("for_buyer", "false"),)),
    ),
    "timeout": (("timeout", ()),),
    "withdraw": (("withdraw", ()),),
}
# The name each action's chain writes go by (services.trades.action_key's second part).
WRITE_NAMES = {
    "deposit": "deposit",
    "cancel": "cancel",
    "ship": "ship",
    "confirm": "confirm",
    "dispute": "dispute",
    "accept_arbiter": "accept",
    "decline_arbiter": "decline",
    "rule": "rule",
    "timeout": "timeout",
}


@dataclass(frozen=True, slots=True)
class Who:
    """A party or an arbiter: its name and its address on the chain."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Arbiter:
    """An arbiter as the parties choose it: who, and what its public profile says."""

    who: Who
    profile: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Windows:
    """Seconds each waiting state may last (TradeEscrow.Terms)."""

    deposit_window: int
    ship_window: int
    confirm_window: int
    agree_window: int
    rule_window: int


@dataclass(frozen=True, slots=True)
class Pending:
    """A chain write of the trade's, sent and not yet mined: what it does, and for whom."""

    name: str  # deposit, ship, accept, ... (services.trades.action_key)
    party: str | None = None  # seller or buyer when the write is one party's
    error: str | None = None  # set when the write failed instead


@dataclass(frozen=True, slots=True)
class Facts:
    """A trade as last read from the chain and the index: everything the page is made of.

    `deadline` is the end of the current state's window (None when nothing waits on it);
    `arbiter` is the proposed arbiter while disputed, the accepted one after; `pending` the
    viewer's and the service's chain writes for this trade not yet mined, by function name;
    `credit` what the viewer may withdraw from the escrow (wei); `actions` what the viewer
    may do now, from the trades service.
    """

    trade_id: int
    state: str
    outcome: str | None
    deadline: datetime | None
    windows: Windows
    deposit: int
    price: int
    seller: Who
    buyer: Who
    item_name: str | None
    gtin: str
    serial: str
    buyer_deposited: bool = False
    seller_deposited: bool = False
    passport_held: bool = False
    arbiter: Arbiter | None = None
    buyer_choice: str | None = None
    seller_choice: str | None = None
    credit: int | None = None
    pending: Sequence[Pending] = ()
    actions: Sequence[str] = ()
    registry: Sequence[Arbiter] = ()  # the arbiters a party may accept instead (disputed)


@dataclass(frozen=True, slots=True)
class Deadline:
    """The current state's deadline: a date, how far off, and what happens when it passes."""

    when: str
    when_iso: str
    relative: str
    passed: bool
    then: str


@dataclass(frozen=True, slots=True)
class Button:
    """One thing the viewer can do: the action posted, its label, and what it leads to."""

    action: str
    key: str  # its wording (and its form's id): `rule` is rule_for_buyer or rule_for_seller
    label: str
    explain: str
    final: bool
    fields: tuple[tuple[str, str], ...] = ()  # hidden fields the form posts


@dataclass(frozen=True, slots=True)
class ArbiterView:
    """The arbiter section: who, its profile, and each party's choice in words."""

    heading: str
    name: str
    address: str
    profile: list[tuple[str, str]]
    choices: list[str]
    accepted: bool


@dataclass(frozen=True, slots=True)
class TradePage:
    """Everything the trade page shows, in the order it shows it."""

    title: str
    role: str
    you_are: str
    tone: str
    headline: str
    lead: str
    deadline: Deadline | None
    item: list[tuple[str, str]]
    parties: list[tuple[str, str, str]]  # (label, name, address)
    money: list[tuple[str, str]]
    outcomes: list[tuple[str, str]]
    terms: list[tuple[str, str]]
    passport: str
    arbiter: ArbiterView | None
    pending: list[str]
    buttons: list[Button]
    other_arbiters: list[tuple[str, str]]  # (address, name) a party may accept instead
    deposit_terms: bool  # a deposit button is shown: the terms sit next to it
    credit: str | None
    credit_left: bool  # something is left to withdraw (the credit line is highlighted)
    details_open: bool  # whether the viewer may read the trade's details (messages, evidence)
    self_custody: bool


def coin(wei: int, strings: Strings) -> str:
    """An amount of the chain's coin, from wei, without trailing zeros.

    >>> from provenance_api.web.strings import catalogue
    >>> coin(50_000_000_000_000_000, catalogue()), coin(2 * WEI_PER_COIN, catalogue())
    ('0.05 ETH', '2 ETH')
    >>> coin(0, catalogue()), coin(1, catalogue())
    ('0 ETH', '0.000000000000000001 ETH')
    """
    amount = Decimal(wei) / WEI_PER_COIN
    text = f"{amount:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return strings("trade.coin", amount=text)


UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _unit(count: int, unit: str, strings: Strings) -> str:
    return strings(f"trade.{unit}{'' if count == 1 else 's'}", count=count)


def duration(seconds: int, strings: Strings) -> str:
    """A time span in its two largest units, rounded down ("2 days and 23 hours").

    >>> from provenance_api.web.strings import catalogue
    >>> [duration(s, catalogue()) for s in (86400 * 3, 86400 + 7200, 7200, 90, 1, 0)]
    ['3 days', '1 day and 2 hours', '2 hours', '1 minute and 30 seconds', '1 second', '0 seconds']
    """
    seconds = max(0, seconds)
    for index, (unit, size) in enumerate(UNITS):
        if seconds >= size or unit == "second":
            first = _unit(seconds // size, unit, strings)
            if index + 1 == len(UNITS):
                return first
            smaller, smaller_size = UNITS[index + 1]
            rest = seconds % size // smaller_size
            if rest == 0:
                return first
            return strings("trade.and", first=first, second=_unit(rest, smaller, strings))
    raise AssertionError("unreachable")  # pragma: no cover


def relative(moment: datetime, now: datetime, strings: Strings) -> str:
    """How far `moment` is from `now`: "in 2 days", "3 hours ago".

    >>> from datetime import UTC, timedelta
    >>> from provenance_api.web.strings import catalogue
    >>> now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    >>> relative(now + timedelta(days=2, hours=3), now, catalogue())
    'in 2 days and 3 hours'
    >>> relative(now - timedelta(minutes=5), now, catalogue())
    '5 minutes ago'
    """
    seconds = int((moment - now).total_seconds())
    if seconds >= 0:
        return strings("trade.in", span=duration(seconds, strings))
    return strings("trade.ago", span=duration(-seconds, strings))


def _headline(facts: Facts, role: str, strings: Strings) -> tuple[str, str, str]:
    """(tone, headline, lead) of the trade's state, as the viewer reads it."""
    state = facts.state
    if state == "open":
        if not facts.buyer_deposited and not facts.seller_deposited:
            key = "trade.state.open.none"
        elif not facts.buyer_deposited:
            key = "trade.state.open.you" if role == BUYER else "trade.state.open.buyer"
        else:
            key = "trade.state.open.you" if role == SELLER else "trade.state.open.seller"
        return "suspicious", strings(key), strings("trade.state.open.lead")
    if state == "arbitration":
        name = facts.arbiter.who.name if facts.arbiter else strings("trade.role.arbiter")
        key = "trade.state.arbitration.you" if role == ARBITER else "trade.state.arbitration"
        return "suspicious", strings(key, arbiter=name), strings("trade.state.arbitration.lead")
    if (state, role) in (("funded", SELLER), ("shipped", BUYER)):  # it waits on the viewer
        return (
            "suspicious",
            strings(f"trade.state.{state}.you"),
            strings(f"trade.state.{state}.lead"),
        )
    if state == "settled":
        outcome = facts.outcome or "completed"
        tone = "authentic" if outcome in ("completed", f"for_{role}") else "unverifiable"
        if role == ARBITER and outcome in ("for_buyer", "for_seller"):
            tone = "authentic"
        return (
            tone,
            strings(f"trade.outcome.{outcome}"),
            strings(f"trade.outcome.{outcome}.lead"),
        )
    tone = {"disputed": "counterfeit", "failed": "counterfeit"}.get(state, "suspicious")
    return tone, strings(f"trade.state.{state}"), strings(f"trade.state.{state}.lead")


def deadline(facts: Facts, now: datetime, strings: Strings) -> Deadline | None:
    """The current waiting state's deadline, or None when nothing waits on a clock."""
    if facts.state not in WINDOWS or facts.deadline is None:
        return None
    then = WINDOWS[facts.state][1]
    end = facts.deadline
    passed = end < now
    return Deadline(
        when=when(end),
        when_iso=end.isoformat(),
        relative=relative(end, now, strings),
        passed=passed,
        then=strings(f"trade.timeout.{then}"),
    )


def _money(facts: Facts, strings: Strings) -> list[tuple[str, str]]:
    rows = [
        (strings("trade.money.deposit"), coin(facts.deposit, strings)),
        (strings("trade.money.price"), coin(facts.price, strings)),
        (strings("trade.money.buyer_pays"), coin(facts.deposit + facts.price, strings)),
        (strings("trade.money.seller_pays"), coin(facts.deposit, strings)),
    ]
    if facts.state not in ("opening", "failed", "settled"):
        held = (facts.deposit + facts.price) * facts.buyer_deposited + (
            facts.deposit * facts.seller_deposited
        )
        rows.append((strings("trade.money.held"), coin(held, strings)))
        rows.append(
            (
                strings("trade.money.buyer_deposit"),
                strings("trade.paid" if facts.buyer_deposited else "trade.not_paid"),
            )
        )
        rows.append(
            (
                strings("trade.money.seller_deposit"),
                strings("trade.paid" if facts.seller_deposited else "trade.not_paid"),
            )
        )
    return rows


def _outcomes(facts: Facts, strings: Strings) -> list[tuple[str, str]]:
    """Who gets what on each way the trade can end (as TradeEscrow settles it)."""
    values = {
        "deposit": coin(facts.deposit, strings),
        "price": coin(facts.price, strings),
        "back": coin(facts.deposit + facts.price, strings),
    }
    return [
        (strings(f"trade.ends.{name}"), strings(f"trade.ends.{name}.text", **values))
        for name in ("completed", "for_buyer", "for_seller", "unwound")
    ]


def _terms(facts: Facts, strings: Strings) -> list[tuple[str, str]]:
    """Each waiting state's window and what its timeout does: what a deposit agrees to."""
    rows = []
    for state, (window, then) in WINDOWS.items():
        span = duration(getattr(facts.windows, window), strings)
        rows.append(
            (
                strings(f"trade.window.{state}", span=span),
                strings(f"trade.timeout.{then}"),
            )
        )
    return rows


def _passport(facts: Facts, strings: Strings) -> str:
    if facts.state == "settled":
        to_buyer = facts.outcome in ("completed", "for_seller")
        return strings("trade.passport.buyer" if to_buyer else "trade.passport.seller")
    if facts.passport_held:
        return strings("trade.passport.escrow")
    return strings("trade.passport.with_seller")


def _choice(
    choice: str | None, arbiter: Arbiter | None, party: str, facts: Facts, strings: Strings
) -> str:
    if not choice:
        return strings("trade.arbiter.choice.none", party=strings(f"trade.role.{party}"))
    if arbiter is not None and choice.lower() == arbiter.who.address.lower():
        return strings(
            "trade.arbiter.choice.this", party=strings(f"trade.role.{party}").capitalize()
        )
    named = {a.who.address.lower(): a.who.name for a in facts.registry}
    return strings(
        "trade.arbiter.choice.other",
        party=strings(f"trade.role.{party}").capitalize(),
        arbiter=named.get(choice.lower(), choice),
    )


def _arbiter(facts: Facts, strings: Strings) -> ArbiterView | None:
    if facts.state not in ("disputed", "arbitration", "settled") or facts.arbiter is None:
        if facts.state == "disputed":
            return ArbiterView(strings("trade.arbiter.none"), "", "", [], [], False)
        return None
    accepted = facts.state != "disputed"
    shown = facts.arbiter
    profile = [
        (strings(f"trade.arbiter.profile.{name}"), _profile_text(shown.profile.get(name)))
        for name in PROFILE_FIELDS
        if shown.profile.get(name)
    ]
    choices = []
    if not accepted:
        choices = [
            _choice(facts.buyer_choice, shown, BUYER, facts, strings),
            _choice(facts.seller_choice, shown, SELLER, facts, strings),
        ]
    heading = strings("trade.arbiter.accepted" if accepted else "trade.arbiter.proposed")
    return ArbiterView(heading, shown.who.name, shown.who.address, profile, choices, accepted)


def _profile_text(value: Any) -> str:
    """A profile field as text: lists joined by commas."""
    if isinstance(value, list | tuple):
        return ", ".join(str(part) for part in value)
    return str(value)


def _pending_mine(facts: Facts, role: str) -> set[str]:
    """The write names already sent for this viewer (or for nobody in particular)."""
    return {p.name for p in facts.pending if p.party in (None, role) and p.error is None}


def _failed_mine(facts: Facts, role: str) -> set[str]:
    """The write names of this viewer's that failed, and that it may still try again."""
    again = {WRITE_NAMES.get(action) for action in facts.actions}
    return {
        p.name
        for p in facts.pending
        if p.error is not None and p.party in (None, role) and p.name in again
    }


def buttons(facts: Facts, role: str, strings: Strings) -> list[Button]:
    """The viewer's next actions as buttons, each with what pressing it leads to."""
    values = {
        "deposit": coin(facts.deposit, strings),
        "price": coin(facts.price, strings),
        "pays": coin(facts.deposit + facts.price if role == BUYER else facts.deposit, strings),
        "arbiter": facts.arbiter.who.name if facts.arbiter else "",
    }
    sent = _pending_mine(facts, role) - _failed_mine(facts, role)
    shown = []
    offered = set(facts.actions)
    for action in (name for name in BUTTONS if name in offered):  # the page's order
        if WRITE_NAMES.get(action) in sent:
            continue  # sent already: the page says it waits for the chain
        extra: tuple[tuple[str, str], ...] = ()
        if action in ("accept_arbiter", "decline_arbiter"):
            if facts.arbiter is None:
                continue  # nobody proposed: nothing to accept or decline by a button
            extra = (("arbiter_address", facts.arbiter.who.address),)
        for key, fields in BUTTONS.get(action, ()):
            wording = f"trade.action.{key}"
            explain = f"{wording}.explain.{role}"
            if explain not in strings.messages:
                explain = f"{wording}.explain"
            shown.append(
                Button(
                    action=action,
                    key=key,
                    label=strings(wording, **values),
                    explain=strings(explain, **values),
                    final=key in FINAL,
                    fields=fields + extra,
                )
            )
    return shown


def pending(facts: Facts, role: str, strings: Strings) -> list[str]:
    """Each write sent and not yet mined, in words: whose, and that it waits for the chain."""
    lines = []
    if _failed_mine(facts, role):
        lines.append(strings("trade.failed"))
    for write in facts.pending:
        if write.error is not None:
            continue
        key = f"trade.pending.{write.name}"
        if key not in strings.messages:
            key = "trade.pending.other"
        if write.party == role or (
            write.party is None and write.name == "rule" and role == ARBITER
        ):
            whose = strings("trade.whose.you")
        elif write.party in (SELLER, BUYER):
            whose = strings(f"trade.whose.{write.party}")
        else:
            whose = strings("trade.whose.nobody")
        lines.append(strings(key, whose=whose))
    return lines


def other_arbiters(facts: Facts, role: str) -> list[tuple[str, str]]:
    """The arbiters a party may accept instead of the proposed one: (address, name).

    Offered while the party may accept an arbiter and has not just sent an acceptance; the
    contract (and the trades service before it) refuses one that is not eligible.
    """
    if "accept_arbiter" not in facts.actions or "accept" in _pending_mine(facts, role):
        return []
    proposed = facts.arbiter.who.address.lower() if facts.arbiter else None
    parties = {facts.seller.address.lower(), facts.buyer.address.lower()}
    return [
        (a.who.address, a.who.name)
        for a in facts.registry
        if a.who.address.lower() != proposed and a.who.address.lower() not in parties
    ]


def details_open(facts: Facts, role: str) -> bool:
    """Whether the viewer may read the details: a party always, the arbiter once accepted.

    >>> w = Windows(1, 1, 1, 1, 1)
    >>> f = Facts(1, "disputed", None, None, w, 0, 0, Who("S", "0x1"), Who("B", "0x2"),
    ...           None, "0", "S1")
    >>> details_open(f, "buyer"), details_open(f, "arbiter")
    (True, False)
    """
    if role in (SELLER, BUYER):
        return True
    return facts.state in ("arbitration", "settled") and facts.arbiter is not None


def trade_page(
    facts: Facts, role: str, self_custody: bool, now: datetime, strings: Strings
) -> TradePage:
    """The page of trade `facts` as `role` sees it at `now`."""
    if role not in ROLES:
        raise ValueError(f"no such role: {role!r}")
    tone, headline, lead = _headline(facts, role, strings)
    item_name = facts.item_name or strings("trade.item.unnamed")
    shown = buttons(facts, role, strings)
    credit = None
    if facts.credit:
        credit = strings("trade.credit", amount=coin(facts.credit, strings))
    elif facts.credit == 0 and facts.state == "settled":
        credit = strings("trade.credit.none")
    return TradePage(
        title=strings("trade.title", id=facts.trade_id, item=item_name),
        role=role,
        you_are=strings(f"trade.you_are.{role}"),
        tone=tone,
        headline=headline,
        lead=lead,
        deadline=deadline(facts, now, strings),
        item=[
            (strings("product.name"), item_name),
            (strings("product.gtin"), facts.gtin),
            (strings("product.serial"), facts.serial),
        ],
        parties=[
            (strings("trade.role.seller").capitalize(), facts.seller.name, facts.seller.address),
            (strings("trade.role.buyer").capitalize(), facts.buyer.name, facts.buyer.address),
        ],
        money=_money(facts, strings),
        outcomes=_outcomes(facts, strings),
        terms=_terms(facts, strings),
        passport=_passport(facts, strings),
        arbiter=_arbiter(facts, strings),
        pending=pending(facts, role, strings),
        buttons=shown,
        other_arbiters=other_arbiters(facts, role),
        deposit_terms=any(button.action == "deposit" for button in shown),
        credit=credit,
        credit_left=bool(facts.credit),
        details_open=details_open(facts, role),
        self_custody=self_custody,
    )


# ---- The trade's details (messages, evidence) and their access log (services.trade_details).

MESSAGE_MAX = 20_000  # characters a message form takes (the vault's limit is bytes of UTF-8)


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the trade's details as the page shows it: who wrote it, when, what."""

    author: str
    author_role: str
    at: datetime
    kind: str  # details, message, photo, evidence
    text: str | None = None
    sequence: int = 0  # its number in the trade's details (a file is fetched by it)


@dataclass(frozen=True, slots=True)
class Access:
    """One access to the trade's details: who, in which role, did what, when."""

    who: str
    role: str
    action: str  # read, export, write, erase, refused
    at: datetime


@dataclass(frozen=True, slots=True)
class Shown:
    """A record as a line of the page."""

    text: str
    by: str
    file: int | None = None  # the record's sequence when it is a file to download


@dataclass(frozen=True, slots=True)
class Details:
    """The details section: the records, the log, and what the viewer may do with them."""

    messages: list[Shown]
    log: list[str] | None
    can_add: bool
    can_export: bool
    can_erase: bool
    erased: bool
    max_length: int = MESSAGE_MAX


def access_lines(log: Sequence[Access], strings: Strings) -> list[str]:
    """The access log in words: one line per reader and kind of access, in the order each
    first happened, with how often and when last (every view of the page is a read)."""
    runs: dict[tuple[str, str, str], list[Access]] = {}
    for entry in log:
        runs.setdefault((entry.who, entry.role, entry.action), []).append(entry)
    lines = []
    for (name, role, action), run in runs.items():
        who = strings("trade.details.who", name=name, role=strings(f"trade.role.{role}"))
        line = strings(f"trade.access.{action}", who=who, when=when(run[-1].at))
        if len(run) > 1:
            line += " " + strings("trade.access.times", count=len(run), since=when(run[0].at))
        lines.append(line)
    return lines


def details(
    records: Sequence[Record],
    log: Sequence[Access] | None,
    role: str,
    state: str,
    erased: bool,
    strings: Strings,
) -> Details:
    """The details section for `role`: a party adds, exports and (once settled) erases.

    The vault decides who reads and whether erasure is allowed now (a legal hold); the page
    offers erasure once the trade is settled, and shows the vault's reason if it refuses.
    """
    shown = []
    for record in records:
        if record.kind == "message" and record.text is not None:
            text = record.text
        else:
            text = strings(f"trade.details.kind.{record.kind}")
        who = strings(
            "trade.details.who",
            name=record.author,
            role=strings(f"trade.role.{record.author_role}"),
        )
        is_file = record.kind in ("photo", "evidence")
        shown.append(
            Shown(
                text,
                strings("trade.details.by", who=who, when=when(record.at)),
                record.sequence if is_file else None,
            )
        )
    lines = None if log is None else access_lines(log, strings)
    party = role in (SELLER, BUYER)
    return Details(
        messages=shown,
        log=lines,
        can_add=party and not erased and state != "settled",
        can_export=True,
        can_erase=party and not erased and state == "settled",
        erased=erased,
    )
