"""The trade pages through the app (Flask's clients, one per organization, keeping cookies).

A real trade on the embedded chain, walked by pressing the pages' buttons as each party and
the arbiter; the browser's view of the same walk is tests/e2e/test_trade_pages.py.
"""

from __future__ import annotations

import html
import io
import re

import pytest
from eth_account import Account
from sqlmodel import Session

from provenance_api import db
from provenance_api.models import Organization
from provenance_api.schemas import Role
from provenance_api.services import wallets
from provenance_api.web.strings import catalogue
from tests.integration.test_api_transfers import org_of
from tests.integration.trade_pages_support import COIN, DEPOSIT, PRICE, SERIAL, Trading, trading

TEXT = catalogue()
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


class Visitor:
    """One organization at a browser: its own cookies, signed in with its API key."""

    def __init__(self, world: Trading, key: str) -> None:
        self.client = world.api.app.test_client()
        page = self.client.get("/trades/sign-in").get_data(as_text=True)
        answer = self.client.post(
            "/trades/sign-in",
            data={"csrf_token": TOKEN.search(page).group(1), "api_key": key},
            headers=SAME_SITE,
        )
        assert answer.status_code == 303

    def page(self, trade_id: int):
        return self.client.get(f"/trades/{trade_id}")

    def text(self, trade_id: int) -> str:
        answer = self.page(trade_id)
        assert answer.status_code == 200, answer.status_code
        return html.unescape(answer.get_data(as_text=True))

    def press(self, trade_id: int, key: str, **headers: str):
        """Submit the form of button `key` as the page has it (its hidden fields included)."""
        return self.post_form(trade_id, f"action-{key}", headers=headers)

    def post_form(self, trade_id: int, form_id: str, headers=None, **typed: str):
        """Submit form `form_id` of the trade's page: its hidden fields, and `typed`."""
        body = self.page(trade_id).get_data(as_text=True)
        form = re.search(rf'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>', body, re.S)
        assert form, f"no form {form_id} on the page"
        action = html.unescape(re.search(r'action="([^"]+)"', form.group(0)).group(1))
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(1)))
        return self.client.post(
            action, data={**fields, **typed}, headers={**SAME_SITE, **(headers or {})}
        )


@pytest.fixture
def world(tmp_path):
    made = trading(tmp_path)
    yield made
    made.close()


def buttons(visitor: Visitor, trade_id: int) -> list[str]:
    body = visitor.page(trade_id).get_data(as_text=True)
    return re.findall(r'id="action-([a-z_]+)"', body)


def test_a_trade_walked_through_a_dispute_to_a_ruling_by_its_pages(world):
    trade_id = world.open_trade()
    seller, buyer = Visitor(world, world.keys["seller"]), Visitor(world, world.keys["buyer"])
    arbiter = Visitor(world, world.keys["arbiter"])
    stranger = Visitor(world, world.keys["stranger"])

    listed = html.unescape(seller.client.get("/trades").get_data(as_text=True))
    assert f"Trade {trade_id}: Tea" in listed and "as the seller" in listed
    first = buyer.text(trade_id)
    assert TEXT("trade.state.open.none") in first
    assert "Deposit 1.1 ETH and agree to the terms" in first
    assert TEXT("trade.terms.heading") in first  # the terms sit next to the deposit button
    assert SERIAL in first and "Tea" in first
    assert buttons(buyer, trade_id) == ["deposit", "cancel"]
    assert stranger.page(trade_id).status_code == 404
    assert arbiter.page(trade_id).status_code == 404  # an arbiter learns of it once accepted

    assert buyer.press(trade_id, "deposit").status_code == 303
    sent = buyer.text(trade_id)
    assert "Your deposit: sent, waiting for the chain." in sent
    assert "deposit" not in buttons(buyer, trade_id)
    assert "The buyer's deposit: sent, waiting for the chain." in seller.text(trade_id)
    assert seller.press(trade_id, "deposit").status_code == 303
    world.settle()
    assert "Paid in: waiting for you to ship" in seller.text(trade_id)
    assert TEXT("trade.passport.escrow") in seller.text(trade_id)

    assert seller.press(trade_id, "ship").status_code == 303
    world.settle()
    assert "Shipped: waiting for you to confirm receipt" in buyer.text(trade_id)
    assert buyer.press(trade_id, "dispute").status_code == 303
    world.settle()
    disputed = buyer.text(trade_id)
    assert TEXT("trade.state.disputed") in disputed
    assert "Fair Referee" in disputed and "English, French" in disputed
    assert "Accept Fair Referee as arbiter" in disputed

    # The buyer says what is wrong, in the trade's details; the seller reads it.
    assert buyer.post_form(trade_id, "add-detail", message="It arrived broken.").status_code == 303
    assert "It arrived broken." in seller.text(trade_id)
    assert "Shop (the buyer), " in seller.text(trade_id)

    assert buyer.press(trade_id, "accept").status_code == 303
    world.settle()
    assert "The buyer accepted this arbiter." in seller.text(trade_id)
    assert seller.press(trade_id, "accept").status_code == 303
    world.settle()
    assert "In arbitration: waiting for Fair Referee's ruling" in buyer.text(trade_id)

    ruling = arbiter.text(trade_id)
    assert "In arbitration: waiting for your ruling" in ruling
    assert "It arrived broken." in ruling  # accepted by both: the arbiter reads the details
    assert 'id="add-detail"' not in ruling  # but adds nothing to the parties' data
    read = "Fair Referee (the arbiter) read the messages and evidence"
    assert read in buyer.text(trade_id)  # the buyer sees who read its data
    assert buttons(arbiter, trade_id) == ["rule_for_buyer", "rule_for_seller"]
    assert arbiter.press(trade_id, "rule_for_buyer").status_code == 303
    world.settle()

    for visitor, credit in ((buyer, "1.1 ETH"), (seller, None), (arbiter, "0.1 ETH")):
        ended = visitor.text(trade_id)
        assert TEXT("trade.outcome.for_buyer") in ended
        if credit:
            assert f"{credit} is yours to withdraw from the escrow." in ended
        else:
            assert TEXT("trade.credit.none") in ended
    assert TEXT("trade.passport.seller") in buyer.text(trade_id)
    assert stranger.page(trade_id).status_code == 404

    # The buyer keeps a copy of its data, then erases it; the trade stays verifiable.
    exported = buyer.client.get(f"/trades/{trade_id}/export")
    assert exported.status_code == 200
    assert (
        exported.headers["Content-Disposition"] == f'attachment; filename="trade-{trade_id}.json"'
    )
    assert exported.headers["Cache-Control"] == "no-store"
    assert exported.get_json()["records"][0]["text"] == "It arrived broken."
    assert stranger.client.get(f"/trades/{trade_id}/export").status_code == 404
    assert buyer.post_form(trade_id, "erase").status_code == 303
    erased = buyer.text(trade_id)
    assert TEXT("trade.erased") in erased and "It arrived broken." not in erased
    assert "erased the messages and evidence" in seller.text(trade_id)

    # The buyer takes its credit out; the page then says nothing is left.
    assert buyer.press(trade_id, "withdraw").status_code == 303
    world.settle()
    assert TEXT("trade.credit.none") in buyer.text(trade_id)
    assert "withdraw" not in buttons(buyer, trade_id)


def test_a_button_the_service_refuses_shows_its_reason(world):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    assert buyer.press(trade_id, "deposit").status_code == 303
    world.settle()
    # Pressing a deposit button kept from before (a second tab): the service says why not.
    page = buyer.client.get(f"/trades/{trade_id}").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    again = buyer.client.post(
        f"/trades/{trade_id}/deposit", data={"csrf_token": token}, headers=SAME_SITE
    )
    assert again.status_code == 409
    assert "you already deposited" in html.unescape(again.get_data(as_text=True))


def test_buttons_refuse_a_cross_site_post_and_a_missing_token(world):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    assert buyer.press(trade_id, "deposit", **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    no_token = buyer.client.post(f"/trades/{trade_id}/deposit", headers=SAME_SITE)
    assert no_token.status_code == 403
    assert "deposit" in buttons(buyer, trade_id)  # nothing was sent


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/trades/{id}/frobnicate", {}),
        ("/trades/999999/deposit", {}),
    ],
)
def test_unknown_actions_and_trades_are_404(world, url, fields):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    token = TOKEN.search(buyer.page(trade_id).get_data(as_text=True)).group(1)
    answer = buyer.client.post(
        url.format(id=trade_id), data={"csrf_token": token, **fields}, headers=SAME_SITE
    )
    assert answer.status_code == 404
    assert buyer.client.get("/trades/999999").status_code == 404


def test_a_ruling_form_with_a_bad_side_is_refused_by_name(world):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    token = TOKEN.search(buyer.page(trade_id).get_data(as_text=True)).group(1)
    answer = buyer.client.post(
        f"/trades/{trade_id}/rule",
        data={"csrf_token": token, "for_buyer": "maybe"},
        headers=SAME_SITE,
    )
    assert answer.status_code == 422
    assert "for_buyer" in html.unescape(answer.get_data(as_text=True))


def test_a_self_custody_buyer_is_shown_the_transaction_to_sign(world):
    with Session(world.api.rt.engine) as session:
        org = session.get(Organization, world.ids["buyer"])
        org.encrypted_key = None  # the buyer keeps its own key from now on
        org.address = Account.create().address
        session.add(org)
        session.commit()
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    assert TEXT("trade.next.self_custody") in buyer.text(trade_id)
    answer = buyer.press(trade_id, "deposit")
    assert answer.status_code == 200
    shown = html.unescape(answer.get_data(as_text=True))
    assert TEXT("trade.next.sign") in shown
    escrow = world.api.call("GET", f"/v1/trades/{trade_id}", world.keys["buyer"]).get_json()
    assert escrow["escrow_address"] in shown
    assert f"<code>{DEPOSIT + PRICE}</code>" in shown  # the value to send, in wei
    assert "Your deposit: sent" not in shown  # nothing was sent for it


@pytest.mark.parametrize("trade_id", ["0", "-1", "99999999999999999999999", "1.5", "x"])
def test_a_trade_id_out_of_range_is_404_not_a_500(world, trade_id):
    buyer = Visitor(world, world.keys["buyer"])
    assert buyer.client.get(f"/trades/{trade_id}").status_code == 404
    assert buyer.client.get(f"/trades/{trade_id}/export").status_code == 404
    assert buyer.client.post(f"/trades/{trade_id}/deposit", headers=SAME_SITE).status_code == 404


@pytest.mark.parametrize("message", ["", "   ", "x" * 20_001])
def test_a_message_out_of_bounds_is_refused_by_name(world, message):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    answer = buyer.post_form(trade_id, "add-detail", message=message)
    assert answer.status_code == 422
    assert "message: write a message" in html.unescape(answer.get_data(as_text=True))


def test_erasing_before_settlement_is_refused_with_the_vaults_reason(world):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    token = TOKEN.search(buyer.page(trade_id).get_data(as_text=True)).group(1)
    answer = buyer.client.post(
        f"/trades/{trade_id}/erase", data={"csrf_token": token}, headers=SAME_SITE
    )
    assert answer.status_code == 409
    assert "once it settles" in html.unescape(answer.get_data(as_text=True))
    assert 'id="erase"' not in buyer.page(trade_id).get_data(as_text=True)  # not offered


def test_both_parties_may_agree_on_an_arbiter_of_their_own_choice(world):
    second = world.api.key(Role.ARBITER, "Second Opinion")
    with db.session_scope(world.api.rt.engine) as session:
        wallets.fund_organization(
            session,
            org_of(world.api, second)["id"],
            COIN,
            operator=world.api.rt.operator.address,
        )
    world.settle()
    body = {"display_name": "Second Opinion", "profile": {"summary": "Quick rulings."}}
    assert world.api.call("POST", "/v1/arbiters", second, json=body).status_code == 202
    world.settle()
    trade_id = world.open_trade()
    seller, buyer = Visitor(world, world.keys["seller"]), Visitor(world, world.keys["buyer"])
    for visitor in (buyer, seller):
        assert visitor.press(trade_id, "deposit").status_code == 303
    world.settle()
    assert buyer.press(trade_id, "dispute").status_code == 303
    world.settle()
    page = buyer.text(trade_id)
    proposed = re.search(r'id="arbiter-name"><strong>([^<]+)</strong>', page).group(1)
    other = "Second Opinion" if proposed == "Fair Referee" else "Fair Referee"
    address = re.search(rf'<option value="(0x[0-9a-fA-F]+)">{other}</option>', page).group(1)
    assert buyer.post_form(trade_id, "choose-arbiter", arbiter_address=address).status_code == 303
    world.settle()
    assert f"The buyer accepted another arbiter: {other}." in seller.text(trade_id)
    assert seller.post_form(trade_id, "choose-arbiter", arbiter_address=address).status_code == 303
    world.settle()
    assert f"In arbitration: waiting for {other}'s ruling" in buyer.text(trade_id)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def upload(visitor: Visitor, trade_id: int, content: bytes, mimetype: str, **fields: str):
    """Post the details form with a file, as a browser sends it (multipart)."""
    token = TOKEN.search(visitor.page(trade_id).get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "file": (io.BytesIO(content), "photo.png", mimetype), **fields}
    answer = visitor.client.post(
        f"/trades/{trade_id}/messages",
        data=data,
        content_type="multipart/form-data",
        headers=SAME_SITE,
    )
    # Werkzeug's test client spools a large body to a temporary file it leaves open.
    answer.request.environ["wsgi.input"].close()
    return answer


def test_a_photo_added_by_a_party_is_a_download_for_the_other_and_nobody_else(world):
    trade_id = world.open_trade()
    seller, buyer = Visitor(world, world.keys["seller"]), Visitor(world, world.keys["buyer"])
    stranger = Visitor(world, world.keys["stranger"])
    added = upload(buyer, trade_id, PNG, "image/png", message="The box, as it came.")
    assert added.status_code == 303, added.get_data(as_text=True)
    page = seller.text(trade_id)
    assert "The box, as it came." in page and TEXT("trade.details.kind.photo") in page
    link = re.search(r'<a href="([^"]+)" download>', page).group(1)
    got = seller.client.get(link)
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert got.headers["Cache-Control"] == "no-store"
    assert stranger.client.get(link).status_code == 404
    assert seller.client.get(f"/trades/{trade_id}/records/99").status_code == 404


@pytest.mark.parametrize(
    ("content", "mimetype", "named"),
    [
        (b"GIF89a...", "image/gif", "file: choose a JPEG, PNG, PDF or plain text file"),
        (b"", "image/png", "file: choose a file of 1 byte to 2 MB"),
        (b"x" * (2 * 1024 * 1024 + 1), "text/plain", "file: choose a file of 1 byte to 2 MB"),
        (b"not a png at all", "image/png", "data is not image/png"),
    ],
)
def test_a_file_the_vault_would_not_keep_is_refused_by_name(world, content, mimetype, named):
    trade_id = world.open_trade()
    buyer = Visitor(world, world.keys["buyer"])
    answer = upload(buyer, trade_id, content, mimetype)
    assert answer.status_code == 422
    assert named in html.unescape(answer.get_data(as_text=True))


@pytest.mark.parametrize(
    ("event_id", "status", "named"),
    [
        ("not-a-uuid", 422, "event_id: a custody event's id"),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", 404, "no custody event"),
    ],
)
def test_the_seller_may_prove_the_handoff_by_its_custody_event(world, event_id, status, named):
    trade_id = world.open_trade()
    seller, buyer = Visitor(world, world.keys["seller"]), Visitor(world, world.keys["buyer"])
    for visitor in (buyer, seller):
        assert visitor.press(trade_id, "deposit").status_code == 303
    world.settle()
    assert 'id="prove-shipped"' in seller.page(trade_id).get_data(as_text=True)
    assert 'id="prove-shipped"' not in buyer.page(trade_id).get_data(as_text=True)
    answer = seller.post_form(trade_id, "prove-shipped", event_id=event_id)
    assert answer.status_code == status
    if named:
        assert named in html.unescape(answer.get_data(as_text=True))


def test_the_list_shows_a_page_of_trades_and_links_the_older_ones(world):
    from tests.integration.api_support import GTIN

    api = world.api
    count = 52  # more than a page (50)
    items = [{"gtin": GTIN, "serial": f"L{index}", "tag": "qr"} for index in range(count)]
    made = api.call("POST", "/v1/items", world.keys["seller"], json={"items": items})
    assert made.get_json()["created"] == count, made.get_json()
    opened = []
    for index in range(count):
        body = {
            "gtin": GTIN,
            "serial": f"L{index}",
            "buyer_organization_id": world.ids["buyer"],
            "deposit": str(DEPOSIT),
        }
        answer = api.call("POST", "/v1/trades", world.keys["seller"], json=body)
        assert answer.status_code == 201, answer.get_json()
        opened.append(answer.get_json()["id"])
    buyer = Visitor(world, world.keys["buyer"])
    first = buyer.client.get("/trades").get_data(as_text=True)
    shown = [int(found) for found in re.findall(r'id="trade-(\d+)"', first)]
    assert shown == sorted(opened, reverse=True)[:50]
    more = re.search(r'id="more-trades" href="([^"]+)"', first)
    assert more and TEXT("trades.more") in first
    older = buyer.client.get(html.unescape(more.group(1))).get_data(as_text=True)
    assert [int(found) for found in re.findall(r'id="trade-(\d+)"', older)] == sorted(opened)[1::-1]
    assert 'id="more-trades"' not in older
    # A mangled link shows the list from its start.
    mangled = buyer.client.get("/trades?page=not-a-token")
    assert mangled.status_code == 200
    assert re.findall(r'id="trade-(\d+)"', mangled.get_data(as_text=True))[0] == str(max(opened))
