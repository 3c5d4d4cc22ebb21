"""The buyer's claim form: what was typed, as a claim, a wallet to make or errors, and each
outcome's page.

Pure: no I/O; the typed fields, the service's answer, the clock's reading and the strings are
arguments. The route (api/claim_pages.py) calls services.claims.claim with the `ClaimCreate`
this builds, or services.claims.make_wallet with the `WalletCreate`, as the JSON routes do,
and templates/claim.html lays out the values here.

"Make a wallet for me" is two steps, so that the item never moves to a key the buyer has not
saved: the first makes the wallet and shows it, with a button that claims to its address
(the ordinary claim to an address, the second step) once the buyer has saved it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from provenance_api import claim_codes
from provenance_api.schemas import (
    PASSPHRASE_MAX,
    PASSPHRASE_MIN,
    ClaimCreate,
    ClaimPublic,
    Gtin,
    Serial,
    WalletCreate,
    WalletPublic,
    eth_address,
)
from provenance_api.web.page import when
from provenance_api.web.strings import Strings

# The form's fields in the order the page shows them (and lists their errors).
FIELDS = ("code", "wallet", "address", "passphrase", "confirm")
TO_ADDRESS, TO_NEW = "address", "new"  # the two answers to "where should the item go?"
KEPT = ("code", "wallet", "address")  # shown again after an error; a passphrase never is
CODE_MAX = 64  # as schemas.ClaimCodeText
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
CHAIN_STATES = ("owed", "confirmed", "failed")
_GTIN, _SERIAL = TypeAdapter(Gtin), TypeAdapter(Serial)  # as the JSON routes check them


@dataclass(frozen=True, slots=True)
class Form:
    """The form as shown: the inputs kept, and each bad field's sentence in FIELDS order."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def target(self, name: str) -> str:
        """The id an error summary's link for field `name` points at (a radio for `wallet`)."""
        return "wallet-address" if name == "wallet" else name


@dataclass(frozen=True, slots=True)
class Done:
    """A claim that was accepted: the new owner and the chain write."""

    owner: str
    chain: str


@dataclass(frozen=True, slots=True)
class Wallet:
    """A made wallet to save (as a file and as text), and the claim to its address to send."""

    address: str
    code: str
    keystore_text: str
    keystore_href: str
    keystore_name: str


@dataclass(frozen=True, slots=True)
class Throttled:
    """Refused unread: too many attempts on this item; when a retry may succeed."""

    text: str
    wait: str
    retry_after: int


def item(gtin: str, serial: str) -> tuple[str, str] | None:
    """The item the URL names as (GTIN-14, serial), or None when it names none.

    >>> item("9506000134352", "S1"), item("9506000134353", "S1"), item("12345", "S1")
    (('09506000134352', 'S1'), None, None)
    >>> item("9506000134352", "S#"), item("9506000134352", "S" * 21)
    (None, None)
    """
    try:
        return _GTIN.validate_python(gtin), _SERIAL.validate_python(serial)
    except ValidationError:
        return None


def _address_error(typed: str) -> str | None:
    if not typed:
        return "claim.error.address_missing"
    if not _HEX_ADDRESS.match(typed):
        return "claim.error.address_format"
    try:
        eth_address(typed)
    except ValueError:
        return "claim.error.address_zero" if int(typed, 16) == 0 else "claim.error.address_checksum"
    return None


def read(
    typed: Mapping[str, str], gtin: str, serial: str, strings: Strings
) -> ClaimCreate | WalletCreate | Form:
    """The claim, or the wallet to make, the form asks for; or the form again with every bad
    field's sentence.

    Only the fields of the chosen answer count: a passphrase typed before choosing "to my
    wallet" is neither checked nor sent. Code and address are trimmed (they are pasted);
    a passphrase is taken exactly as typed.
    """
    code = typed.get("code", "").strip()
    wallet = typed.get("wallet", "")
    address = typed.get("address", "").strip()
    passphrase, confirm = typed.get("passphrase", ""), typed.get("confirm", "")
    errors: dict[str, str] = {}
    if not code:
        errors["code"] = strings("claim.error.code_missing")
    elif len(code) > CODE_MAX:
        errors["code"] = strings("claim.error.code_format")
    else:
        try:
            claim_codes.normalize(code)
        except ValueError:
            errors["code"] = strings("claim.error.code_format")
    if wallet == TO_ADDRESS:
        problem = _address_error(address)
        if problem is not None:
            errors["address"] = strings(problem)
    elif wallet == TO_NEW:
        if len(passphrase) < PASSPHRASE_MIN:
            errors["passphrase"] = strings("claim.error.passphrase_short", count=PASSPHRASE_MIN)
        elif len(passphrase) > PASSPHRASE_MAX:
            errors["passphrase"] = strings("claim.error.passphrase_long", count=PASSPHRASE_MAX)
        elif confirm != passphrase:
            errors["confirm"] = strings("claim.error.confirm")
    else:
        errors["wallet"] = strings("claim.error.wallet")
    kept = {"code": code, "wallet": wallet if wallet in (TO_ADDRESS, TO_NEW) else ""}
    kept["address"] = address
    if errors:
        return Form(kept, errors)
    if wallet == TO_NEW:
        return WalletCreate(gtin=gtin, serial=serial, code=code, passphrase=passphrase)
    return ClaimCreate(gtin=gtin, serial=serial, code=code, address=address)


def refused(typed: Mapping[str, str], name: str, sentence: str) -> Form:
    """The form again after the service refused it, `sentence` on field `name`."""
    values = {key: typed.get(key, "").strip() for key in KEPT}
    return Form(values, {name: sentence})


def throttled(retry_after: int, now: datetime, strings: Strings) -> Throttled:
    """The page of a refusal unread: when to try again, as a time and as a wait.

    >>> from datetime import UTC
    >>> from provenance_api.web.strings import catalogue
    >>> shown = throttled(90, datetime(2026, 12, 1, 16, 5, tzinfo=UTC), catalogue())
    >>> shown.text[-33:], shown.wait
    ('after 1 December 2026, 16:07 UTC.', 'That is in 90 seconds.')
    """
    if retry_after < 120:
        wait = strings("claim.wait.seconds", count=retry_after)
    else:
        wait = strings("claim.wait.minutes", count=-(-retry_after // 60))
    # Rounded up to the minute shown, so that a buyer who waits until then is let in.
    at = now + timedelta(seconds=retry_after + 59)
    return Throttled(strings("claim.throttled.text", when=when(at)), wait, retry_after)


def done(claimed: ClaimPublic, strings: Strings) -> Done:
    """The page of an accepted claim (or of one repeated after it was accepted)."""
    state = claimed.transfer.chain if claimed.transfer.chain in CHAIN_STATES else "owed"
    return Done(claimed.owner_address, strings(f"claim.chain.{state}"))


def wallet(made: WalletPublic, code: str) -> Wallet:
    """The page of a made wallet: its keystore both as a file and as text, and the claim.

    The keystore is offered as a `data:` URL with `download`, so that it never has to be
    kept by the service for a second request: the page itself is the only copy we hand out.
    `code` is the code as typed (trimmed); the page sends it back, with the address, in the
    claim's hidden fields.
    """
    text = json.dumps(made.keystore, indent=2)
    compact = json.dumps(made.keystore, separators=(",", ":"))
    href = "data:application/json;charset=utf-8," + quote(compact, safe="")
    name = f"keystore-{made.address}.json"
    return Wallet(made.address, code.strip(), text, href, name)
