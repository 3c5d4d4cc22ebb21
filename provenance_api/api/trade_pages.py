"""The trade pages for people at a browser: `/trades` and `/trades/<id>`, and their buttons.

They use the session of api/sign_in.py, not an API key, and call services.trades (and
services.trade_details for the messages and evidence) in-process with the signed-in
organization as the caller, as the JSON routes do: what the service refuses, the page
refuses, with its reason. A trade the organization is not part of is 404, as in the API.
Each button is a form POSTing to `/trades/<id>/<action>`, checked for its origin and CSRF
token first; a custodial organization's action owes its chain write and the page shows it as
sent (303 back to the trade), a self-custody organization gets the transactions to sign.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, redirect, request, url_for
from pydantic import ValidationError

from provenance_api.api import sign_in
from provenance_api.api.deps import runtime
from provenance_api.api.frame import unit_of_work
from provenance_api.api.trade_details import CHAIN_EXTENSION, EXTENSIONS, EscrowTradeChain
from provenance_api.api.trades import escrow_reader
from provenance_api.models import TradeRecordKind
from provenance_api.schemas import (
    TRADE_CONTENT_TYPES,
    TRADE_FILE_MAX_BYTES,
    ArbiterBrief,
    ArbiterChoice,
    TradeList,
    TradePublic,
    TradeRecordCreate,
    TradeShip,
    TransactionToSign,
)
from provenance_api.services import arbiters, trade_details, trades
from provenance_api.services.errors import (
    DomainError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    Unavailable,
)
from provenance_api.services.organizations import Caller
from provenance_api.services.ports import ChainState
from provenance_api.services.trade_details import TradeChain
from provenance_api.services.trade_rules import Action
from provenance_api.web import strings, trade_page

bp = Blueprint("trade_pages", __name__)
LIST_TEMPLATE = "trades.html"
TEMPLATE = "trade.html"
MISSING_TEMPLATE = "trade_missing.html"
ACTIONS = frozenset(action.value for action in Action)
# GET pages that write: a trade's page logs the read of its details (and refreshes the trade's
# cached state), the export and a file are logged too. They take SQLite's write lock at BEGIN
# (app._writes), as the JSON routes of the details do.
WRITING_READS = frozenset(
    {
        "trade_pages.list_trades",
        "trade_pages.show_trade",
        "trade_pages.export_details",
        "trade_pages.record_content",
    }
)
# A trade id as the database holds it (a positive BIGINT); any other number is no trade (404
# from the router, before a query could overflow).
TRADE = "<int(min=1, max=9223372036854775807):trade_id>"


def signed_in_only(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run `view` with the signed-in organization as `caller`; else go to the sign-in form."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        caller = sign_in.signed_in()
        if caller is None:
            return redirect(url_for("sign_in.sign_in_form"), 303)
        return view(caller, *args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Signed:
    """The signed-in organization: its name for the header, whether it keeps its own key."""

    name: str
    self_custody: bool


def _organization(caller: Caller) -> Signed:
    """The signed-in organization, as the page names it."""
    with unit_of_work() as uow:
        org = uow.organizations.get(caller.owner.id)
        assert org is not None  # sign_in.signed_in found it a moment ago
        return Signed(org.name, org.encrypted_key is None)


def _now() -> int:
    return int(time.time())


def _org_id(caller: Caller) -> int:
    assert caller.organization_id is not None  # operators cannot sign in (sign_in.sign_in)
    return caller.organization_id


def not_found(caller: Caller) -> Response:
    """The page of a trade the organization is not part of (or that does not exist)."""
    text = strings.catalogue()
    return sign_in.page(
        MISSING_TEMPLATE,
        404,
        who=_organization(caller).name,
        title=text("trade.not_found.heading"),
        message=text("trade.not_found.text"),
    )


def unavailable(caller: Caller) -> Response:
    """The page shown while the contracts are not deployed yet (503)."""
    text = strings.catalogue()
    return sign_in.page(
        MISSING_TEMPLATE,
        503,
        who=_organization(caller).name,
        title=text("trade.unavailable.heading"),
        message=text("trade.unavailable.text"),
    )


def _arbiter(brief: ArbiterBrief | None) -> trade_page.Arbiter | None:
    if brief is None:
        return None
    name = brief.display_name or brief.address
    return trade_page.Arbiter(trade_page.Who(name, brief.address), dict(brief.profile or {}))


def _pending(public: TradePublic) -> list[trade_page.Pending]:
    """The trade's writes not confirmed (owed, or failed), by name and party
    (services.trades.action_key)."""
    found = []
    for write in public.writes:
        if write.state == ChainState.CONFIRMED.value:
            continue
        parts = write.key.split(":")  # trade:<id>:<name>[:<party>[:...]]
        if len(parts) < 3:
            continue
        party = parts[3] if len(parts) > 3 and parts[3] in ("seller", "buyer") else None
        error = (write.error or "failed") if write.state == ChainState.FAILED.value else None
        found.append(trade_page.Pending(parts[2], party, error))
    return found


def facts(
    public: TradePublic,
    item_name: str | None,
    credit: int | None,
    registry: list[trade_page.Arbiter] | None = None,
) -> trade_page.Facts:
    """The view-model's facts from the trades service's answer."""
    arbiter = public.accepted_arbiter or public.proposed_arbiter
    return trade_page.Facts(
        trade_id=public.id,
        state=public.state,
        outcome=public.outcome,
        deadline=public.deadline,
        windows=trade_page.Windows(**public.windows.model_dump()),
        deposit=int(public.deposit),
        price=int(public.price),
        seller=trade_page.Who(public.seller.name, public.seller.address),
        buyer=trade_page.Who(public.buyer.name, public.buyer.address),
        item_name=item_name,
        gtin=public.gtin,
        serial=public.serial,
        buyer_deposited=public.buyer.deposited,
        seller_deposited=public.seller.deposited,
        passport_held=public.passport_held,
        arbiter=_arbiter(arbiter),
        buyer_choice=public.buyer.arbiter_choice,
        seller_choice=public.seller.arbiter_choice,
        credit=credit,
        pending=_pending(public),
        actions=public.next_actions,
        registry=registry or [],
    )


def _registry(public: TradePublic) -> list[trade_page.Arbiter]:
    """The registered arbiters (while the trade is disputed: a party may choose another)."""
    if public.state != "disputed":
        return []
    listed = arbiters.list_arbiters(unit_of_work(), request.url_root)
    return [
        trade_page.Arbiter(trade_page.Who(a.display_name, a.address), a.profile)
        for a in listed.items
        if a.registered == ChainState.CONFIRMED.value and a.retired_at is None
    ]


def _item_name(gtin: str) -> str | None:
    with unit_of_work() as uow:
        product = uow.products.get(gtin)
        return product.name if product is not None else None


def _credit(caller: Caller, public: TradePublic) -> int | None:
    """What the organization may withdraw, once the trade is settled (None before)."""
    if public.state != "settled":
        return None
    return int(trades.credit_of(escrow_reader(), unit_of_work(), _org_id(caller)).credit)


def _show(
    caller: Caller,
    public: TradePublic,
    status: int = 200,
    problem: str | None = None,
    transactions: list[TransactionToSign] | None = None,
) -> Response:
    """The trade page of `public` for the signed-in organization."""
    text = strings.catalogue()
    org = _organization(caller)
    shown = trade_page.trade_page(
        facts(public, _item_name(public.gtin), _credit(caller, public), _registry(public)),
        public.viewer,
        org.self_custody,
        datetime.now(UTC),
        text,
    )
    return sign_in.page(
        TEMPLATE,
        status,
        who=org.name,
        title=shown.title,
        headline=shown.headline,
        lead=shown.lead,
        tone=shown.tone,
        p=shown,
        trade_id=public.id,
        item_url=f"/01/{public.gtin}/21/{quote(public.serial, safe='')}",
        details=_details(caller, public, shown),
        transactions=transactions,
        problem=problem,
    )


def _details_chain() -> TradeChain:
    """The vault's view of the chain (api/trade_details.py's, or the one tests put there)."""
    factory = current_app.extensions.get(CHAIN_EXTENSION)
    return factory() if factory is not None else EscrowTradeChain()


def _names(public: TradePublic) -> dict[int, str]:
    """Organization id -> name, for the trade's parties and its accepted arbiter."""
    names = {
        public.seller.organization_id: public.seller.name,
        public.buyer.organization_id: public.buyer.name,
    }
    arbiter = public.accepted_arbiter
    if arbiter is not None and arbiter.organization_id is not None:
        names[arbiter.organization_id] = arbiter.display_name or arbiter.address
    return names


def _name(names: dict[int, str], organization_id: int) -> str:
    """An organization as the details name it: by name when it is in the trade."""
    return names.get(organization_id) or strings.catalogue()(
        "trade.details.someone", id=organization_id
    )


def _details(
    caller: Caller, public: TradePublic, shown: trade_page.TradePage
) -> trade_page.Details | None:
    """The trade's messages and evidence and their access log, read through the vault (each
    read is logged there); None when the viewer may not read them (yet)."""
    if not shown.details_open:
        return None
    text = strings.catalogue()
    names = _names(public)
    org_id = _org_id(caller)
    now = datetime.now(UTC)
    chain = _details_chain()
    erased = False
    try:
        read = trade_details.read_details(
            unit_of_work(), runtime().trade_keys, chain, org_id, public.id, now
        )
        records = [
            trade_page.Record(
                _name(names, r.author_organization_id),
                r.author_role,
                r.created_at,
                r.kind.value if hasattr(r.kind, "value") else str(r.kind),
                r.text,
                r.sequence,
            )
            for r in read.records
        ]
    except Gone:
        erased, records = True, []
    except (NotFound, Forbidden):
        return None
    log = trade_details.access_log(unit_of_work(), chain, org_id, public.id, now)
    accesses = [
        trade_page.Access(
            _name(names, entry.organization_id),
            entry.role,
            entry.action,
            entry.at,
        )
        for entry in log.items
    ]
    return trade_page.details(records, accesses, public.viewer, public.state, erased, text)


@bp.get("/trades")
@signed_in_only
def list_trades(caller: Caller) -> Response:
    """The organization's trades, as seller, buyer or arbiter, newest first, a page at a time
    (`?page=` is the API's page token)."""
    text = strings.catalogue()
    org = _organization(caller)
    token = request.args.get("page") or None
    try:
        found = _trades_page(caller, token)
    except InvalidInput:
        # A mangled "older trades" link: the list from its start, rather than an error page.
        found = _trades_page(caller, None)
    except Unavailable:
        return unavailable(caller)
    now = datetime.now(UTC)
    rows = []
    for public in found.items:
        shown = trade_page.trade_page(
            facts(public, _item_name(public.gtin), None), public.viewer, False, now, text
        )
        rows.append(
            {
                "id": public.id,
                "title": shown.title,
                "as_role": text("trades.as", role=text(f"trade.role.{public.viewer}")),
                "state": shown.headline,
            }
        )
    return sign_in.page(
        LIST_TEMPLATE,
        200,
        who=org.name,
        title=text("trades.heading"),
        trades=rows,
        more=found.next_page_token,
    )


def _trades_page(caller: Caller, token: str | None) -> TradeList:
    return trades.list_trades(
        unit_of_work(), escrow_reader(), _org_id(caller), _now(), page_token=token
    )


@bp.get("/trades/" + TRADE)
@signed_in_only
def show_trade(caller: Caller, trade_id: int) -> Response:
    """The trade as this organization (seller, buyer or arbiter) sees it."""
    try:
        public = trades.get_trade(
            unit_of_work(), escrow_reader(), _org_id(caller), trade_id, _now()
        )
    except NotFound:
        return not_found(caller)
    except Unavailable:
        return unavailable(caller)
    return _show(caller, public)


def _refused(caller: Caller, trade_id: int, error: DomainError) -> Response:
    """The trade page again, with the service's reason for refusing (its status)."""
    text = strings.catalogue()
    try:
        public = trades.get_trade(
            unit_of_work(), escrow_reader(), _org_id(caller), trade_id, _now()
        )
    except NotFound:
        return not_found(caller)
    return _show(caller, public, error.status, problem=text("trade.refused", reason=error.message))


def _extra(action: str) -> dict[str, Any]:
    """The service's arguments an action's form carries; InvalidInput names a bad field."""
    form = request.form
    if action == Action.ACCEPT_ARBITER.value:
        try:
            return {"choice": ArbiterChoice(arbiter_address=form.get("arbiter_address", ""))}
        except ValidationError:
            raise _invalid("arbiter_address", "not an arbiter's address") from None
    if action == Action.RULE.value:
        side = form.get("for_buyer", "")
        if side not in ("true", "false"):
            raise _invalid("for_buyer", "say which side wins: true or false")
        return {"for_buyer": side == "true"}
    if action == Action.SHIP.value:
        event_id = form.get("event_id", "").strip()
        if not event_id:
            return {"ship": TradeShip()}
        try:
            return {"ship": TradeShip(proof="custody_event", event_id=event_id)}
        except ValidationError:
            raise _invalid("event_id", "a custody event's id, as its reader recorded it") from None
    return {}


def _invalid(field: str, reason: str) -> InvalidInput:
    """A form field the page cannot send on, named as the JSON routes would name it."""
    return InvalidInput(f"{field}: {reason}", {field: reason})


@bp.post("/trades/" + TRADE + "/<action>")
@signed_in_only
def act(caller: Caller, trade_id: int, action: str) -> Response:
    """Do `action` on the trade as this organization, then show the trade again."""
    if not sign_in.form_is_ours():
        return sign_in.refused()
    if action not in ACTIONS:
        return not_found(caller)
    try:
        escrow = escrow_reader()
        if action == Action.WITHDRAW.value:
            # A withdrawal is of the organization's credit, not of one trade; check the trade
            # is the caller's first, so that a stranger's id is 404 here as everywhere.
            trades.get_trade(unit_of_work(), escrow, _org_id(caller), trade_id, _now())
            result, _ = trades.withdraw(unit_of_work(), escrow, _org_id(caller))
            transactions = result.transactions
        else:
            done = trades.act(
                unit_of_work(),
                escrow,
                runtime().keybox,
                _org_id(caller),
                trade_id,
                Action(action),
                _now(),
                **_extra(action),
            )
            transactions = done.result.transactions
    except NotFound as exc:
        if set(exc.fields) - {"trade_id"}:  # something the form named, not the trade
            return _refused(caller, trade_id, exc)
        return not_found(caller)
    except Unavailable:
        return unavailable(caller)
    except DomainError as exc:
        return _refused(caller, trade_id, exc)
    if transactions:  # a self-custody organization signs these itself
        public = trades.get_trade(unit_of_work(), escrow, _org_id(caller), trade_id, _now())
        return _show(caller, public, 200, transactions=transactions)
    return _back(trade_id)


def _back(trade_id: int) -> Response:
    return redirect(url_for("trade_pages.show_trade", trade_id=trade_id), 303)


def _records() -> list[TradeRecordCreate]:
    """The records the details form asks to add: its message, its file, or both."""
    form, records = request.form, []
    message = form.get("message", "").strip()
    upload = request.files.get("file")
    if upload is not None and not upload.filename:
        upload = None  # the browser sends an empty part when no file was chosen
    if not message and upload is None:
        raise _invalid("message", "write a message of 1 to 20,000 characters, or choose a file")
    if message:
        try:
            records.append(TradeRecordCreate(kind=TradeRecordKind.MESSAGE, text=message))
        except ValidationError:
            raise _invalid("message", "write a message of 1 to 20,000 characters") from None
    if upload is not None:
        try:
            content = upload.stream.read(TRADE_FILE_MAX_BYTES + 1)
        finally:
            upload.close()  # a large upload is spooled to a temporary file
        if not content or len(content) > TRADE_FILE_MAX_BYTES:
            raise _invalid("file", "choose a file of 1 byte to 2 MB")
        content_type = upload.mimetype
        if content_type not in TRADE_CONTENT_TYPES:
            raise _invalid("file", "choose a JPEG, PNG, PDF or plain text file")
        kind = (
            TradeRecordKind.PHOTO if content_type.startswith("image/") else TradeRecordKind.EVIDENCE
        )
        records.append(
            TradeRecordCreate(
                kind=kind,
                content_type=content_type,
                data=base64.b64encode(content).decode(),
            )
        )
    return records


@bp.post("/trades/" + TRADE + "/messages")
@signed_in_only
def add_detail(caller: Caller, trade_id: int) -> Response:
    """Add a message, a photo or a file of evidence to the trade's details, then show the
    trade again."""
    if not sign_in.form_is_ours():
        return sign_in.refused()
    try:
        for record in _records():
            trade_details.add_record(
                unit_of_work(),
                runtime().trade_keys,
                _details_chain(),
                _org_id(caller),
                trade_id,
                record,
                datetime.now(UTC),
            )
    except NotFound:
        return not_found(caller)
    except DomainError as exc:
        return _refused(caller, trade_id, exc)
    return _back(trade_id)


@bp.get("/trades/" + TRADE + "/records/<int(min=1, max=9223372036854775807):sequence>")
@signed_in_only
def record_content(caller: Caller, trade_id: int, sequence: int) -> Response:
    """One file of the trade's details (a photo, a PDF), always as a download (logged)."""
    try:
        content_type, content = trade_details.read_content(
            unit_of_work(),
            runtime().trade_keys,
            _details_chain(),
            _org_id(caller),
            trade_id,
            sequence,
            datetime.now(UTC),
        )
    except (NotFound, Forbidden, Gone):
        return not_found(caller)
    except DomainError as exc:
        return _refused(caller, trade_id, exc)
    name = f"trade-{trade_id}-{sequence}.{EXTENSIONS.get(content_type, 'bin')}"
    response = current_app.response_class(content, 200, content_type=content_type)
    # A download, never a page of ours: a file one party uploaded cannot script the other's.
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/trades/" + TRADE + "/export")
@signed_in_only
def export_details(caller: Caller, trade_id: int) -> Response:
    """Everything of this trade's details the organization may read, and its access log, as a
    JSON file to keep (the export is logged by the vault)."""
    try:
        exported = trade_details.export_details(
            unit_of_work(),
            runtime().trade_keys,
            _details_chain(),
            _org_id(caller),
            trade_id,
            datetime.now(UTC),
        )
    except NotFound:
        return not_found(caller)
    except DomainError as exc:
        return _refused(caller, trade_id, exc)
    response = current_app.response_class(
        exported.model_dump_json(indent=2), 200, mimetype="application/json"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="trade-{trade_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/trades/" + TRADE + "/erase")
@signed_in_only
def erase_details(caller: Caller, trade_id: int) -> Response:
    """Erase the trade's details for good (its key is destroyed), when the vault allows it."""
    if not sign_in.form_is_ours():
        return sign_in.refused()
    try:
        trade_details.erase_details(
            unit_of_work(), _details_chain(), _org_id(caller), trade_id, datetime.now(UTC)
        )
    except NotFound:
        return not_found(caller)
    except DomainError as exc:
        return _refused(caller, trade_id, exc)
    return _back(trade_id)
