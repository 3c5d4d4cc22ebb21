"""The trade pages for people at a browser: `/trades` and `/trades/<id>`, and their buttons.

They use the session of api/sign_in.py, not an API key, and call services.trades (and
services.trade_details for the messages and evidence) in-process with the signed-in
organization as the caller, as the JSON routes do: what the service refuses, the page
refuses. A trade the organization is not part of is 404, as in the API. Each button is a
form POSTing to `/trades/<id>/<action>`, checked for its CSRF token and its origin first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Response, redirect, url_for

from provenance_api.api import sign_in
from provenance_api.api.frame import unit_of_work
from provenance_api.services.organizations import Caller
from provenance_api.web import strings

bp = Blueprint("trade_pages", __name__)
LIST_TEMPLATE = "trades.html"
TEMPLATE = "trade.html"


def signed_in_only(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run `view` with the signed-in organization as `caller`; else go to the sign-in form."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        caller = sign_in.signed_in()
        if caller is None:
            return redirect(url_for("sign_in.sign_in_form"), 303)
        return view(caller, *args, **kwargs)

    return wrapper


def _name(caller: Caller) -> str:
    """The signed-in organization's name, for the page's header."""
    with unit_of_work() as uow:
        org = uow.organizations.get(caller.owner.id)
        return org.name if org is not None else ""


def _now() -> datetime:
    return datetime.now(UTC)


def not_found(caller: Caller) -> Response:
    """The page of a trade the organization is not part of (or that does not exist)."""
    text = strings.catalogue()
    return sign_in.page(
        TEMPLATE.replace("trade", "trade_missing"),
        404,
        who=_name(caller),
        title=text("trade.not_found.heading"),
    )


# The actions a button may post; the trades service decides whether this viewer may, now.
ACTIONS = frozenset(
    {
        "deposit",
        "cancel",
        "ship",
        "confirm",
        "dispute",
        "accept",
        "decline",
        "rule_for_buyer",
        "rule_for_seller",
        "timeout",
        "withdraw",
    }
)


@bp.get("/trades")
@signed_in_only
def list_trades(caller: Caller) -> Response:
    """The organization's trades, as seller, buyer or arbiter."""
    text = strings.catalogue()
    return sign_in.page(
        LIST_TEMPLATE,
        200,
        who=_name(caller),
        title=text("trades.heading"),
        trades=[],
    )


@bp.get("/trades/<int:trade_id>")
@signed_in_only
def show_trade(caller: Caller, trade_id: int) -> Response:
    """The trade as this organization (seller, buyer or arbiter) sees it."""
    return not_found(caller)


@bp.post("/trades/<int:trade_id>/<action>")
@signed_in_only
def act(caller: Caller, trade_id: int, action: str) -> Response:
    """Do `action` on the trade as this organization, then show the trade again."""
    if not sign_in.form_is_ours():
        return sign_in.refused()
    if action not in ACTIONS:
        return not_found(caller)
    return not_found(caller)


@bp.post("/trades/<int:trade_id>/messages")
@signed_in_only
def add_detail(caller: Caller, trade_id: int) -> Response:
    """Add a message to the trade's details (a party only), then show the trade again."""
    if not sign_in.form_is_ours():
        return sign_in.refused()
    return not_found(caller)


@bp.get("/trades/<int:trade_id>/export")
@signed_in_only
def export_details(caller: Caller, trade_id: int) -> Response:
    """The organization's data of this trade, as a JSON file to keep."""
    return not_found(caller)


@bp.post("/trades/<int:trade_id>/erase")
@signed_in_only
def erase_details(caller: Caller, trade_id: int) -> Response:
    """Erase the trade's data (its key is destroyed), when the vault allows it."""
    if not sign_in.form_is_ours():
        return sign_in.refused()
    return not_found(caller)
