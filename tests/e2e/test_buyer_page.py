"""The buyer's page in a real browser: what a phone shows after a tap or a scan.

The app runs on a real port (SQLite, the embedded chain, contracts deployed, events anchored);
Debian's chromium opens the resolver URL at 360 x 800 as a phone would. Each case asserts
what the buyer reads, that the page fits the screen (no horizontal scroll), and saves a
screenshot under the Playwright output directory (`--output`, default test-results/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page

from firmware_tools.formats.qr import sign_label_url
from provenance_api.schemas import Role
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.e2e.conftest import PHONE
from tests.e2e.served import served
from tests.fakes.sun_tags import sun_tag, tap
from tests.integration.api_support import GTIN, Api
from tests.integration.events_support import MASTER, Reader, World, serial_of, uid_of
from tests.integration.test_chain_writer import make_app
from tests.integration.test_full_flow import settle

HOST = "id.example.com"
EXPLORER = "https://explorer.example/tx/{tx}"
BERLIN = {"geo": "geo:52.52,13.405", "place": "Berlin"}
MADRID = {"geo": "geo:40.4168,-3.7038", "place": "Madrid"}
HAMBURG = "geo:53.5511,9.9937"
PRODUCT = "Darjeeling Tea"
MIN_CONTRAST = 4.5

pytestmark = pytest.mark.slow


@dataclass
class Shop:
    """The served app and its cast: a tea maker with labelled and chipped items, a shop."""

    base: str
    api: Api
    world: World
    label_key: bytes  # the maker's key, as the API holds it: it signs QR labels
    maker: str
    retailer: str
    shots: Path

    def label(self, serial: str, key: bytes | None = None) -> str:
        """A QR label of item `serial` signed with the maker's key (or `key`)."""
        return sign_label_url(key or self.label_key, HOST, GTIN, serial)

    def url(self, tag_url: str, **where: str) -> str:
        """The tag's URL on this server, with the phone's position when given."""
        path = tag_url.removeprefix(f"https://{HOST}")
        if where:
            path += ("&" if "?" in path else "?") + urlencode(where)
        return self.base + path


def _name(api: Api, key: str) -> tuple[str, str]:
    me = api.call("GET", "/v1/me", key).get_json()["organization"]
    return me["name"], me["address"]


def _world(api: Api, items: int) -> World:
    """As events_support.make_world, with names a buyer would read on the page."""
    supplier = api.key(Role.SUPPLIER, "Acme Tea Gardens")
    product = {"gtin": GTIN, "name": PRODUCT}
    assert api.call("POST", "/v1/products", supplier, json=product).status_code == 201
    sun = api.call("POST", "/v1/sun-keys", supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    rows = [
        {"gtin": GTIN, "serial": serial_of(n), "tag": "ntag424", "uid": uid_of(n).hex()}
        for n in range(1, items + 1)
    ]
    registered = api.call("POST", "/v1/items", supplier, json={"items": rows})
    assert registered.get_json()["created"] == items, registered.get_json()
    world = World(api, supplier, api.key(Role.CARRIER, "Swift Freight"), Reader(b"", ""), items)
    world.reader = world.reader_for(world.carrier)
    return world


@pytest.fixture(scope="module")
def shop(tmp_path_factory, pytestconfig) -> Iterator[Shop]:
    """Items S1-S3 (NTAG 424 DNA) and Q1-Q6 (QR); S1 shipped to a shop; everything anchored."""
    app, rt = make_app(
        tmp_path_factory.mktemp("shop"), ANCHOR_MAX_AGE_SECONDS=0, EXPLORER_TX_URL=EXPLORER
    )
    try:
        api = Api(app, lambda: SqlUnitOfWork(rt.engine))
        world = _world(api, items=3)
        rows = [{"gtin": GTIN, "serial": f"Q{n}", "tag": "qr"} for n in range(1, 7)]
        assert api.call("POST", "/v1/items", world.supplier, json={"items": rows}).status_code
        maker, maker_address = _name(api, world.supplier)
        with api.uow() as uow:
            sealed = uow.organizations.by_address(maker_address).encrypted_key
        label_key = rt.keybox.open(sealed, maker_address)
        # S1's journey: the maker ships it from Hamburg, a shop receives it in Berlin.
        retailer = api.key(Role.RETAILER, "Corner Tea Shop")
        shop_name, shop_address = _name(api, retailer)
        dock, counter = world.reader_for(world.supplier), world.reader_for(retailer)
        ship = world.event(
            1,
            dock,
            biz_step="shipping",
            disposition="in_transit",
            read_point=HAMBURG,
            to_party=shop_address,
        )
        assert world.post([ship], world.supplier).get_json()["accepted"] == 1
        receive = world.event(
            1, counter, biz_step="receiving", read_point=BERLIN["geo"], from_party=maker_address
        )
        assert world.post([receive], retailer).get_json()["accepted"] == 1
        settle(rt)
        recall = {"status": "recalled", "reason": "a faulty seal may let moisture in"}
        path = f"/v1/items/{GTIN}/Q4/status"
        assert api.call("POST", path, world.supplier, json=recall).status_code == 200
        shots = Path(str(pytestconfig.getoption("--output"))) / "buyer-page"
        shots.mkdir(parents=True, exist_ok=True)
        with served(app) as base:
            yield Shop(base, api, world, label_key, maker, shop_name, shots)
    finally:
        rt.close()


@pytest.fixture
def seen(page: Page) -> list[str]:
    """Every URL the page requests."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def open_page(page: Page, shop: Shop, url: str, shot: str, status: int = 200) -> dict[str, Any]:
    """Open `url` as a phone; check the layout, the headers; screenshot; the page's data."""
    response = page.goto(url)
    assert response is not None and response.status == status
    headers = response.headers
    assert headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert headers["referrer-policy"] == "no-referrer"
    # Readable at 360 px: nothing wider than the screen, so no horizontal scroll.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{shot}: the page is {width} px wide"
    page.screenshot(path=str(shop.shots / f"{shot}.png"), full_page=True)
    return json.loads(page.locator("#proof-data").text_content() or "null")


def verdict(page: Page) -> str:
    return page.locator("#verdict h1").inner_text().strip()


def reasons(page: Page) -> list[str]:
    return page.locator("#reasons li").all_inner_texts()


def journey(page: Page) -> list[str]:
    return page.locator("#journey .step h3").all_inner_texts()


def test_a_genuine_qr_item(page: Page, shop: Shop, seen: list[str]) -> None:
    data = open_page(page, shop, shop.url(shop.label("Q1")), "genuine-qr")
    assert verdict(page) == "Genuine"
    assert "one its maker made" in page.locator("#verdict .lead").inner_text()
    assert reasons(page) == []
    assert page.locator("#product-name").inner_text() == PRODUCT
    assert page.locator("#supplier").inner_text() == shop.maker
    assert page.locator("#serial").inner_text() == "Q1"
    assert journey(page) == ["Made and registered"]
    proof = page.locator("#journey .proof").inner_text()
    assert re.match(r"Recorded on the blockchain in block \d+", proof), proof
    link = page.locator("#journey .proof a")
    href = link.get_attribute("href") or ""
    assert href.startswith("https://explorer.example/tx/0x") and len(href) == 28 + 66
    # The data the "verify it yourself" script reads: the verification, and where to check it.
    assert data["verification"]["verdict"] == "authentic"
    assert data["verification"]["history"][0]["transaction"] == href.rsplit("/", 1)[1]
    chain = data["chain"]
    assert isinstance(chain["chain_id"], int) and chain["rpc_url"] is None
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", chain["ledger"])
    # No request leaves the site: no CDN, no fonts, no tracking.
    assert seen and all(url.startswith(shop.base + "/") for url in seen), seen


def test_a_genuine_ntag424_tap(page: Page, shop: Shop) -> None:
    chip = sun_tag(MASTER, uid_of(1), host=HOST, gtin=GTIN, serial="S1")
    # The world's own taps of S1 (for its events) took counters 1 and 2; the chip goes on.
    tap(chip), tap(chip)
    open_page(page, shop, shop.url(tap(chip)), "genuine-ntag424")
    assert verdict(page) == "Genuine"
    assert reasons(page) == []
    assert "NFC chip's one-time code" in page.locator("#product").inner_text()
    assert journey(page) == ["Made and registered", "Shipped", "Received"]
    steps = page.locator("#journey .step")
    shipped = steps.nth(1).inner_text()
    assert shop.maker in shipped and "53.5511, 9.9937" in shipped
    assert shop.retailer in steps.nth(2).inner_text()
    assert all(
        text.startswith("Recorded on the blockchain in block")
        for text in page.locator("#journey .proof").all_inner_texts()
    )
    parties = page.locator("#parties").inner_text()
    assert f"Owner\n{shop.maker}" in parties and f"Held by\n{shop.retailer}" in parties


def test_a_replayed_sun_url(page: Page, shop: Shop) -> None:
    url = shop.url(shop.world.tap(2))
    open_page(page, shop, url, "sun-first-tap")
    assert verdict(page) == "Genuine"
    open_page(page, shop, url, "sun-replayed")  # the same link again: a recorded tap
    assert verdict(page) == "Warning"
    (reason,) = reasons(page)
    assert reason.startswith("This tap's counter (1) repeats the last accepted tap (1)")
    assert reason.endswith("tap the chip itself again.")


def test_a_copied_qr_label_seen_in_two_cities(page: Page, shop: Shop) -> None:
    label = shop.label("Q2")
    open_page(page, shop, shop.url(label, **BERLIN), "copied-qr-berlin")
    assert verdict(page) == "Genuine"
    open_page(page, shop, shop.url(label, **MADRID), "copied-qr-madrid")
    assert verdict(page) == "Warning"
    (reason,) = reasons(page)
    assert reason.startswith("This code was also seen in Berlin 0 minutes before, 1869 km")
    assert "so the code has been copied." in reason


def test_a_forged_label(page: Page, shop: Shop) -> None:
    forged = shop.label("Q3", bytes(Account.create().key))
    open_page(page, shop, shop.url(forged), "counterfeit-forged-label")
    assert verdict(page) == "Not genuine"
    assert reasons(page) == [
        f"This label was signed with a key that is not {shop.maker}'s: it was not issued by"
        " the maker."
    ]
    # The genuine item's record is not the copy's: no owner, no journey lent to it.
    assert page.locator("#product-h").inner_text() == "What this code claims to be"
    assert page.locator("#journey").count() == page.locator("#parties").count() == 0


def test_an_unknown_serial(page: Page, shop: Shop) -> None:
    open_page(page, shop, shop.url(shop.label("NEVER-ISSUED")), "counterfeit-unknown-serial")
    assert verdict(page) == "Not genuine"
    assert reasons(page) == [
        f"{PRODUCT} serial NEVER-ISSUED (GTIN {GTIN}) was never issued by its maker: this code is"
        " counterfeit."
    ]
    assert journey(page) == []


def test_a_recalled_item(page: Page, shop: Shop) -> None:
    open_page(page, shop, shop.url(shop.label("Q4")), "recalled")
    assert verdict(page) == "Warning"
    assert page.locator("#verdict .status").inner_text() == "Recalled"
    (reason,) = reasons(page)
    assert reason.startswith("Its maker recalled this item on ")
    assert reason.endswith(": a faulty seal may let moisture in; do not use it.")


def test_a_link_that_is_no_product_link(page: Page, shop: Shop) -> None:
    open_page(page, shop, shop.base + "/01/12345/21/X", "invalid-link", status=422)
    assert verdict(page) == "We could not check this item"
    assert reasons(page)[0].startswith("Not a product link (GS1 Digital Link): AI 01 (GTIN)")


def test_it_works_without_javascript(browser: Browser, shop: Shop) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        open_page(page, shop, shop.url(shop.label("Q5")), "genuine-no-javascript")
        assert verdict(page) == "Genuine"
        assert journey(page) == ["Made and registered"]
        assert page.locator("#verify-yourself h2").inner_text() == "Verify it yourself"
    finally:
        context.close()


def test_the_keyboard_reaches_every_link_with_a_visible_focus(page: Page, shop: Shop) -> None:
    open_page(page, shop, shop.url(shop.label("Q6")), "keyboard")
    links = page.locator("a[href]").count()
    assert links >= 1
    reached = []
    for _ in range(links + 2):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement, s = getComputedStyle(e);"
            " return [e.tagName, e.getAttribute('href'), s.outlineStyle, s.outlineWidth]; }"
        )
        if focused[0] == "A":
            reached.append(focused[1])
            assert focused[2] != "none" and focused[3] != "0px", focused
    assert any(href.startswith("https://explorer.example/tx/") for href in reached), reached


def _luminance(css: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", css)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """WCAG 2.x contrast ratio of two `rgb(r, g, b)` colours."""
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    ("case", "tag_url"),
    [
        ("authentic", lambda shop: shop.label("Q1")),
        ("suspicious", lambda shop: shop.label("Q4")),
        ("counterfeit", lambda shop: shop.label("NOPE")),
    ],
)
def test_every_text_has_enough_contrast(page: Page, shop: Shop, case, tag_url) -> None:
    page.goto(shop.url(tag_url(shop)))
    assert page.locator(f".verdict-{case}").count() == 1
    pairs = page.evaluate(
        """() => {
          const background = e => {
            for (; e; e = e.parentElement) {
              const c = getComputedStyle(e).backgroundColor;
              if (c !== 'rgba(0, 0, 0, 0)') return c;
            }
            return 'rgb(255, 255, 255)';
          };
          return [...document.querySelectorAll('h1, h2, h3, p, li, dt, dd, a, code, time')]
            .filter(e => e.offsetParent !== null)
            .map(e => [e.tagName + '.' + e.className, getComputedStyle(e).color, background(e)]);
        }"""
    )
    assert len(pairs) > 10
    for name, foreground, background in pairs:
        assert contrast(foreground, background) >= MIN_CONTRAST, (name, foreground, background)
