"""The buyer's page in a real browser: what a phone shows after a tap or a scan.

The app runs on a real port (SQLite, the embedded chain, contracts deployed, events anchored:
proof_support's shop); Debian's chromium opens the resolver URL at 360 x 800 as a phone would.
Each case asserts what the buyer reads, that the page fits the screen (no horizontal scroll),
and saves a screenshot under the Playwright output directory (`--output`, default
test-results/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import PHONE
from tests.e2e.proof_support import BERLIN, HOST, PRODUCT, Shop, open_shop
from tests.fakes.sun_tags import sun_tag, tap
from tests.integration.api_support import GTIN
from tests.integration.events_support import MASTER, uid_of

MADRID = {"geo": "geo:40.4168,-3.7038", "place": "Madrid"}
MIN_CONTRAST = 4.5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory, pytestconfig) -> Iterator[Shop]:
    """The shop of proof_support on the embedded chain, served on a real port."""
    shots = Path(str(pytestconfig.getoption("--output"))) / "buyer-page"
    with open_shop(tmp_path_factory.mktemp("shop"), shots) as made:
        yield made


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
