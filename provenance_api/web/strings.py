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
    "journey.source": "Recorded",
    "journey.reported": (
        "Reported by {who} from another system: no reader of ours scanned the tag at this step,"
        " so it rests on {who}'s word"
    ),
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
    "preview.title": "Is this item genuine?",
    "preview.text": (
        "Open this link on your phone, or tap the item's tag, to check whether it is genuine and"
        " where it has been."
    ),
    "footer.privacy": "This page loads nothing from other sites and does not track you.",
    "footer.json": "This check as data (JSON)",
    # A link that is no product link at all.
    "invalid.heading": "This is not a product link",
    # Claiming (issue 11): the link on the item's page, the claim form and its outcomes.
    "claim.offer.heading": "Bought this item?",
    "claim.offer.text": (
        "Make it yours on the blockchain with the claim code the seller gave you."
    ),
    "claim.offer.link": "Claim it",
    "claim.title": "Claim this {product}",
    "claim.title_unknown": "Claim this item",
    "claim.lead": (
        "The seller gave you a one-time claim code when you bought it. Enter it here and the"
        " item's record on the blockchain (its product passport) moves to you."
    ),
    "claim.item": "The item",
    "claim.code.label": "Claim code",
    "claim.code.hint": (
        "16 letters and digits from the seller, like 7K3M-Q9XD-2F8H-VN4P. Dashes and capitals"
        " do not matter."
    ),
    "claim.wallet.legend": "Where should the item go?",
    "claim.wallet.address": "To my wallet",
    "claim.wallet.address.hint": "You already have an Ethereum wallet: you keep its key.",
    "claim.wallet.new": "Make a wallet for me",
    "claim.wallet.new.hint": (
        "We make a new key, lock it with your passphrase and give it to you once. We keep no"
        " copy, so nobody but you can move the item on. You save it, then claim the item to it."
    ),
    "claim.address.label": "Your wallet address",
    "claim.address.hint": (
        "It starts with 0x, followed by 40 letters and digits. Paste it from your wallet."
    ),
    "claim.passphrase.label": "Passphrase for your new wallet",
    "claim.passphrase.hint": (
        "At least {count} characters; a few unrelated words are easy to remember. Nobody can"
        " reset it: without it the wallet cannot be opened."
    ),
    "claim.confirm.label": "Passphrase again",
    "claim.new.once": (
        "The next page gives you your wallet file. The item moves to it only when you say,"
        " there, that you have saved it."
    ),
    "claim.submit": "Claim this item",
    "claim.errors.heading": "There is a problem",
    "claim.error.code_missing": "Enter the claim code the seller gave you",
    "claim.error.code_format": (
        "Enter the claim code as the seller gave it: 16 letters and digits, like"
        " 7K3M-Q9XD-2F8H-VN4P"
    ),
    "claim.error.wallet": "Choose where the item should go: your wallet, or a new one",
    "claim.error.address_missing": "Enter your wallet address",
    "claim.error.address_format": (
        "Enter a wallet address: 0x followed by 40 letters (a to f) and digits"
    ),
    "claim.error.address_checksum": (
        "This address has a typing mistake: its capital letters do not match. Copy it from"
        " your wallet again"
    ),
    "claim.error.address_zero": "This address belongs to nobody: enter your own wallet's address",
    "claim.error.address_owner": (
        "This address already owns the item: enter your own wallet's address"
    ),
    "claim.error.passphrase_short": "Enter a passphrase of at least {count} characters",
    "claim.error.passphrase_long": "Enter a passphrase of at most {count} characters",
    "claim.error.confirm": "The two passphrases are not the same: type it again",
    # One answer for a wrong, expired, used or replaced code and an unknown item (no oracle).
    "claim.refused": (
        "This code does not claim this item. It may be mistyped, expired, already used or"
        " replaced by a newer one: check it, or ask the seller for a new code"
    ),
    "claim.busy": "The item changed hands while we were moving it. Try again",
    "claim.throttled.heading": "Too many attempts",
    "claim.throttled.text": (
        "Too many claim codes were tried for this item lately, so we are not checking codes"
        " for it for a while. Try again after {when}."
    ),
    "claim.throttled.seller": "If your code keeps failing, ask the seller for a new one.",
    "claim.wait.seconds": "That is in {count} seconds.",
    "claim.wait.minutes": "That is in {count} minutes.",
    "claim.unavailable.heading": "We cannot take claims right now",
    "claim.unavailable.text": "Nothing was changed. Please try again in a few minutes.",
    "claim.not_found.heading": "This is not an item we can claim",
    "claim.not_found.text": "The link does not name a product and serial number.",
    "claim.again": "Try again",
    "claim.done.heading": "This item is now yours",
    "claim.done.lead": "Its product passport has moved to your wallet.",
    "claim.done.owner": "New owner",
    "claim.done.chain": "On the blockchain",
    "claim.chain.owed": "Being recorded; this usually takes a minute or two",
    "claim.chain.confirmed": "Recorded",
    "claim.chain.failed": "Recording failed; we are trying again",
    "claim.done.next.heading": "What happens next",
    "claim.done.next.record": (
        "Once recorded, the item's page shows your address as its owner: scan or tap the"
        " item's tag again to see it."
    ),
    "claim.done.next.consent": (
        "From now on only your wallet can agree to move the item to someone else. The claim"
        " code is used up."
    ),
    # "Make a wallet for me", step 1's answer: the wallet to save, and the claim to it (step 2).
    "claim.wallet_made.heading": "Save your wallet, then claim the item",
    "claim.wallet_made.lead": (
        "Your wallet is made, but the item has not moved yet: save the wallet file first, then"
        " claim the item to it."
    ),
    "claim.wallet_made.claim.heading": "Then claim the item to it",
    "claim.wallet_made.address": "Your new wallet's address",
    "claim.wallet_made.submit": "I have saved my wallet: claim the item",
    "claim.wallet_made.lost": (
        "If you leave this page before claiming, nothing is lost: your claim code still"
        " works. Come back to make a new wallet with it."
    ),
    "claim.keystore.heading": "Save your new wallet now",
    "claim.keystore.warning": (
        "This is the only copy of your wallet's key, locked with your passphrase. We keep no"
        " copy and cannot show it again: once the item is yours, if you lose this file or"
        " forget the passphrase, nobody can recover its ownership."
    ),
    "claim.keystore.download": "Download your wallet file",
    "claim.keystore.text.label": "Your wallet file (a keystore: you can also copy it)",
    "claim.keystore.text.hint": (
        "Keep it somewhere safe, such as a password manager. Wallet apps that import an"
        " Ethereum keystore (JSON) file open it with your passphrase."
    ),
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
    "verify_yourself.captured": (
        "No reader signed this step: {party} sent it to us from another system, so what it"
        " says rests on {party}'s word"
    ),
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
        >>> catalogue("en").step("http://epcis.example.org/hc/bizstep/summarising_discharge")
        'Summarising discharge'
        """
        # Another vocabulary's step is a URI: its last segment is its name.
        name = biz_step.rstrip("/").rsplit("/", 1)[-1]
        return self.steps.get(biz_step) or name.replace("_", " ").capitalize()


def catalogue(language: str = DEFAULT_LANGUAGE) -> Strings:
    """The sentences of `language`, English when there is no catalogue for it."""
    messages, steps = CATALOGUES.get(language, CATALOGUES[DEFAULT_LANGUAGE])
    return Strings(messages, steps)
