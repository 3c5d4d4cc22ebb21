"""The buyer's claim form through the app (Flask's client): each outcome as a page.

The form posts as a browser without JavaScript does (form-encoded); the chain is the embedded
one and the chain writer runs as in the claim tests. The browser's view of it is
tests/e2e/test_claim_page.py.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from eth_account import Account

from contracts_abi.passport import passport_id
from firmware_tools.formats.qr import sign_label_url
from provenance_api.models import ClaimThrottle, ItemScan, SunCounter
from provenance_api.schemas import Role
from provenance_api.web.strings import catalogue
from tests.fakes.sun_tags import sun_url
from tests.integration.api_support import GTIN, Api, make_api
from tests.integration.events_support import MASTER, uid_of
from tests.integration.test_api_claims import PASSPHRASE, new_code
from tests.integration.test_api_transfers import org_of, passport, settle, world

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HOST = "id.example.com"
REFUSED = catalogue()("claim.refused")  # one sentence for every refusal
WRONG = "0000-0000-0000-0000"
CLAIM_LINK = re.compile(r'<a href="([^"]*)" id="claim-link">')


@pytest.fixture
def api(tmp_path):
    made = world(tmp_path)
    yield made
    made.rt.close()


def form_url(serial: str = "S2") -> str:
    return f"/claim/01/{GTIN}/21/{serial}"


def post(api: Api, serial: str = "S2", **fields: str):
    return api.client.post(form_url(serial), data=fields)


def to_wallet(api: Api, code: str, serial: str = "S2", address: str | None = None):
    """A claim to a wallet address (a new one unless given)."""
    return post(api, serial, code=code, wallet="address", address=address or new_address())


def new_address() -> str:
    return Account.create().address


def label(api: Api, serial: str, key: bytes | None = None) -> str:
    """A QR label of `serial` signed with the maker's key (or `key`), as a path on this host."""
    if key is None:
        address = org_of(api, api.supplier)["address"]
        with api.uow() as uow:
            sealed = uow.organizations.by_address(address).encrypted_key
        key = api.rt.keybox.open(sealed, address)
    return sign_label_url(key, HOST, GTIN, serial).removeprefix(f"https://{HOST}")


def item_page(api: Api, path: str) -> str:
    page = api.client.get(path, headers=BROWSER)
    assert page.status_code == 200, page.text
    return page.text


def errors(page: str) -> dict[str, str]:
    """The error summary: each link's target and sentence."""
    return {
        target: html.unescape(text)
        for target, text in re.findall(r'<li><a href="#([\w-]+)">([^<]*)</a></li>', page)
    }


def value_of(page: str, name: str) -> str | None:
    tag = re.search(rf'<input id="{name}" name="{name}"[^>]*>', page)
    assert tag is not None, name
    value = re.search(r' value="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value is not None else None


def keystore_of(page: str) -> dict:
    (text,) = re.findall(r'<textarea id="keystore-text"[^>]*>(.*?)</textarea>', page, re.S)
    return json.loads(html.unescape(text))


def owner_of(page: str) -> str:
    (owner,) = re.findall(r'<code id="owner">(0x[0-9a-fA-F]{40})</code>', page)
    return owner


def assert_private(answer) -> None:
    headers = answer.headers
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp


def test_the_item_page_links_the_form_without_the_tags_parameters(api):
    path = label(api, "S2")
    assert "?" in path  # the label's signature rides in its query
    page = item_page(api, path)
    assert 'class="verdict verdict-authentic"' in page
    (href,) = CLAIM_LINK.findall(page)
    assert href == form_url("S2")
    form = api.client.get(href)
    assert form.status_code == 200
    assert_private(form)
    assert "<h1>Claim this Tea</h1>" in form.text and "<code>S2</code>" in form.text
    # What a phone and a screen reader need: labels, hints tied to their fields, no autofill
    # of the code, no script.
    for name in ("code", "address", "passphrase", "confirm"):
        assert f'<label for="{name}">' in form.text
    code = re.search(r'<input id="code"[^>]*>', form.text).group(0)
    assert 'autocomplete="off"' in code and 'inputmode="text"' in code
    assert 'aria-describedby="code-hint"' in code and 'spellcheck="false"' in code
    assert 'type="password" autocomplete="new-password"' in form.text
    assert '<form method="post" action="/claim/01/09506000134352/21/S2" novalidate' in form.text
    assert "<script" not in form.text and 'id="error-summary"' not in form.text


@pytest.mark.parametrize("case", ["forged", "unknown serial", "not a product link"])
def test_no_claim_link_where_the_item_is_not_genuine_or_not_checked(api, case):
    if case == "forged":
        page = item_page(api, label(api, "S2", bytes(Account.create().key)))
        assert "verdict-counterfeit" in page
    elif case == "unknown serial":
        page = item_page(api, label(api, "NEVER"))
        assert "verdict-counterfeit" in page
    else:
        answer = api.client.get(f"/01/{GTIN}/21/S1%3C", headers=BROWSER)
        assert answer.status_code == 422
        page = answer.text
        assert "verdict-unverifiable" in page
    assert 'id="claim-link"' not in page and "/claim/" not in page


def test_a_claim_to_an_address_and_the_item_page_then_shows_the_new_owner(api):
    code = new_code(api, api.supplier, "S2")
    buyer = Account.create().address
    # Typed by hand: lower case, spaces for dashes; the address pasted with a space.
    typed = code.lower().replace("-", " ")
    done = post(api, code=typed, wallet="address", address=f" {buyer.lower()} ")
    assert done.status_code == 201, done.text
    assert_private(done)
    assert "<h1>This item is now yours</h1>" in done.text
    assert owner_of(done.text) == buyer
    assert "Being recorded; this usually takes a minute or two" in done.text
    assert 'id="keystore"' not in done.text
    settle(api)
    assert passport(api).functions.ownerOf(passport_id(GTIN, "S2")).call() == buyer
    page = item_page(api, label(api, "S2"))
    assert f"<dt>Owner</dt><dd>{buyer}</dd>" in page
    # A wallet owns it now: there is nobody left who could make a claim code for it.
    assert 'id="claim-link"' not in page
    again = to_wallet(api, code)
    assert again.status_code == 422 and errors(again.text) == {"code": REFUSED}


def hidden(page: str) -> dict[str, str]:
    """The step-2 form's hidden fields, as the browser would post them."""
    (form,) = re.findall(r'<form method="post"[^>]*id="claim-form">(.*?)</form>', page, re.S)
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form)
    return {name: html.unescape(value) for name, value in fields}


def test_a_wallet_is_made_first_then_the_item_is_claimed_to_it(api):
    code = new_code(api, api.supplier, "S2")
    seller = org_of(api, api.supplier)["address"]
    # Step 1: a wallet, shown once; nothing has moved and the code is not spent.
    made = post(api, code=code, wallet="new", passphrase=PASSPHRASE, confirm=PASSPHRASE)
    assert made.status_code == 200, made.text
    assert_private(made)
    assert "<h1>Save your wallet, then claim the item</h1>" in made.text
    keystore = keystore_of(made.text)
    (address,) = re.findall(r'<code id="new-address">(0x[0-9a-fA-F]{40})</code>', made.text)
    assert Account.from_key(Account.decrypt(keystore, PASSPHRASE)).address == address
    # The download link carries the same keystore in the page itself (a data: URL).
    link = r'<a href="([^"]+)" download="([^"]+)" id="keystore-download">'
    ((href, name),) = re.findall(link, made.text)
    prefix = "data:application/json;charset=utf-8,"
    assert href.startswith(prefix) and name == f"keystore-{address}.json"
    assert json.loads(unquote(html.unescape(href).removeprefix(prefix))) == keystore
    assert PASSPHRASE not in made.text and "<script" not in made.text
    # The claim to it is a form of hidden fields: the code, to this address.
    step2 = hidden(made.text)
    assert step2 == {"code": code, "wallet": "address", "address": address}
    assert "I have saved my wallet: claim the item" in made.text
    assert 'id="owner"' not in made.text
    with api.uow() as uow:
        item = uow.items.get(GTIN, "S2")
        assert uow.transfers.of_item(item.id) == [] and uow.claims.live(item.id) is not None
    # Sent twice (a double click, a reload): another wallet, and still nothing moved.
    again = post(api, code=code, wallet="new", passphrase=PASSPHRASE, confirm=PASSPHRASE)
    assert again.status_code == 200 and hidden(again.text)["address"] != address
    # Step 2: the buyer saved the first one, and claims to it.
    done = post(api, **step2)
    assert done.status_code == 201, done.text
    assert_private(done)
    assert "<h1>This item is now yours</h1>" in done.text
    assert owner_of(done.text) == address and 'id="keystore"' not in done.text
    # Clicked twice: the same success, not a refusal.
    twice = post(api, **step2)
    assert twice.status_code == 200, twice.text
    assert "<h1>This item is now yours</h1>" in twice.text and owner_of(twice.text) == address
    # Another address with the spent code: the one refusal.
    other = to_wallet(api, code)
    assert other.status_code == 422 and errors(other.text) == {"code": REFUSED}
    settle(api)
    assert passport(api).functions.ownerOf(passport_id(GTIN, "S2")).call() == address
    assert address != seller


def test_a_lost_wallet_page_costs_nothing(api):
    code = new_code(api, api.supplier, "S2")
    made = post(api, code=code, wallet="new", passphrase=PASSPHRASE, confirm=PASSPHRASE)
    assert made.status_code == 200
    # The buyer closed the tab without saving it: they claim to a wallet of their own.
    mine = new_address()
    done = to_wallet(api, code, address=mine)
    assert done.status_code == 201 and owner_of(done.text) == mine


def test_a_wrong_code_is_the_uniform_refusal_and_keeps_what_was_typed(api):
    new_code(api, api.supplier, "S2")
    wrong = post(api, code=WRONG, wallet="new", passphrase=PASSPHRASE, confirm=PASSPHRASE)
    assert wrong.status_code == 422
    assert_private(wrong)
    assert errors(wrong.text) == {"code": REFUSED}
    assert 'aria-describedby="code-hint code-error" aria-invalid="true"' in wrong.text
    assert value_of(wrong.text, "code") == WRONG
    assert PASSPHRASE not in wrong.text and value_of(wrong.text, "passphrase") is None
    assert 'value="new" aria-describedby="wallet-new-hint" checked' in wrong.text
    # An item that does not exist, and one without a code, get the very same sentence.
    for serial in ("NOSUCH", "S3"):
        other = to_wallet(api, WRONG, serial)
        assert other.status_code == 422 and errors(other.text) == errors(wrong.text)


def test_too_many_attempts_is_a_429_page_with_the_retry_time(tmp_path):
    api = world(tmp_path, CLAIM_ATTEMPTS=2, CLAIM_WINDOW_SECONDS=300)
    try:
        code = new_code(api, api.supplier, "S2")
        buyer = Account.create().address
        for _ in range(2):
            assert to_wallet(api, WRONG, address=buyer).status_code == 422
        blocked = to_wallet(api, code, address=buyer)
        assert blocked.status_code == 429, blocked.text
        assert_private(blocked)
        assert 295 <= int(blocked.headers["Retry-After"]) <= 300
        assert "<h1>Too many attempts</h1>" in blocked.text
        text = html.unescape(re.search(r'<p id="throttled">(.*?)</p>', blocked.text).group(1))
        expected = r"Try again after \d+ \w+ \d{4}, \d\d:\d\d UTC\. That is in 5 minutes\.$"
        assert re.search(expected, text), text
        assert code not in blocked.text
    finally:
        api.rt.close()


@pytest.mark.parametrize(
    ("address", "sentence"),
    [
        ("", "Enter your wallet address"),
        ("0x1234", "Enter a wallet address: 0x followed by 40 letters (a to f) and digits"),
        ("0x" + "00" * 20, "This address belongs to nobody: enter your own wallet's address"),
        (
            "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01",  # mixed case with a wrong checksum
            "This address has a typing mistake: its capital letters do not match. Copy it"
            " from your wallet again",
        ),
    ],
)
def test_a_bad_address_is_named_and_counts_no_attempt(api, address, sentence):
    code = new_code(api, api.supplier, "S2")
    bad = post(api, code=code, wallet="address", address=address)
    assert bad.status_code == 422
    assert errors(bad.text) == {"address": sentence}
    assert 'aria-describedby="address-hint address-error" aria-invalid="true"' in bad.text
    assert value_of(bad.text, "address") == address and value_of(bad.text, "code") == code
    with api.uow() as uow:
        assert uow.session.exec(sa.select(ClaimThrottle)).first() is None


def test_the_sellers_own_address_is_refused_and_the_code_stays_good(api):
    code = new_code(api, api.supplier, "S2")
    own = post(api, code=code, wallet="address", address=org_of(api, api.supplier)["address"])
    assert own.status_code == 422
    assert errors(own.text) == {
        "address": "This address already owns the item: enter your own wallet's address"
    }
    assert to_wallet(api, code).status_code == 201


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"passphrase": "short", "confirm": "short"},
            {"passphrase": "Enter a passphrase of at least 12 characters"},
        ),
        (
            {"passphrase": PASSPHRASE, "confirm": PASSPHRASE + "!"},
            {"confirm": "The two passphrases are not the same: type it again"},
        ),
        (
            {"passphrase": "x" * 1025, "confirm": "x" * 1025},
            {"passphrase": "Enter a passphrase of at most 1024 characters"},
        ),
    ],
)
def test_a_bad_passphrase_is_named_and_never_sent_back(api, fields, expected):
    code = new_code(api, api.supplier, "S2")
    bad = post(api, code=code, wallet="new", **fields)
    assert bad.status_code == 422
    assert errors(bad.text) == expected
    (name,) = expected
    assert f'aria-describedby="{name}-hint {name}-error" aria-invalid="true"' in bad.text or (
        f'aria-describedby="{name}-error" aria-invalid="true"' in bad.text
    )
    for typed in fields.values():
        assert typed not in bad.text
    assert value_of(bad.text, "passphrase") is None and value_of(bad.text, "confirm") is None
    # The code was not looked at: it still makes a wallet, and claims the item.
    ok = post(api, code=code, wallet="new", passphrase=PASSPHRASE, confirm=PASSPHRASE)
    assert ok.status_code == 200 and 'id="keystore"' in ok.text, ok.text
    assert post(api, **hidden(ok.text)).status_code == 201


def test_an_empty_form_names_the_code_and_the_choice(api):
    empty = post(api)
    assert empty.status_code == 422
    assert errors(empty.text) == {
        "code": "Enter the claim code the seller gave you",
        "wallet-address": "Choose where the item should go: your wallet, or a new one",
    }
    malformed = to_wallet(api, "7K3M-Q9XD")
    assert list(errors(malformed.text)) == ["code"]


def test_a_link_that_names_no_item_is_a_404_page(api):
    for path in ("/claim/01/12345/21/X", f"/claim/01/{GTIN}/21/S1%23"):
        for answer in (api.client.get(path), api.client.post(path, data={"code": "x"})):
            assert answer.status_code == 404
            assert "<h1>This is not an item we can claim</h1>" in answer.text
            assert_private(answer)


def test_the_claim_pages_check_no_tag_and_consume_no_sun_counter(api):
    sun = api.call("POST", "/v1/sun-keys", api.supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    row = {"gtin": GTIN, "serial": "T1", "tag": "ntag424", "uid": uid_of(1).hex()}
    made = api.call("POST", "/v1/items", api.supplier, json={"items": [row]})
    assert made.get_json()["created"] == 1, made.get_json()
    tap = sun_url(MASTER, uid_of(1), 1, gtin=GTIN, serial="T1").removeprefix(f"https://{HOST}")
    page = item_page(api, tap)
    assert "verdict-authentic" in page
    (href,) = CLAIM_LINK.findall(page)
    assert href == form_url("T1")  # no picc data, no cmac: the tap stays with the page

    def seen() -> tuple[list[int], int]:
        with api.uow() as uow:
            counters = [c.last_counter for c in uow.session.exec(sa.select(SunCounter)).scalars()]
            scans = len(uow.session.exec(sa.select(ItemScan)).scalars().all())
        return counters, scans

    before = seen()
    assert before == ([1], 1)
    assert api.client.get(href).status_code == 200
    code = new_code(api, api.supplier, "T1")
    assert to_wallet(api, WRONG, "T1").status_code == 422
    assert to_wallet(api, code, "T1").status_code == 201
    assert seen() == before
    # The chip's next tap is its next counter, as if the claim pages had never been seen.
    after = api.client.get(
        sun_url(MASTER, uid_of(1), 2, gtin=GTIN, serial="T1").removeprefix(f"https://{HOST}"),
        headers={"Accept": "application/json"},
    ).get_json()
    assert after["verdict"] == "authentic" and after["reasons"] == []


def test_before_the_contracts_are_deployed_the_form_says_try_later(tmp_path):
    api = make_api("sqlite", tmp_path)  # no chain writer has run: nothing is deployed
    try:
        api.supplier = api.key(Role.SUPPLIER)
        product = {"gtin": GTIN, "name": "Tea"}
        assert api.call("POST", "/v1/products", api.supplier, json=product).status_code == 201
        rows = {"items": [{"gtin": GTIN, "serial": "S2", "tag": "qr"}]}
        assert api.call("POST", "/v1/items", api.supplier, json=rows).get_json()["created"] == 1
        code = new_code(api, api.supplier, "S2")
        later = to_wallet(api, code)
        assert later.status_code == 503
        assert_private(later)
        assert "<h1>We cannot take claims right now</h1>" in later.text
        assert f'<a href="{form_url()}">Try again</a>' in later.text
        with api.uow() as uow:  # refused before the code was looked at: no attempt counted
            assert uow.session.exec(sa.select(ClaimThrottle)).first() is None
    finally:
        api.app.extensions["provenance"].close()
