"""The buyer's page's rules (provenance_api.web.page) and its one catalogue of sentences."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provenance_api.schemas import (
    AnchorState,
    HistoryStep,
    ItemStatus,
    PartyPublic,
    ProductBrief,
    ReasonPublic,
    Verdict,
    Verification,
)
from provenance_api.web import page, strings

WEB = Path(page.__file__).parent
TEMPLATE = WEB / "templates" / "verification.html"
NOW = datetime(2026, 12, 1, 16, 5, tzinfo=UTC)
MAKER = PartyPublic(name="Acme Tea", address="0x" + "aa" * 20)
EXPLORER = "https://explorer.example/tx/{tx}"
TEXT = strings.catalogue()


def step(anchoring: AnchorState, **fields) -> HistoryStep:
    fields.setdefault("biz_step", "commissioning")
    return HistoryStep(
        event_id="e1",
        disposition="active",
        read_point="geo:52.52,13.405",
        party=MAKER.address,
        party_name=MAKER.name,
        event_time=NOW,
        time_zone_offset=60,
        from_party="0x" + "00" * 20,
        to_party=MAKER.address,
        device=MAKER.address,
        tag_evidence="0x" + "33" * 32,
        signature="0x" + "44" * 65,
        anchoring=anchoring,
        digest="0x" + "11" * 32,
        salt="0x" + "22" * 32,
        **fields,
    )


def checked(verdict: Verdict, *steps: HistoryStep, **fields) -> Verification:
    fields.setdefault("status", ItemStatus.ACTIVE)
    return Verification(
        verdict=verdict,
        reasons=[ReasonPublic(code="x", message="something is off")],
        checked_at=NOW,
        gtin="09506000134352",
        serial="Q1",
        product=ProductBrief(gtin="09506000134352", name="Tea"),
        supplier=MAKER,
        owner=MAKER,
        custodian=MAKER,
        history=list(steps),
        **fields,
    )


def test_a_confirmed_step_names_its_block_and_links_its_transaction() -> None:
    tx = "0x" + "ab" * 32
    found = checked(
        Verdict.AUTHENTIC,
        step(AnchorState.CONFIRMED, block_number=12345, confirmations=3, transaction=tx),
    )
    (shown,) = page.page(found, TEXT, EXPLORER, "id.example.com").steps
    assert (shown.name, shown.who.name, shown.where) == (
        "Made and registered",
        "Acme Tea",
        "52.5200, 13.4050",
    )
    assert (shown.proof.text, shown.proof.detail) == (
        "Recorded on the blockchain in block 12,345",
        "3 confirmations since",
    )
    assert shown.proof.link == f"https://explorer.example/tx/{tx}"
    (unlinked,) = page.page(found, TEXT, None, "id.example.com").steps
    assert unlinked.proof.link is None and unlinked.proof.transaction == tx


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (AnchorState.PENDING, "Not yet on the blockchain"),
        (AnchorState.OWED, "Being recorded on the blockchain"),
        (AnchorState.FAILED, "Recording on the blockchain failed"),
    ],
)
def test_a_step_not_yet_anchored_says_so(state: AnchorState, text: str) -> None:
    (shown,) = page.page(checked(Verdict.AUTHENTIC, step(state)), TEXT, EXPLORER, "h").steps
    assert shown.proof.text.startswith(text) and shown.proof.link is None


def test_a_step_reported_from_another_system_says_no_reader_signed_it() -> None:
    captured = step(
        AnchorState.PENDING,
        device_signed=False,
        biz_step="http://epcis.example.org/hc/bizstep/summarising_discharge",
    )
    signed, reported = page.page(
        checked(Verdict.AUTHENTIC, step(AnchorState.PENDING), captured), TEXT, None, "h"
    ).steps
    assert (signed.reported, reported.reported) == (False, True)
    assert reported.name == "Summarising discharge"


def test_a_counterfeit_is_not_lent_the_genuine_items_record() -> None:
    found = checked(Verdict.COUNTERFEIT, step(AnchorState.PENDING))
    shown = page.page(found, TEXT, EXPLORER, "id.example.com")
    assert (shown.headline, shown.claimed, shown.steps, shown.owner) == (
        "Not genuine",
        True,
        [],
        None,
    )
    assert shown.reasons == ["Something is off."]
    assert shown.product == "Tea"


def test_each_verdict_has_a_headline_and_a_status_is_shown() -> None:
    headlines = {
        verdict: page.page(checked(verdict), TEXT, None, "h").headline for verdict in Verdict
    }
    assert headlines == {
        Verdict.AUTHENTIC: "Genuine",
        Verdict.SUSPICIOUS: "Warning",
        Verdict.COUNTERFEIT: "Not genuine",
        Verdict.UNVERIFIABLE: "We could not check this item",
    }
    recalled = checked(Verdict.SUSPICIOUS, status=ItemStatus.RECALLED)
    assert page.page(recalled, TEXT, None, "h").status == "Recalled"


def test_only_our_own_sites_images_load() -> None:
    own = checked(Verdict.AUTHENTIC)
    own.product = ProductBrief(gtin="1", name="Tea", image_url="https://id.example.com/t.png")
    assert page.page(own, TEXT, None, "id.example.com").image == "https://id.example.com/t.png"
    shown = page.page(own, TEXT, None, "other.example")
    assert (shown.image, shown.image_elsewhere) == (None, (own.product.image_url, "id.example.com"))


@pytest.mark.parametrize("name", ["verification.html", "preview.html"])
def test_every_sentence_of_the_page_is_in_the_catalogue(name: str) -> None:
    template = (TEMPLATE.parent / name).read_text()
    keys = set(re.findall(r"t\('([a-z_.]+)'", template))
    keys |= set(re.findall(r"'([a-z_]+\.[a-z_.]+)'", template))
    keys -= {"page.css", "icon.svg", "proof.js"}  # file names, not sentences
    keys -= {"claim_page.show_claim_form"}  # an endpoint (the claim form's link)
    assert keys and keys <= set(strings.ENGLISH), sorted(keys - set(strings.ENGLISH))
    # Nothing a person reads is written in the template itself.
    bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", template, flags=re.S)
    bare = re.sub(r"<script[^>]*>.*?</script>|<[^>]+>", " ", bare, flags=re.S)
    assert re.findall(r"[A-Za-z]{2,}", bare) == []


def test_the_catalogue_fills_every_template_it_holds() -> None:
    fields = {"product": "Tea", "when": "now", "host": "h", "lat": "1", "lon": "2"}
    fields |= {"block": "1", "count": "2", "tx": "0x", "place": "Berlin", "who": "Acme"}
    # proof.js fills these in itself, from what it checked.
    fields |= dict.fromkeys(("got", "want", "error", "device", "party", "root", "date"), "x")
    fields |= dict.fromkeys(("verdict", "signer", "ledger", "chain"), "x")
    # The trade pages' (web/trade_page.py fills these in).
    fields |= dict.fromkeys(("name", "id", "item", "role", "span", "first", "second"), "x")
    fields |= dict.fromkeys(("amount", "deposit", "price", "pays", "back", "arbiter"), "x")
    fields |= dict.fromkeys(("party", "whose", "since", "reason"), "x")
    for key in strings.ENGLISH:
        assert TEXT(key, **fields)
    assert strings.catalogue("xx")("verdict.authentic") == "Genuine"  # English by default


def test_every_word_proof_js_says_is_in_the_catalogue() -> None:
    script = (WEB / "static" / "proof.js").read_text()
    # The keys it passes to say(...), directly or through the variables it picks them with.
    keys = {
        key
        for words in re.findall(r"say\(([^,)]*)", script)
        for key in re.findall(r'"(\w+)"', words)
    }
    for chosen in re.findall(r"(?:const (?:text|tag|WHO)|summary) (=[^;]*);", script):
        keys |= set(re.findall(r'(?:[?:]|(?<![!=])=)\s*"(\w+)"', chosen))
    keys |= {f"result.{result}" for result in ("pass", "fail", "service", "pending")}
    words = TEXT.proof_script()
    assert len(keys) > 40 and keys <= set(words), sorted(keys - set(words))
    assert not re.search(r"\bTEXT\b", script)  # no second catalogue in the script
    assert (
        words["steps"]["receiving"] == "Received" and words["verdicts"]["suspicious"] == "Warning"
    )
