"""The claim form's rules (provenance_api.web.claim_form), its template's sentences, and when
the item's page offers the form (provenance_api.web.page)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

from provenance_api.schemas import (
    ClaimCreate,
    ClaimPublic,
    PartyPublic,
    TransferPublic,
    Verdict,
    WalletCreate,
    WalletPublic,
)
from provenance_api.web import claim_form, page, strings
from tests.unit.test_buyer_page import checked

TEMPLATE = Path(page.__file__).parent / "templates" / "claim.html"
TEXT = strings.catalogue()
GTIN, SERIAL = "09506000134352", "S1"
CODE = "7K3M-Q9XD-2F8H-VN4P"
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
PASSPHRASE = "correct horse battery staple"


def read(**typed: str) -> ClaimCreate | WalletCreate | claim_form.Form:
    return claim_form.read(typed, GTIN, SERIAL, TEXT)


def test_to_a_wallet_only_the_address_counts() -> None:
    claim = read(code=" 7k3m q9xd 2f8h vn4p ", wallet="address", address=f" {ADDRESS.lower()} ")
    assert isinstance(claim, ClaimCreate)
    assert (claim.code, claim.address) == ("7K3MQ9XD2F8HVN4P", ADDRESS)
    # A passphrase typed before the choice changed is neither checked nor sent.
    typed = "typed before the choice"
    claim = read(code=CODE, wallet="address", address=ADDRESS, passphrase=typed, confirm="y")
    assert isinstance(claim, ClaimCreate) and typed not in repr(claim.model_dump())


def test_a_new_wallet_is_made_first_and_only_the_passphrase_counts() -> None:
    made = read(code=CODE, wallet="new", address="0xnonsense", passphrase=" " + "p" * 11)
    assert isinstance(made, claim_form.Form)  # no confirmation
    made = read(
        code=CODE, wallet="new", address="0xnonsense", passphrase=PASSPHRASE, confirm=PASSPHRASE
    )
    # Step 1 makes a wallet and claims nothing; the claim to it is step 2's, to an address.
    assert isinstance(made, WalletCreate)
    assert (made.code, made.passphrase) == ("7K3MQ9XD2F8HVN4P", PASSPHRASE)


def test_every_bad_field_is_named_in_the_forms_order_and_a_passphrase_is_never_kept() -> None:
    form = read(code="7K3M", wallet="new", address=ADDRESS, passphrase="short", confirm="short")
    assert isinstance(form, claim_form.Form)
    assert list(form.errors) == ["code", "passphrase"]
    assert form.values == {"code": "7K3M", "wallet": "new", "address": ADDRESS}
    form = read(code="", wallet="sideways")
    assert isinstance(form, claim_form.Form)
    assert list(form.errors) == ["code", "wallet"] and form.values["wallet"] == ""
    assert [form.target(name) for name in form.errors] == ["code", "wallet-address"]
    form = read(code="U" * 16, wallet="address", address=ADDRESS)
    assert isinstance(form, claim_form.Form)
    assert form.errors == {"code": TEXT("claim.error.code_format")}


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("", "claim.error.address_missing"),
        ("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "claim.error.address_format"),
        ("0x" + "0" * 40, "claim.error.address_zero"),
        ("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "claim.error.address_checksum"),
    ],
)
def test_each_kind_of_bad_address_has_its_sentence(address: str, key: str) -> None:
    form = read(code=CODE, wallet="address", address=address)
    assert isinstance(form, claim_form.Form) and form.errors == {"address": TEXT(key)}


def transfer(chain: str) -> TransferPublic:
    return TransferPublic(
        gtin=GTIN,
        serial=SERIAL,
        token_id="0x01",
        sequence=1,
        mints=True,
        from_organization_id=1,
        from_address="0x" + "aa" * 20,
        to_organization_id=None,
        to_address=ADDRESS,
        nonce=0,
        deadline=1,
        signature="0x",
        tag_commitment="0x",
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        chain=chain,
    )


def test_an_accepted_claim_shows_the_new_owner_and_the_chain_state() -> None:
    plain = claim_form.done(ClaimPublic(owner_address=ADDRESS, transfer=transfer("owed")), TEXT)
    assert (plain.owner, plain.chain) == (ADDRESS, TEXT("claim.chain.owed"))
    again = ClaimPublic(owner_address=ADDRESS, transfer=transfer("confirmed"), replayed=True)
    assert claim_form.done(again, TEXT).chain == TEXT("claim.chain.confirmed")


def test_a_made_wallet_is_a_file_its_text_and_a_claim_to_its_address() -> None:
    keystore = {"address": ADDRESS[2:].lower(), "version": 3, "crypto": {"kdf": "scrypt"}}
    shown = claim_form.wallet(WalletPublic(address=ADDRESS, keystore=keystore), f" {CODE} ")
    assert (shown.address, shown.code) == (ADDRESS, CODE)
    assert json.loads(shown.keystore_text) == keystore
    prefix = "data:application/json;charset=utf-8,"
    assert shown.keystore_href.startswith(prefix)
    assert json.loads(unquote(shown.keystore_href.removeprefix(prefix))) == keystore
    assert not set(shown.keystore_href.removeprefix(prefix)) & set("\"'<> ")
    assert shown.keystore_name == f"keystore-{ADDRESS}.json"


def test_a_wait_reads_in_seconds_then_in_whole_minutes() -> None:
    now = datetime(2026, 12, 1, 16, 5, tzinfo=UTC)
    assert claim_form.throttled(45, now, TEXT).wait == "That is in 45 seconds."
    shown = claim_form.throttled(3600, now, TEXT)
    assert (shown.wait, shown.retry_after) == ("That is in 60 minutes.", 3600)
    assert shown.text.endswith("after 1 December 2026, 17:05 UTC.")
    assert claim_form.throttled(121, now, TEXT).wait == "That is in 3 minutes."


@pytest.mark.parametrize(
    ("verdict", "owner", "offered"),
    [
        (Verdict.AUTHENTIC, None, True),
        (Verdict.SUSPICIOUS, None, True),
        (Verdict.COUNTERFEIT, None, False),
        (Verdict.UNVERIFIABLE, None, False),
        (Verdict.AUTHENTIC, PartyPublic(name=ADDRESS, address=ADDRESS), False),  # a wallet's
    ],
)
def test_the_items_page_offers_the_form_for_an_organizations_genuine_item(
    verdict: Verdict, owner: PartyPublic | None, offered: bool
) -> None:
    found = checked(verdict)
    if owner is not None:
        found.owner = owner
    assert page.page(found, TEXT, None, "h").claimable is offered


def test_every_sentence_of_the_claim_pages_is_in_the_catalogue() -> None:
    template = TEMPLATE.read_text()
    keys = set(re.findall(r"t\('([a-z_.]+)'", template))
    assert keys and keys <= set(strings.ENGLISH), sorted(keys - set(strings.ENGLISH))
    # Nothing a person reads is written in the template itself (a macro's body may be
    # attributes, such as aria-describedby, rather than text).
    bare = re.sub(r"\{%-? macro.*?endmacro %\}", " ", template, flags=re.S)
    bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", bare, flags=re.S)
    bare = re.sub(r"<[^>]+>", " ", bare, flags=re.S)
    assert re.findall(r"[A-Za-z]{2,}", bare) == []
