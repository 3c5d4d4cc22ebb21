"""Verify it yourself on the real buyer's page: the browser checks the proofs against anvil.

The shop (tests/e2e/proof_support.py) runs on anvil, and the page names anvil as its public
JSON-RPC endpoint (PUBLIC_RPC_URL), so that proof.js in Debian's chromium reads the chain
itself. Each case opens the resolver URL at 360 x 800, presses "Check the proofs in this
browser" and asserts what the buyer reads: which checks the browser made and that they
passed, which rest on the service, and, when the page's proof data is altered on its way to
the browser, the failure in words. Screenshots are saved under the
Playwright output directory (`--output`, default test-results/) in buyer-page/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from playwright.sync_api import Page

from tests.conftest import anvil_node
from tests.e2e.conftest import PHONE
from tests.e2e.proof_support import PARTNER, Shop, open_shop
from tests.e2e.test_buyer_page import BERLIN, MADRID, MIN_CONTRAST, contrast

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

BUTTON = "Check the proofs in this browser"
PASSED = "Every check your browser made passed."
FAILED = "A check failed: do not rely on this page's proofs."
# What the browser checks itself, and what it can only take from the service.
BY_BROWSER = {"attestation", "operator", "digest", "signature", "device", "proof", "anchor"}
BY_SERVICE = {"tag", "supplier"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory, pytestconfig) -> Iterator[Shop]:
    """The shop on its own anvil node, which the page names as the public endpoint."""
    shots = Path(str(pytestconfig.getoption("--output"))) / "buyer-page"
    with anvil_node() as url, open_shop(tmp_path_factory.mktemp("shop"), shots, url) as made:
        yield made


def altering(change: Callable[[dict[str, Any]], None]) -> Callable[[Page], None]:
    """Alter the loaded page's #proof-data as a man in the middle could have, before the check.

    Not through page.route: Chromium gives a response that Playwright fulfils no address
    space, so its Local Network Access rule then blocks the page's fetch to the loopback
    anvil node (a phone's public node is no loopback address). The script reads the element
    when the buyer presses the button, so it sees the same change either way.
    """

    def alter(page: Page) -> None:
        data = json.loads(page.locator("#proof-data").text_content() or "null")
        change(data)
        page.locator("#proof-data").evaluate(
            "(e, text) => { e.textContent = text; }", json.dumps(data)
        )

    return alter


def check_page(
    page: Page,
    shop: Shop,
    url: str,
    shot: str,
    keyboard: bool = False,
    alter: Callable[[Page], None] | None = None,
) -> dict[str, Any]:
    """Open `url`, press the button (or Tab to it and press Enter), read the section."""
    response = page.goto(url)
    assert response is not None and response.status == 200
    if alter is not None:
        alter(page)
    button = page.get_by_role("button", name=BUTTON)
    if keyboard:
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.tagName") == "BUTTON":
                break
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.textContent, s.outlineStyle, s.outlineWidth]; }"
        )
        assert outline[0] == BUTTON and outline[1] != "none" and outline[2] != "0px", outline
        page.keyboard.press("Enter")
    else:
        button.click()
    overall = page.locator("#verify-yourself [data-proof-overall]")
    overall.wait_for(timeout=30_000)
    assert button.is_enabled()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{shot}: the page is {width} px wide"
    page.screenshot(path=str(shop.shots / f"{shot}.png"), full_page=True)
    checks = page.locator("#verify-yourself li[data-check]")
    return {
        "verdict": page.locator("#verdict h1").inner_text().strip(),
        "overall": overall.get_attribute("data-result"),
        "summary": overall.inner_text(),
        "checks": [
            (item.get_attribute("data-check"), item.get_attribute("data-result"), item.inner_text())
            for item in checks.all()
        ],
        "events": page.locator("#verify-yourself [data-event]").all_inner_texts(),
        "text": page.locator("#verify-yourself").inner_text(),
    }


def said(seen: dict[str, Any], key: str) -> list[str]:
    """What the buyer reads of each check `key`."""
    return [text for check, _, text in seen["checks"] if check == key]


def assert_all_made_checks_passed(seen: dict[str, Any]) -> None:
    """Each check reads "Passed:" if the browser made it, "Our word:" if it rests on us."""
    assert seen["overall"] == "pass" and seen["summary"] == PASSED, seen
    for key, result, text in seen["checks"]:
        if key in BY_BROWSER:
            assert result == "pass" and text.startswith("✓ Passed: "), (key, text)
            assert text.endswith("(checked by your browser)"), (key, text)
        else:
            assert key in BY_SERVICE, (key, text)
            assert result == "service" and text.startswith("• Our word: "), (key, text)
            assert text.endswith("(rests on our word)"), (key, text)


def first_with_proof(data: dict[str, Any]) -> dict[str, Any]:
    """The first step whose Merkle proof has a node."""
    return next(step for step in data["verification"]["history"] if step["proof"])


def bent(value: str) -> str:
    """A 0x hex string with its last digit changed."""
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_a_genuine_qr_item_checks_out(page: Page, shop: Shop) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    seen = check_page(page, shop, shop.url(shop.label("Q1")), "verified-genuine-qr", True)
    assert seen["verdict"] == "Genuine"
    assert_all_made_checks_passed(seen)
    assert {key for key, _, _ in seen["checks"]} == BY_BROWSER - {"device"} | BY_SERVICE
    (attested,) = said(seen, "attestation")
    assert "Our verdict “Genuine” and its reasons are signed by key 0x" in attested
    (operator,) = said(seen, "operator")
    assert "is the service's key on the blockchain" in operator
    (anchored,) = said(seen, "anchor")
    assert re.search(r"Root 0x[0-9a-f]{6}…[0-9a-f]{4} is on the blockchain since", anchored)
    (tag,) = said(seen, "tag")
    assert "we checked the tag's code against its maker's keys" in tag
    (made,) = seen["events"]
    assert made.startswith(f"Made and registered · {shop.maker} · "), made
    # The page's files, and the public node the page names: nothing else.
    anvil = page.locator("#proof-data").text_content() or ""
    node = json.loads(anvil)["chain"]["rpc_url"]
    others = {url for url in requested if not url.startswith(shop.base + "/")}
    assert others and all(url.startswith(node) for url in others), others
    # Every text the check added is readable on its background.
    pairs = page.evaluate(
        """() => {
          const background = e => {
            for (; e; e = e.parentElement) {
              const c = getComputedStyle(e).backgroundColor;
              if (c !== 'rgba(0, 0, 0, 0)') return c;
            }
            return 'rgb(255, 255, 255)';
          };
          return [...document.querySelectorAll('#verify-yourself *')]
            .filter(e => e.offsetParent !== null && e.childNodes.length)
            .map(e => [e.tagName, getComputedStyle(e).color, background(e)]);
        }"""
    )
    assert len(pairs) > 20
    for name, foreground, background in pairs:
        assert contrast(foreground, background) >= MIN_CONTRAST, (name, foreground, background)


def test_a_genuine_ntag424_tap_checks_out(page: Page, shop: Shop) -> None:
    seen = check_page(page, shop, shop.url(shop.world.tap(1)), "verified-genuine-ntag424")
    assert seen["verdict"] == "Genuine"
    assert_all_made_checks_passed(seen)
    # The three steps' signatures, readers, proofs and roots, each checked by the browser.
    assert len(seen["events"]) == 3
    assert len(said(seen, "proof")) == len(said(seen, "anchor")) == 3
    assert [text.split(" · ")[0] for text in seen["events"]] == [
        "Made and registered",
        "Shipped",
        "Received",
    ]
    (received,) = [text for text in said(seen, "device") if shop.retailer in text]
    assert (
        received.startswith("✓ Passed: Reader 0x") and "is registered on the blockchain" in received
    )
    # The tap is symmetric-key: only the service checks it; the browser checks its signature.
    (tag,) = [text for key, result, text in seen["checks"][:3] if key == "tag"]
    assert tag.startswith("• Our word: The tag check itself: an NTAG 424 DNA chip proves")
    assert "only we can check it; our signature above is what your browser can check" in tag
    assert said(seen, "attestation")[0].startswith("✓ Passed: Our verdict “Genuine”")


@pytest.mark.parametrize(
    ("case", "serial", "change", "failure"),
    [
        (
            "altered-proof",
            "Q2",
            lambda data: first_with_proof(data)["proof"].__setitem__(
                0, bent(first_with_proof(data)["proof"][0])
            ),
            "Its proof does not lead to the root shown",
        ),
        (
            "altered-root",
            "Q3",
            lambda data: first_with_proof(data).__setitem__(
                "root", bent(first_with_proof(data)["root"])
            ),
            "Its proof does not lead to the root shown",
        ),
    ],
)
def test_an_altered_proof_fails_in_words(
    page: Page, shop: Shop, case: str, serial: str, change, failure: str
) -> None:
    url = shop.url(shop.label(serial))
    seen = check_page(page, shop, url, f"verified-{case}", alter=altering(change))
    assert seen["verdict"] == "Genuine"  # what the server said: the browser's check disagrees
    assert (seen["overall"], seen["summary"]) == ("fail", FAILED), seen
    (proof,) = said(seen, "proof")
    assert proof.startswith(f"✗ Failed: {failure}"), proof
    assert proof.endswith("(checked by your browser)")
    step = [text for text in seen["events"] if failure in text]
    assert step and step[0].startswith("Made and registered"), seen["events"]
    # The rest still passed: the failure is named, not smeared over the page.
    assert said(seen, "attestation")[0].startswith("✓ Passed:")


def test_a_replayed_sun_url_still_reads_correctly(page: Page, shop: Shop) -> None:
    url = shop.url(shop.world.tap(2))
    assert page.goto(url).status == 200  # the first tap: genuine
    seen = check_page(page, shop, url, "verified-sun-replayed")  # the same link again
    assert seen["verdict"] == "Warning"
    assert page.locator("#reasons li").inner_text().startswith("This tap's counter (1) repeats")
    # The browser cannot see the counter, but it can check that the warning is ours, unaltered.
    assert seen["overall"] == "pass", seen
    assert seen["summary"].startswith(PASSED[:-1] + ": the verdict above")
    assert said(seen, "attestation")[0].startswith("✓ Passed: Our verdict “Warning”")
    assert "NTAG 424 DNA chip" in said(seen, "tag")[0]


def test_a_forged_label_still_reads_correctly(page: Page, shop: Shop) -> None:
    forged = shop.label("Q5", bytes(Account.create().key))
    seen = check_page(page, shop, shop.url(forged), "verified-forged-label")
    assert seen["verdict"] == "Not genuine"
    assert page.locator("#reasons li").inner_text().startswith("This label was signed with a key")
    # The verdict is ours and signed; the genuine item's journey is not lent to the copy.
    assert seen["overall"] == "pass", seen
    assert said(seen, "attestation")[0].startswith("✓ Passed: Our verdict “Not genuine”")
    assert "(“Not genuine”) is ours and unaltered, so heed it." in seen["summary"]
    # No green for checks that passed under a "Not genuine": the page's plain text colour.
    colour = page.locator("[data-proof-overall]").evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(26, 26, 26)", colour
    assert said(seen, "operator")[0].startswith("✓ Passed: Key 0x")
    assert seen["events"] == [] and not said(seen, "proof")
    assert "Each step of its journey" not in seen["text"]


def test_a_copied_qr_label_seen_in_two_cities_keeps_its_proofs(page: Page, shop: Shop) -> None:
    label = shop.label("Q6")
    assert page.goto(shop.url(label, **BERLIN)).status == 200
    seen = check_page(page, shop, shop.url(label, **MADRID), "verified-copied-qr")
    assert seen["verdict"] == "Warning"
    # The label's records are genuine: the browser checks them, and that the warning is ours.
    assert seen["overall"] == "pass", seen
    assert said(seen, "attestation")[0].startswith("✓ Passed: Our verdict “Warning”")
    proofs = said(seen, "proof")
    assert proofs and all(text.startswith("✓ Passed:") for text in proofs)
    # Its last step came from a carrier's system over EPCIS: anchored, but no reader signed it.
    (reported,) = [text for text in said(seen, "signature") if "No reader signed" in text]
    assert reported.startswith(f"• Our word: No reader signed this step: {PARTNER} sent it")
    assert len(said(seen, "anchor")) == len(proofs) == 2  # commissioning and the captured step


def test_a_recalled_items_proofs_still_check_out(page: Page, shop: Shop) -> None:
    seen = check_page(page, shop, shop.url(shop.label("Q4")), "verified-recalled")
    assert seen["verdict"] == "Warning"
    assert seen["overall"] == "pass", seen
    assert said(seen, "attestation")[0].startswith("✓ Passed: Our verdict “Warning”")
    assert said(seen, "anchor") and all(
        text.startswith("✓ Passed:") for text in said(seen, "anchor")
    )


def test_an_unknown_serial_has_only_our_signed_verdict_to_check(page: Page, shop: Shop) -> None:
    seen = check_page(page, shop, shop.url(shop.label("NEVER-ISSUED")), "verified-unknown")
    assert seen["verdict"] == "Not genuine"
    assert said(seen, "attestation")[0].startswith("✓ Passed: Our verdict “Not genuine”")
    assert seen["events"] == [] and not said(seen, "proof")
