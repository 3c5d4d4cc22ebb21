"""What the buyer's page shows, from a verification: the verdict, the product, the journey.

Pure: no I/O; the verification, the explorer's URL template and the strings are arguments.
The template (templates/verification.html) only lays these values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from provenance_api.schemas import (
    AnchorState,
    HistoryStep,
    ItemStatus,
    PartyPublic,
    Verdict,
    Verification,
)
from provenance_api.services.anomalies import parse_geo
from provenance_api.web.strings import Strings

TAG_KINDS = ("qr_label", "ntag21x_url", "ntag424_sun")


@dataclass(frozen=True, slots=True)
class Party:
    """Someone the page names: a name, and the address when the name is not the address."""

    name: str
    address: str | None


@dataclass(frozen=True, slots=True)
class Proof:
    """A step's proof state in words, and its transaction with an explorer link if any."""

    state: str
    text: str
    detail: str | None
    transaction: str | None
    link: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the journey: which step, who, where, when, and its proof."""

    name: str
    who: Party
    where: str
    when: str
    when_iso: str
    proof: Proof
    reported: bool  # captured over EPCIS from another system: no reader signed it


@dataclass(frozen=True, slots=True)
class Page:
    """Everything the page shows, in the order it shows it."""

    verdict: str
    headline: str
    lead: str
    reasons: list[str]
    status: str | None
    title: str
    checked_at: str
    checked_at_iso: str
    product: str | None
    gtin: str | None
    serial: str | None
    supplier: Party | None
    image: str | None
    image_elsewhere: tuple[str, str] | None
    tag: str | None
    owner: Party | None
    custodian: Party | None
    in_transit_to: Party | None
    first_verified: str | None
    steps: list[Step]
    claimed: bool  # the product is only what the code claims to be: no record is shown
    claimable: bool  # a buyer may claim it with the seller's code (the page links the form)


def when(moment: datetime) -> str:
    """A moment as people read it, in UTC (the page knows nobody's time zone).

    >>> from datetime import UTC
    >>> when(datetime(2026, 12, 1, 16, 5, 59, tzinfo=UTC))
    '1 December 2026, 16:05 UTC'
    """
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def sentence(message: str) -> str:
    """A reason as a sentence: a capital first letter and a full stop.

    >>> sentence("this tag was copied")
    'This tag was copied.'
    """
    text = message[:1].upper() + message[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def explorer_link(template: str | None, transaction: str | None) -> str | None:
    """The explorer's page of `transaction`, or None when no explorer is configured.

    >>> explorer_link("https://scan.example/tx/{tx}", "0xab"), explorer_link("", "0xab")
    ('https://scan.example/tx/0xab', None)
    """
    if not template or not transaction:
        return None
    return template.replace("{tx}", transaction)


def same_site_image(url: str | None, host: str) -> tuple[str | None, tuple[str, str] | None]:
    """(an image the page may load, a link to one it may not): only our own host's images load.

    The page makes no third-party request, so a picture on the maker's site is a link.

    >>> same_site_image("https://id.example.com/img/tea.png", "id.example.com")
    ('https://id.example.com/img/tea.png', None)
    >>> same_site_image("https://cdn.maker.example/tea.png", "id.example.com")
    (None, ('https://cdn.maker.example/tea.png', 'cdn.maker.example'))
    """
    if not url:
        return None, None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, None
    if parts.netloc == host:
        return url, None
    return None, (url, parts.hostname)


def _party(party: PartyPublic | None) -> Party | None:
    if party is None:
        return None
    return Party(party.name, None if party.name == party.address else party.address)


def _where(read_point: str, strings: Strings) -> str:
    position = parse_geo(read_point)
    if position is None:
        return read_point
    return strings("journey.position", lat=f"{position[0]:.4f}", lon=f"{position[1]:.4f}")


def _proof(step: HistoryStep, explorer: str | None, strings: Strings) -> Proof:
    state = step.anchoring
    if state is AnchorState.CONFIRMED and step.block_number is not None:
        text = strings("proof.confirmed", block=f"{step.block_number:,}")
        if step.confirmations is None:
            detail = None
        elif step.confirmations == 1:
            detail = strings("proof.confirmation")
        elif step.confirmations == 0:
            detail = strings("proof.no_confirmations")
        else:
            detail = strings("proof.confirmations", count=f"{step.confirmations:,}")
    else:
        text, detail = strings(f"proof.{state.value}"), None
    return Proof(
        state.value,
        text,
        detail,
        step.transaction,
        explorer_link(explorer, step.transaction),
    )


def _step(step: HistoryStep, explorer: str | None, strings: Strings) -> Step:
    return Step(
        name=strings.step(step.biz_step),
        who=Party(step.party_name, step.party) if step.party_name else Party(step.party, None),
        where=_where(step.read_point, strings),
        when=when(step.event_time),
        when_iso=step.event_time.isoformat(),
        proof=_proof(step, explorer, strings),
        reported=not step.device_signed,
    )


def page(found: Verification, strings: Strings, explorer: str | None, host: str) -> Page:
    """The page for verification `found`, its links to `explorer`, images only from `host`."""
    verdict = found.verdict.value
    product = found.product.name if found.product else None
    image, elsewhere = same_site_image(found.product.image_url if found.product else None, host)
    status = found.status if found.status not in (None, ItemStatus.ACTIVE) else None
    first = None
    if found.first_verified is not None:
        moment = when(found.first_verified.at)
        first = (
            strings("parties.first_verified.at", when=moment, place=found.first_verified.place)
            if found.first_verified.place
            else strings("parties.first_verified.at_nowhere", when=moment)
        )
    tag = None
    if found.tag_kind is not None:
        tag = strings(f"tag.{found.tag_kind}" if found.tag_kind in TAG_KINDS else "tag.other")
    # A code that is not genuine is not the item whose record this is: the record of the
    # genuine one (its owner, its journey) would only lend the copy its credibility.
    genuine_record = found.verdict is not Verdict.COUNTERFEIT
    return Page(
        verdict=verdict,
        headline=strings(f"verdict.{verdict}"),
        lead=strings(f"verdict.{verdict}.lead"),
        reasons=[sentence(reason.message) for reason in found.reasons],
        status=strings(f"status.{status.value}") if status is not None else None,
        title=strings("title", product=product) if product else strings("title_unknown"),
        checked_at=strings("checked_at", when=when(found.checked_at)),
        checked_at_iso=found.checked_at.isoformat(),
        product=product,
        gtin=found.gtin,
        serial=found.serial,
        supplier=_party(found.supplier),
        image=image,
        image_elsewhere=elsewhere,
        tag=tag,
        owner=_party(found.owner) if genuine_record else None,
        custodian=_party(found.custodian) if genuine_record else None,
        in_transit_to=_party(found.in_transit_to) if genuine_record else None,
        first_verified=first if genuine_record else None,
        steps=[_step(step, explorer, strings) for step in found.history] if genuine_record else [],
        claimed=not genuine_record,
        claimable=_claimable(found),
    )


def _claimable(found: Verification) -> bool:
    """Whether the page links the claim form: a genuine item, or one with a warning.

    Not a counterfeit's page, nor one we could not check. Not an item a wallet already owns
    either: only an organization whose key the API holds can make a claim code.
    """
    if found.verdict not in (Verdict.AUTHENTIC, Verdict.SUSPICIOUS):
        return False
    if not found.gtin or not found.serial or found.owner is None:
        return False
    return found.owner.name != found.owner.address  # a wallet is named by its address
