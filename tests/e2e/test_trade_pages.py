"""A trade walked through a dispute to a ruling in a real browser, as each side sees it.

The app runs on a real port (SQLite, the embedded chain, contracts deployed); the seller opens
the trade over the JSON API with its key, as its shop system would; then Debian's chromium, at
360 x 800 and without JavaScript, is the seller, the buyer and the arbiter, each in a browser
context of its own (its own cookies), signing in with its organization's API key and pressing
the pages' buttons: both deposit, the seller ships, the buyer disputes, both accept the
proposed arbiter, the arbiter reads the trade and rules for the buyer, and each page shows the
outcome and what its reader may withdraw. A stranger, signed in, gets 404 for the trade. The
chain writers run in the test between steps. Screenshots go under the Playwright output
directory (`--output`), in trade-pages/ (docs/trade-*.png are copies of three of them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import PHONE
from tests.e2e.served import served
from tests.e2e.test_claim_page import fits, readable
from tests.integration.trade_pages_support import Trading, trading

pytestmark = pytest.mark.slow


@dataclass
class Market:
    """The served app, its organizations, and where screenshots go."""

    base: str
    world: Trading
    shots: Path


@pytest.fixture
def market(tmp_path, pytestconfig) -> Iterator[Market]:
    world = trading(tmp_path)
    try:
        shots = Path(str(pytestconfig.getoption("--output"))) / "trade-pages"
        shots.mkdir(parents=True, exist_ok=True)
        with served(world.api.app) as base:
            yield Market(base, world, shots)
    finally:
        world.close()


@pytest.fixture
def people(browser: Browser) -> Iterator[dict[str, Page]]:
    """A phone each, JavaScript off (the pages need none), cookies of its own."""
    contexts = [browser.new_context(java_script_enabled=False, viewport=PHONE) for _ in range(4)]
    try:
        names = ("seller", "buyer", "arbiter", "stranger")
        yield {name: context.new_page() for name, context in zip(names, contexts, strict=True)}
    finally:
        for context in contexts:
            context.close()


def sign_in(page: Page, market: Market, key: str) -> None:
    """Sign in at the form with the organization's API key, as a person pastes it."""
    page.goto(f"{market.base}/trades/sign-in")
    assert page.locator("h1").inner_text() == "Sign in to your trades"
    page.fill("#api_key", key)
    with page.expect_navigation():
        page.click("#sign-in-submit")
    assert page.url == f"{market.base}/trades"


def visit(page: Page, market: Market, trade_id: int) -> str:
    """Open the trade's page; its headline."""
    response = page.goto(f"{market.base}/trades/{trade_id}")
    assert response is not None and response.status == 200, response and response.status
    return page.locator("#headline").inner_text()


def top(page: Page, shot: Path, height: int = 1400) -> None:
    """A screenshot of the page's first `height` pixels at phone width (the docs' copies)."""
    clip = {"x": 0, "y": 0, "width": PHONE["width"], "height": height}
    page.screenshot(path=str(shot), full_page=True, clip=clip)


def press(page: Page, key: str) -> None:
    """Press button `key`, after reading what it does, and land back on the trade (303)."""
    assert page.locator(f"#explain-{key}").inner_text()
    with page.expect_navigation():
        page.click(f"#button-{key}")
    assert page.locator("#error-summary").count() == 0, page.locator("#error-summary").inner_text()


def test_a_trade_through_a_dispute_to_a_ruling_as_buyer_seller_and_arbiter_see_it(
    market: Market, people: dict[str, Page]
) -> None:
    world = market.world
    trade_id = world.open_trade()
    # A mistyped key: the form again, with a plain sentence and no trace of the app's insides.
    stranger = people["stranger"]
    stranger.goto(f"{market.base}/trades/sign-in")
    stranger.fill("#api_key", world.keys["stranger"][:-2])
    with stranger.expect_navigation() as navigation:
        stranger.click("#sign-in-submit")
    assert navigation.value is not None and navigation.value.status == 401
    assert stranger.locator("#sign-in-error").inner_text() == (
        "This API key does not work: it may be mistyped or revoked"
    )
    fits(stranger, market.shots / "sign-in-wrong-key.png")
    readable(stranger)
    for name, page in people.items():
        sign_in(page, market, world.keys[name])
    seller, buyer, arbiter = (people[n] for n in ("seller", "buyer", "arbiter"))
    seen: list[str] = []
    buyer.on("request", lambda request: seen.append(request.url))

    # The list, then the trade: nothing paid in yet; depositing is agreeing to the terms.
    buyer.goto(f"{market.base}/trades")
    assert "as the buyer" in buyer.locator(f"#trade-{trade_id}").inner_text()
    with buyer.expect_navigation():
        buyer.click(f"#trade-{trade_id} a")
    assert buyer.locator("#headline").inner_text() == "Waiting for both deposits"
    assert buyer.locator("#you-are").inner_text() == "You are the buyer."
    assert "(in 2 days and 23 hours)" in buyer.locator("#deadline").inner_text()
    assert buyer.locator("#deadline-then").inner_text().startswith("The trade is cancelled")
    assert buyer.locator("#terms").is_visible()
    assert "agreeing to the terms" in buyer.locator("#explain-deposit").inner_text()
    assert buyer.locator("#button-deposit").inner_text() == "Deposit 1.1 ETH and agree to the terms"
    fits(buyer, market.shots / "buyer-open.png")
    readable(buyer)
    press(buyer, "deposit")
    assert "Your deposit: sent, waiting for the chain." in buyer.locator("#pending").inner_text()
    assert buyer.locator("#button-deposit").count() == 0

    # Sent is not paid in: the chain says who paid, so the seller's page waits for both.
    assert visit(seller, market, trade_id) == "Waiting for both deposits"
    assert "The buyer's deposit: sent" in seller.locator("#pending").inner_text()
    world.settle()
    assert visit(seller, market, trade_id) == "Waiting for your deposit"
    press(seller, "deposit")
    world.settle()
    assert visit(seller, market, trade_id) == "Paid in: waiting for you to ship"
    assert seller.locator("#passport").inner_text() == "Held in escrow until the trade ends."
    seller.screenshot(path=str(market.shots / "seller-funded.png"), full_page=True)
    readable(seller)
    press(seller, "ship")
    world.settle()

    # The buyer disputes; an arbiter is proposed, with its profile; both accept it.
    assert visit(buyer, market, trade_id) == "Shipped: waiting for you to confirm receipt"
    assert "cannot dispute afterwards" in buyer.locator("#explain-confirm").inner_text()
    press(buyer, "dispute")
    world.settle()
    assert visit(buyer, market, trade_id) == "Disputed: choosing an arbiter"
    assert buyer.locator("#arbiter-name strong").inner_text() == "Fair Referee"
    assert "English, French" in buyer.locator("#arbiter").inner_text()
    assert "Not yet chosen by the seller." in buyer.locator("#arbiter-choices").inner_text()
    fits(buyer, market.shots / "buyer-disputed.png")
    readable(buyer)
    # What went wrong, into the trade's details: only the parties (and the arbiter both
    # accept) can read it.
    buyer.fill("#message", "The teapot arrived with its lid broken; photos follow.")
    with buyer.expect_navigation():
        buyer.click("#add-detail-submit")
    assert "lid broken" in buyer.locator("#messages").inner_text()
    press(buyer, "accept")
    world.settle()
    visit(seller, market, trade_id)
    assert "The buyer accepted this arbiter." in seller.locator("#arbiter-choices").inner_text()
    press(seller, "accept")
    world.settle()

    # The arbiter, now accepted by both, reads the trade and rules for the buyer.
    assert visit(arbiter, market, trade_id) == "In arbitration: waiting for your ruling"
    assert arbiter.locator("#you-are").inner_text() == "You are the arbiter."
    assert "(in 13 days and 23 hours)" in arbiter.locator("#deadline").inner_text()
    assert "deposit is paid to you" in arbiter.locator("#explain-rule_for_buyer").inner_text()
    assert "lid broken" in arbiter.locator("#messages").inner_text()
    assert arbiter.locator("#add-detail").count() == 0
    fits(arbiter, market.shots / "arbiter-ruling.png")
    top(arbiter, market.shots / "trade-arbiter.png", 1250)
    readable(arbiter)
    press(arbiter, "rule_for_buyer")
    world.settle()

    # Each side's page: the outcome, where the passport went, and its own credit.
    assert visit(arbiter, market, trade_id) == "Ruled for the buyer"
    assert (
        arbiter.locator("#credit").inner_text() == "0.1 ETH is yours to withdraw from the escrow."
    )
    arbiter.screenshot(path=str(market.shots / "arbiter.png"), full_page=True)
    assert visit(buyer, market, trade_id) == "Ruled for the buyer"
    assert buyer.locator("#credit").inner_text() == "1.1 ETH is yours to withdraw from the escrow."
    assert buyer.locator("#passport").inner_text() == "Back with the seller."
    assert buyer.locator("#button-withdraw").is_visible()
    log = buyer.locator("#access-log").inner_text()
    assert "Fair Referee (the arbiter) read the messages and evidence" in log
    readable(buyer)
    buyer.screenshot(path=str(market.shots / "buyer.png"), full_page=True)
    top(buyer, market.shots / "trade-buyer.png", 1000)
    assert visit(seller, market, trade_id) == "Ruled for the buyer"
    assert seller.locator("#credit").inner_text() == "Nothing is left for you to withdraw."
    readable(seller)
    seller.screenshot(path=str(market.shots / "seller.png"), full_page=True)
    top(seller, market.shots / "trade-seller.png", 1000)

    # A stranger, signed in, does not learn the trade exists.
    response = stranger.goto(f"{market.base}/trades/{trade_id}")
    assert response is not None and response.status == 404
    assert stranger.locator("#not-found").is_visible()
    # Nothing the buyer's browser asked for left the site.
    assert seen and all(url.startswith(market.base + "/") for url in seen), seen
