"""Claiming in a real browser: the seller makes a code, the buyer claims the item by keyboard.

The app runs on a real port (SQLite, the embedded chain, contracts deployed); the seller makes
the code over HTTP with its API key, as its till would; Debian's chromium, at 360 x 800,
is the buyer: it opens the item's page, follows "Claim it", fills the form with the keyboard
alone, fixes the error it made, saves the wallet made for it (step 1; nothing has moved yet),
claims the item to it with the page's button (step 2) and reads the success. After the chain
writer confirms the transfer, the item's page names the buyer's address as its owner.
Screenshots go under the Playwright output directory (`--output`), in claim-page/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page

from contracts_abi.passport import passport_id
from tests.e2e.conftest import PHONE
from tests.e2e.served import served
from tests.e2e.test_buyer_page import MIN_CONTRAST, contrast
from tests.integration.api_support import GTIN, Api
from tests.integration.test_api_transfers import passport, settle, world
from tests.integration.test_claim_page import label

PASSPHRASE = "violet kettle under seven bridges"
SERIAL = "S2"  # a QR-labelled item of the maker's (test_api_transfers.world)

pytestmark = pytest.mark.slow


@dataclass
class Shop:
    """The served app, its seller, and where screenshots go."""

    base: str
    api: Api
    shots: Path


@pytest.fixture
def shop(tmp_path, pytestconfig) -> Iterator[Shop]:
    api = world(tmp_path)
    try:
        shots = Path(str(pytestconfig.getoption("--output"))) / "claim-page"
        shots.mkdir(parents=True, exist_ok=True)
        with served(api.app) as base:
            yield Shop(base, api, shots)
    finally:
        api.rt.close()


def focused(page: Page) -> str:
    """The id of the element that has the keyboard focus."""
    return page.evaluate("document.activeElement && document.activeElement.id")


def tab_to(page: Page, element_id: str, limit: int = 40) -> None:
    """Press Tab until `element_id` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == element_id:
            outline = page.evaluate(
                "(s => [s.outlineStyle, s.outlineWidth])(getComputedStyle(document.activeElement))"
            )
            assert outline[0] != "none" and outline[1] != "0px", (element_id, outline)
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def fits(page: Page, shot: Path) -> None:
    """Nothing wider than the phone, and a screenshot of the viewport (360 x 800)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{shot.name}: the page is {width} px wide"
    page.screenshot(path=str(shot))


# Each visible text's colour and the background it sits on (the nearest one set).
COLOURS = """() => {
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c !== 'rgba(0, 0, 0, 0)') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  return [...document.querySelectorAll(
      'h1, h2, p, li, dt, dd, a, code, label, legend, input, button, textarea')]
    .filter(e => e.offsetParent !== null)
    .map(e => [e.tagName + '#' + e.id, getComputedStyle(e).color, background(e)]);
}"""


def readable(page: Page) -> None:
    """Every visible text has a contrast of at least 4.5:1 with its background (WCAG AA)."""
    pairs = page.evaluate(COLOURS)
    assert len(pairs) > 5
    for name, foreground, background in pairs:
        assert contrast(foreground, background) >= MIN_CONTRAST, (name, foreground, background)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A phone with JavaScript turned off: claiming must not need it."""
    context = browser.new_context(java_script_enabled=False, viewport=PHONE, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_buyer_claims_an_item_with_the_keyboard_and_the_page_then_names_them(
    page: Page, shop: Shop
) -> None:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    # The seller, at the till: a code for the item, over the JSON API with its key.
    made = httpx.post(
        f"{shop.base}/v1/items/{GTIN}/{SERIAL}/claim-codes",
        headers={"Authorization": f"Bearer {shop.api.supplier}"},
    )
    assert made.status_code == 201, made.text
    code = made.json()["code"]

    # The buyer scans the label: a genuine item, with an offer to claim it.
    tag_url = shop.base + label(shop.api, SERIAL)
    response = page.goto(tag_url)
    assert response is not None and response.status == 200
    assert page.locator("#verdict h1").inner_text().strip() == "Genuine"
    assert page.locator("#claim h2").inner_text() == "Bought this item?"
    page.screenshot(path=str(shop.shots / "item-offer.png"), full_page=True)
    tab_to(page, "claim-link")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{shop.base}/claim/01/{GTIN}/21/{SERIAL}"  # the tag's query stays behind
    assert page.locator("h1").inner_text() == "Claim this Tea"
    # Only the chosen answer's fields show, so none before a choice.
    assert page.locator("#address, #passphrase, #confirm").evaluate_all(
        "fields => fields.every(field => field.offsetParent === null)"
    )
    fits(page, shop.shots / "form.png")
    readable(page)

    # By keyboard: the code (as read off a receipt, in lower case), then "make a wallet".
    tab_to(page, "code")
    page.keyboard.type(code.lower())
    page.keyboard.press("Tab")
    assert focused(page) == "wallet-address"
    page.keyboard.press("ArrowDown")  # moves to, and picks, "Make a wallet for me"
    assert focused(page) == "wallet-new" and page.locator("#wallet-new").is_checked()
    assert page.locator("#passphrase").is_visible() and not page.locator("#address").is_visible()
    page.keyboard.press("Tab")
    assert focused(page) == "passphrase"
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSPHRASE + "s")  # a slip of the finger
    page.keyboard.press("Tab")
    assert focused(page) == "claim-submit"
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # The error summary has the focus; its link leads to the field to fix.
    assert page.locator("#error-summary").is_visible()
    assert focused(page) == "error-summary"
    assert page.locator("#error-summary li").all_inner_texts() == [
        "The two passphrases are not the same: type it again"
    ]
    assert page.locator("#code").input_value() == code.lower()  # kept
    assert page.locator("#passphrase").input_value() == ""  # never sent back
    assert page.locator("#wallet-new").is_checked()
    fits(page, shop.shots / "form-error.png")
    readable(page)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert focused(page) == "confirm"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "passphrase"
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    assert focused(page) == "claim-submit"
    page.screenshot(path=str(shop.shots / "form-filled.png"), full_page=True)
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    assert navigation.value is not None and navigation.value.status == 200

    # Step 1's answer: the wallet to save; the item has not moved yet.
    assert page.locator("h1").inner_text() == "Save your wallet, then claim the item"
    assert page.locator("#owner").count() == 0
    address = page.locator("#new-address").inner_text()
    fits(page, shop.shots / "wallet.png")
    readable(page)
    tab_to(page, "keystore-download")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    saved = json.loads(Path(download.value.path()).read_text())
    assert download.value.suggested_filename == f"keystore-{address}.json"
    assert json.loads(page.locator("#keystore-text").input_value()) == saved
    assert Account.from_key(Account.decrypt(saved, PASSPHRASE)).address == address
    page.screenshot(path=str(shop.shots / "wallet-full.png"), full_page=True)
    with shop.api.uow() as uow:
        assert uow.transfers.of_item(uow.items.get(GTIN, SERIAL).id) == []

    # Step 2: saved, so claim the item to it.
    tab_to(page, "claim-submit")
    assert page.locator("#claim-submit").inner_text() == "I have saved my wallet: claim the item"
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    assert navigation.value is not None and navigation.value.status == 201

    # Success: the new owner and the chain write under way.
    assert page.locator("h1").inner_text() == "This item is now yours"
    owner = page.locator("#owner").inner_text()
    assert owner == address
    assert page.locator("#chain-state").inner_text().startswith("Being recorded")
    fits(page, shop.shots / "success.png")
    readable(page)

    # The chain writer confirms the transfer; the item's page now names the buyer.
    settle(shop.api)
    assert passport(shop.api).functions.ownerOf(passport_id(GTIN, SERIAL)).call() == owner
    page.goto(shop.base + label(shop.api, SERIAL))
    assert page.locator("#verdict h1").inner_text().strip() == "Genuine"
    assert f"Owner\n{owner}" in page.locator("#parties").inner_text()
    assert page.locator("#claim-link").count() == 0
    fits(page, shop.shots / "item-claimed.png")
    # Nothing left the site on the way.
    assert seen and all(url.startswith(shop.base + "/") for url in seen), seen
