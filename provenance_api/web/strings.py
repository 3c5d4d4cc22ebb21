"""Every sentence the buyer's page shows, in one place for translation (English by default).

Pure: no I/O. A catalogue maps a key to a `str.format` template; `catalogue(language)` gives
the one to use (only English so far: add a dict with the same keys to translate the page).
The reasons' own sentences come from the verification (services/anomalies.py) in English.
"""

from __future__ import annotations

from collections.abc import Mapping

ENGLISH: dict[str, str] = {
    "language": "en",
    "title": "Is this {product} genuine?",
    "title_unknown": "Is this item genuine?",
    "site_name": "Provenance check",
    # The verdict, large, then one sentence under it.
    "verdict.authentic": "Genuine",
    "verdict.authentic.lead": "This item is one its maker made, and its record checks out.",
    "verdict.suspicious": "Warning",
    "verdict.suspicious.lead": (
        "Something about this item does not add up. Read why below before you buy or use it."
    ),
    "verdict.counterfeit": "Not genuine",
    "verdict.counterfeit.lead": "This is not an item its maker made.",
    "verdict.unverifiable": "We could not check this item",
    "verdict.unverifiable.lead": "This says nothing about whether it is genuine or not.",
    "reasons.heading": "Why",
    "status.recalled": "Recalled",
    "status.stolen": "Reported stolen",
    "status.destroyed": "Reported destroyed",
    "checked_at": "Checked {when}",
    # The product.
    "product.heading": "The product",
    "product.heading_claimed": "What this code claims to be",
    "product.name": "Name",
    "product.gtin": "Product number (GTIN)",
    "product.serial": "Serial number",
    "product.supplier": "Made by",
    "product.image_alt": "Picture of {product}",
    "product.image_elsewhere": "See a picture of it on {host}",
    "product.tag": "Checked by",
    "tag.qr_label": "its printed code, signed by its maker",
    "tag.ntag21x_url": "its NFC tag, signed by its maker",
    "tag.ntag424_sun": "its NFC chip's one-time code (NTAG 424 DNA)",
    "tag.other": "its tag",
    # Who has it.
    "parties.heading": "Who has it",
    "parties.owner": "Owner",
    "parties.custodian": "Held by",
    "parties.in_transit_to": "On its way to",
    "parties.first_verified": "First checked by a buyer",
    "parties.first_verified.at": "{when} in {place}",
    "parties.first_verified.at_nowhere": "{when}",
    "parties.unknown": "not known",
    # The journey.
    "journey.heading": "Its journey",
    "journey.empty": "We have no record of this item's journey.",
    "journey.who": "Who",
    "journey.where": "Where",
    "journey.when": "When",
    "journey.proof": "Proof",
    "journey.position": "{lat}, {lon}",
    "proof.confirmed": "Recorded on the blockchain in block {block}",
    "proof.confirmations": "{count} confirmations since",
    "proof.confirmation": "1 confirmation since",
    "proof.no_confirmations": "no confirmations yet",
    "proof.pending": "Not yet on the blockchain: it will be recorded with the next batch",
    "proof.owed": "Being recorded on the blockchain",
    "proof.failed": "Recording on the blockchain failed; we are trying again",
    "proof.transaction": "See the transaction {tx}",
    "proof.transaction_label": "Transaction {tx}",
    # Verify it yourself (the page's own script fills this in).
    "verify_yourself.heading": "Verify it yourself",
    "verify_yourself.no_script": (
        "Your browser can check the blockchain records above by itself, without trusting"
        " us: turn on JavaScript to let this page recompute each step's record and compare"
        " it with the blockchain."
    ),
    "footer.privacy": "This page loads nothing from other sites and does not track you.",
    "footer.json": "This check as data (JSON)",
    # A link that is no product link at all.
    "invalid.heading": "This is not a product link",
    # Verify it yourself, as static/proof.js says it: the page hands it every key below with
    # "verify_yourself." taken off (its data-strings attribute); {name} is filled in there.
    "verify_yourself.intro": (
        "Your browser can check this item's proofs itself, reading the blockchain directly"
        " instead of taking our word for it."
    ),
    "verify_yourself.button": "Check the proofs in this browser",
    "verify_yourself.running": "Checking…",
    "verify_yourself.nothing": "There are no proofs to check on this page.",
    "verify_yourself.noNode": (
        "No public blockchain node is configured, so your browser cannot read the chain."
    ),
    "verify_yourself.wrongChain": (
        "The blockchain node is on chain {got}, not chain {want}: nothing could be checked."
    ),
    "verify_yourself.nodeDown": (
        "The blockchain node could not be read ({error}): nothing could be checked."
    ),
    "verify_yourself.pass": "Every check your browser made passed.",
    "verify_yourself.partial": (
        "Every check your browser made passed, but some could not be made yet (see below)."
    ),
    "verify_yourself.passOther": (
        "Every check your browser made passed: the verdict above (“{verdict}”) is ours and"
        " unaltered, so heed it."
    ),
    "verify_yourself.fail": "A check failed: do not rely on this page's proofs.",
    "verify_yourself.result.pass": "Passed:",
    "verify_yourself.result.fail": "Failed:",
    "verify_yourself.result.service": "Our word:",
    "verify_yourself.result.pending": "Not checked yet:",
    "verify_yourself.byBrowser": "checked by your browser",
    "verify_yourself.byService": "rests on our word",
    "verify_yourself.notChecked": "not checked",
    "verify_yourself.eventOk": "The step's details match what was signed",
    "verify_yourself.eventBad": "The step's details do not match its fingerprint",
    "verify_yourself.signedBy": "Signed by reader {device}",
    "verify_yourself.signedBad": "The signature is not reader {device}'s",
    "verify_yourself.readerOk": "Reader {device} is registered on the blockchain to {party}",
    "verify_yourself.readerBad": "Reader {device} is not registered on the blockchain to {party}",
    "verify_yourself.readerRevoked": (
        "Reader {device} is registered to {party}, and has been revoked since"
    ),
    "verify_yourself.supplierSigned": "Signed by the supplier's key {device}",
    "verify_yourself.supplierKey": "That {device} is the supplier's key",
    "verify_yourself.proofOk": "Its proof leads to root {root}",
    "verify_yourself.proofBad": "Its proof does not lead to the root shown ({root})",
    "verify_yourself.anchored": "Root {root} is on the blockchain since {date}",
    "verify_yourself.notAnchored": "Root {root} is not on the blockchain",
    "verify_yourself.pending": "Not on the blockchain yet: only its signature could be checked",
    "verify_yourself.tagRead": (
        "That the tag read at this step was genuine (we checked it when the step arrived)"
    ),
    "verify_yourself.verdictTitle": "Our verdict",
    "verify_yourself.stepsTitle": "Each step of its journey",
    "verify_yourself.attested": (
        "Our verdict “{verdict}” and its reasons are signed by key {signer}"
    ),
    "verify_yourself.attestBad": "Our signature does not match the verdict and reasons shown",
    "verify_yourself.unsigned": (
        "This verdict is not signed, so your browser cannot check that it is ours"
    ),
    "verify_yourself.operator": "Key {signer} is the service's key on the blockchain",
    "verify_yourself.notOperator": "Key {signer} is not the service's key on the blockchain",
    "verify_yourself.tagCheck": (
        "The tag check itself: we checked the tag's code against its maker's keys"
    ),
    "verify_yourself.tagCheck424": (
        "The tag check itself: an NTAG 424 DNA chip proves each tap with a secret key that only"
        " the maker and we hold, so only we can check it; our signature above is what your"
        " browser can check"
    ),
    "verify_yourself.ledger": "Ledger contract {ledger} on chain {chain}, as this page names it",
    "verify_yourself.error": "Could not check: {error}",
}

# CBV 2.0 business steps in plain words; a step not here is shown by its own name.
STEPS: dict[str, str] = {
    "commissioning": "Made and registered",
    "shipping": "Shipped",
    "receiving": "Received",
    "departing": "Left",
    "arriving": "Arrived",
    "loading": "Loaded",
    "unloading": "Unloaded",
    "transporting": "In transport",
    "storing": "Stored",
    "stocking": "Put on the shelf",
    "inspecting": "Inspected",
    "packing": "Packed",
    "unpacking": "Unpacked",
    "retail_selling": "Sold",
    "accepting": "Accepted",
    "holding": "Held",
    "picking": "Picked",
    "repairing": "Repaired",
    "destroying": "Destroyed",
    "decommissioning": "Taken out of use",
}

CATALOGUES: dict[str, tuple[Mapping[str, str], Mapping[str, str]]] = {"en": (ENGLISH, STEPS)}
DEFAULT_LANGUAGE = "en"


class Strings:
    """One language's sentences: `strings("key", name=value)` fills a template."""

    def __init__(self, messages: Mapping[str, str], steps: Mapping[str, str]) -> None:
        self.messages = messages
        self.steps = steps

    def __call__(self, key: str, **values: object) -> str:
        """The sentence `key` with `values` filled in (KeyError for a key not in the catalogue)."""
        return self.messages[key].format(**values)

    def proof_script(self) -> dict[str, object]:
        """The words static/proof.js shows: the "verify_yourself." keys without it, the business
        steps (`steps`) and the verdicts (`verdicts`) in words.

        >>> catalogue("en").proof_script()["steps"]["shipping"]
        'Shipped'
        """
        prefix = "verify_yourself."
        words: dict[str, object] = {
            key.removeprefix(prefix): text
            for key, text in self.messages.items()
            if key.startswith(prefix)
        }
        words["steps"] = dict(self.steps)
        words["verdicts"] = {
            verdict: self.messages[f"verdict.{verdict}"]
            for verdict in ("authentic", "suspicious", "counterfeit", "unverifiable")
        }
        return words

    def step(self, biz_step: str) -> str:
        """A business step in plain words.

        >>> catalogue("en").step("retail_selling"), catalogue("en").step("cycle_counting")
        ('Sold', 'Cycle counting')
        """
        return self.steps.get(biz_step) or biz_step.replace("_", " ").capitalize()


def catalogue(language: str = DEFAULT_LANGUAGE) -> Strings:
    """The sentences of `language`, English when there is no catalogue for it."""
    messages, steps = CATALOGUES.get(language, CATALOGUES[DEFAULT_LANGUAGE])
    return Strings(messages, steps)
