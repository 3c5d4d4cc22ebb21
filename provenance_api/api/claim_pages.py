"""The buyer's claim form as web pages: `/claim/01/{gtin}/21/{serial}`, no JavaScript needed.

GET shows the form; POST calls services.claims.claim, the JSON route's service, in-process
with the same `ClaimCreate`, and answers with a page for each outcome: accepted (201, or 200
when the same claim is sent again after it succeeded), a field to fix or the uniform refusal
(422), too many attempts (429), a concurrent transfer (409), not deployed yet (503). "Make a
wallet for me" posts a `WalletCreate` to services.claims.make_wallet instead (step 1): its
page (200) shows the new wallet and a form that claims to its address (step 2, the ordinary
claim to an address, posted to the same URL). Neither reads the item's tag: the form is
reached from the item's page by a link without the tag's parameters, and nothing here checks
a tag or consumes a SUN counter.

The path is the item's Digital Link path behind `/claim`, rather than `.../claim` after it:
a GS1 serial may hold a `/`, so `/01/{gtin}/21/{serial}/claim` would be the resolver's page of
serial `{serial}/claim` as much as this form.

No CSRF token: the form is public and sets no cookie, so a forged cross-site POST carries no
authority of the victim's. The claim code in the body is the only credential, and whoever holds
it can post it directly; attempts are throttled per item whoever sends them (services.claims).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for

from provenance_api.api.claims import claim_limits
from provenance_api.api.deps import runtime
from provenance_api.api.frame import unit_of_work
from provenance_api.api.transfers import passport_domain
from provenance_api.schemas import WalletCreate
from provenance_api.services import claims
from provenance_api.services.errors import Conflict, InvalidInput, TooManyAttempts, Unavailable
from provenance_api.web import claim_form, strings
from provenance_api.web.views import private

bp = Blueprint("claim_page", __name__)
TEMPLATE = "claim.html"
PATH = "/claim/01/<gtin>/21/<path:serial>"


def _page(status: int, **view: Any) -> Response:
    """claim.html as an answer, with the buyer's page's headers (views.verification_page)."""
    body = render_template(TEMPLATE, t=strings.catalogue(), **view)
    return private(current_app.response_class(body, status, mimetype="text/html"))


def _product(gtin: str) -> str | None:
    """The product's name, from its GTIN alone: the form never says whether a serial exists."""
    with unit_of_work() as uow:
        product = uow.products.get(gtin)
        return product.name if product is not None else None


def _form(gtin: str, serial: str, form: claim_form.Form, status: int) -> Response:
    text = strings.catalogue()
    product = _product(gtin)
    return _page(
        status,
        state="form",
        title=text("claim.title", product=product) if product else text("claim.title_unknown"),
        product=product,
        gtin=gtin,
        serial=serial,
        action=url_for("claim_page.show_claim_form", gtin=gtin, serial=serial),
        form=form,
        passphrase_min=claim_form.PASSPHRASE_MIN,
    )


def _not_an_item() -> Response:
    text = strings.catalogue()
    return _page(404, state="not_found", title=text("claim.not_found.heading"))


@bp.get(PATH)
def show_claim_form(gtin: str, serial: str) -> Response:
    """The empty claim form for the item."""
    named = claim_form.item(gtin, serial)
    if named is None:
        return _not_an_item()
    return _form(*named, claim_form.Form(), 200)


@bp.post(PATH)
def submit_claim(gtin: str, serial: str) -> Response:
    """Make the wallet, or claim the item, the form asks for; a page for each outcome."""
    named = claim_form.item(gtin, serial)
    if named is None:
        return _not_an_item()
    text = strings.catalogue()
    typed = request.form
    read = claim_form.read(typed, *named, text)
    if isinstance(read, claim_form.Form):
        return _form(*named, read, 422)
    try:
        if isinstance(read, WalletCreate):
            made = claims.make_wallet(
                unit_of_work(), read, claim_limits(current_app.config), datetime.now(UTC)
            )
            return _wallet(*named, claim_form.wallet(made, typed.get("code", "")))
        claimed = claims.claim(
            unit_of_work(),
            runtime().keybox,
            passport_domain(),
            read,
            claim_limits(current_app.config),
            datetime.now(UTC),
        )
    except TooManyAttempts as exc:
        shown = claim_form.throttled(exc.retry_after, datetime.now(UTC), text)
        response = _page(
            429, state="throttled", title=text("claim.throttled.heading"), throttled=shown
        )
        response.headers["Retry-After"] = str(shown.retry_after)
        return response
    except InvalidInput as exc:
        if "address" in exc.fields:  # the seller's own address: the code is not spent
            form = claim_form.refused(typed, "address", text("claim.error.address_owner"))
        else:  # one sentence for every refusal, whatever its cause (services.claims)
            form = claim_form.refused(typed, "code", text("claim.refused"))
        return _form(*named, form, 422)
    except Conflict:
        return _form(*named, claim_form.refused(typed, "code", text("claim.busy")), 409)
    except Unavailable:
        return _page(
            503,
            state="unavailable",
            title=text("claim.unavailable.heading"),
            again=url_for("claim_page.show_claim_form", gtin=named[0], serial=named[1]),
        )
    # 200 when the same claim was sent again after it succeeded (a double click, a reload):
    # the buyer sees the same success, not a refusal.
    return _page(
        200 if claimed.replayed else 201,
        state="done",
        title=text("claim.done.heading"),
        done=claim_form.done(claimed, text),
    )


def _wallet(gtin: str, serial: str, wallet: claim_form.Wallet) -> Response:
    """Step 1's answer: the new wallet to save, and the button that claims to its address.

    The page carries the claim code in a hidden field, for the second step. That is no worse
    than the form the buyer typed it into: the page is never cached (no-store), names itself
    to no other site (no-referrer), loads nothing from elsewhere (CSP), and the code is only
    good for claiming this one item, to an address of the buyer's choosing, which is what the
    page offers; it is spent by that claim.
    """
    text = strings.catalogue()
    return _page(
        200,
        state="wallet",
        title=text("claim.wallet_made.heading"),
        gtin=gtin,
        serial=serial,
        action=url_for("claim_page.show_claim_form", gtin=gtin, serial=serial),
        wallet=wallet,
    )
