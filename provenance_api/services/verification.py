"""Verification: "is this genuine, and where has it been?" for a scanned or tapped tag URL.

The tag check (`firmware_tools.verify.check_tag`) says whether the tag is what its maker
made; the anomaly rules (services.anomalies) say whether its history fits one genuine item.
The public sees plain reasons; the tag check's own causes are stored with the scan for the
item's supplier (`item_scans`). A buyer's SUN tap advances the chip's counter through the
same compare-and-set as device events (uow.counters), in the scan's transaction.

`unverifiable` is "we could not check" (no product of that GTIN here, the maker's SUN keys
missing or unreadable): never a reason to call an item counterfeit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts_abi import eip712
from firmware_tools.errors import GS1Error
from firmware_tools.formats.gs1 import DigitalLink, normalize_gtin, parse_digital_link
from firmware_tools.verify import (
    AUTHENTIC,
    COUNTERFEIT,
    SIGNATURE_VALID,
    SUSPICIOUS,
    ScannedUrl,
    TagCheck,
    Trust,
    check_tag,
    is_sun_url,
)
from provenance_api.epcis import capture as capture_rules
from provenance_api.epcis.event_hash import CBV
from provenance_api.keys import KeyBox
from provenance_api.models import (
    CapturedEvent,
    CustodyEvent,
    Item,
    ItemScan,
    Organization,
    Product,
    TagKind,
)
from provenance_api.schemas import (
    Attestation,
    CustodyEventPublic,
    FirstVerified,
    HistoryStep,
    ItemStatus,
    ItemStatusPublic,
    ItemStatusUpdate,
    PartyPublic,
    ProductBrief,
    ReasonPublic,
    RecallStatusPublic,
    ScanList,
    ScanPublic,
    Verdict,
    Verification,
    as_utc,
)
from provenance_api.services import anomalies, custody_rules, history, sun_keys
from provenance_api.services.anomalies import Finding, Sighting, Thresholds
from provenance_api.services.errors import InvalidInput, NotFound
from provenance_api.services.history import Head
from provenance_api.services.ports import UnitOfWork

UNVERIFIABLE = anomalies.UNVERIFIABLE
RECENT_SCANS_MAX = 1000  # the rules read at most this many of an item's recent scans


@dataclass(frozen=True, slots=True)
class Scanner:
    """Who is checking, as far as the rules need: an opaque phone id and an optional place."""

    id: str
    geo: str | None = None
    place: str | None = None


class _Tap:
    """A CounterStore that notes the SUN tap `check_tag` would advance and lets it pass.

    The real compare-and-set runs after the check, so that the rules see the last counter.
    """

    def __init__(self) -> None:
        self.tap: tuple[bytes, int, int] | None = None

    def advance(self, uid: bytes, key_epoch: int, counter: int) -> bool:
        self.tap = (bytes(uid), key_epoch, counter)
        return True


def digital_link(url: str) -> DigitalLink:
    """The scanned URL as a GS1 Digital Link, or InvalidInput naming `url`."""
    try:
        return parse_digital_link(url)
    except GS1Error as exc:
        raise InvalidInput(
            f"not a product link (GS1 Digital Link): {exc}", {"url": "not a GS1 Digital Link"}
        ) from None


def verify(
    uow: UnitOfWork,
    keybox: KeyBox,
    url: str,
    scanner: Scanner,
    thresholds: Thresholds,
    head: Head,
    now: datetime | None = None,
) -> Verification:
    """Check the tag URL and the item's history; record the scan; the public answer."""
    now = now or datetime.now(UTC)
    link = digital_link(url)
    with uow:
        product = uow.products.get(link.gtin)
        supplier = uow.organizations.get(product.organization_id) if product else None
        if product is None or supplier is None:
            reason = Finding(
                "unknown_product",
                f"GTIN {link.gtin} is not registered with this service, so we cannot check"
                " it here: this says nothing about whether it is genuine",
                UNVERIFIABLE,
            )
            return _answer(UNVERIFIABLE, [reason], now, link)
        item = uow.items.get(link.gtin, link.serial)
        if item is None:
            findings = anomalies.ghost_serial(link.gtin, link.serial, product.name)
            return _answer(COUNTERFEIT, findings, now, link, product, supplier)
        answer = _verify_item(
            uow, keybox, url, link, product, supplier, item, scanner, thresholds, head, now
        )
        uow.commit()
        return answer


def _verify_item(
    uow: UnitOfWork,
    keybox: KeyBox,
    url: str,
    link: DigitalLink,
    product: Product,
    supplier: Organization,
    item: Item,
    scanner: Scanner,
    thresholds: Thresholds,
    head: Head,
    now: datetime,
) -> Verification:
    """The tag check, the counter, the rules over the item's history; the scan is added."""
    assert item.id is not None
    tap = _Tap()
    try:
        needs_keys = item.tag == TagKind.NTAG424.value or is_sun_url(url)
        epochs = (
            tuple(sun_keys.open_epochs(keybox, uow.sun_keys.epochs(supplier.id or 0)))
            if needs_keys
            else ()
        )
        check = check_tag(ScannedUrl(url), Trust(supplier=supplier.address, key_epochs=epochs), tap)
    except ValueError:  # no SUN keys registered, or a sealed key that does not open
        reason = Finding(
            "keys_unavailable",
            f"{supplier.name} has not given us the keys to check this chip, so we could not"
            " check it: this says nothing about whether it is genuine",
            UNVERIFIABLE,
        )
        return _answer(UNVERIFIABLE, [reason], now, link, product, supplier, item)

    findings = _tag_findings(uow, check, item, supplier)
    details = [{"code": r.code, "message": r.message} for r in check.reasons]
    if tap.tap is not None and check.verdict != COUNTERFEIT:
        uid, epoch, counter = tap.tap
        last = uow.counters.last(uid, epoch)
        found = anomalies.counter_rule(counter, last)
        if not uow.counters.advance(uid, epoch, counter) and not found:
            found = anomalies.counter_rule(counter, counter)  # a concurrent tap took it first
        findings += found
        details.append(
            {
                "code": "sun_tap",
                "message": f"chip {uid.hex().upper()}, key epoch {epoch}, counter {counter},"
                f" last accepted {'none' if last is None else last}",
            }
        )
    tag_verdict = _tag_verdict(check)

    events = sorted(uow.events.for_items({item.id}), key=lambda e: (e.event_time, e.id or 0))
    names = _names(uow, events, supplier)
    custody = custody_rules.custody([_rule_event(event, n) for n, event in enumerate(events)])
    scans = [
        s
        for s in uow.scans.recent(
            item.id, now - timedelta(days=thresholds.scan_window_days), RECENT_SCANS_MAX
        )
        if s.verdict != COUNTERFEIT  # a forged code seen elsewhere says nothing of this one
    ]
    here = Sighting(now, scanner.place, anomalies.parse_geo(scanner.geo), scanner.id)
    seen = [_event_sighting(event) for event in events] + [_scan_sighting(s) for s in scans]
    sold_at = _sold_at(events)
    if tag_verdict != COUNTERFEIT:
        findings += anomalies.impossible_travel(here, seen, thresholds)
        findings += anomalies.still_in_supply_chain(
            _name(names, custody.possessor),
            _kind(uow, custody.possessor),
            _name(names, custody.in_transit_to),
        )
        findings += anomalies.scanned_after_sale(
            sold_at, [_scan_sighting(s) for s in scans] + [here], thresholds
        )
    findings += anomalies.status_rule(item.status, item.status_reason, _utc(item.status_at))
    verdict = anomalies.verdict(tag_verdict, findings)

    uow.scans.add(
        ItemScan(
            item_id=item.id,
            scanned_at=now,
            tag_kind=check.kind[:16],
            verdict=verdict,
            codes=[f.code for f in findings],
            details=details,
            place=scanner.place,
            latitude=here.position[0] if here.position else None,
            longitude=here.position[1] if here.position else None,
            scanner=scanner.id,
            counter=check.counter,
        )
    )
    answer = _answer(verdict, findings, now, link, product, supplier, item, check.kind)
    transfers = uow.transfers.of_item(item.id)
    owner = transfers[-1].to_address if transfers else supplier.address
    answer.owner = _party(names, owner, uow)
    answer.custodian = _party(names, custody.possessor, uow)
    answer.in_transit_to = _party(names, custody.in_transit_to, uow)
    first = anomalies.first_verified(sold_at, [_scan_sighting(s) for s in scans])
    if first is not None and first.scanner != scanner.id:
        answer.first_verified = FirstVerified(at=first.at, place=first.place)
    steps = [_step(step, names) for step in history.public_events(uow, events, head)]
    # Captured events are shown, marked as not device-signed; the rules above never read them.
    steps += _captured_steps(uow, uow.captured.for_items({item.id}), head)
    answer.history = sorted(steps, key=lambda step: step.event_time)  # stable: ties keep order
    return answer


def _tag_findings(
    uow: UnitOfWork, check: TagCheck, item: Item, supplier: Organization
) -> list[Finding]:
    """The tag check in plain words (its own causes are kept for the supplier)."""
    findings: list[Finding] = []
    if check.verdict == COUNTERFEIT:
        findings += anomalies.signed_by_other_key(check.signer, supplier.address, supplier.name)
        if not findings:
            findings.append(
                Finding(
                    "tag_not_genuine",
                    f"this tag's security code does not check out: it was not made by"
                    f" {supplier.name} for this item",
                    COUNTERFEIT,
                )
            )
        return findings
    if check.verdict == SUSPICIOUS and "replayed_counter" not in check.codes:
        findings.append(
            Finding(
                "tag_doubtful",
                "this tag checks out only in part (it cannot prove a fresh tap, or does not"
                " cover the item it names): ask the seller for another proof",
                SUSPICIOUS,
            )
        )
    uid = check.uid.hex().upper() if check.uid is not None else None
    if item.tag != TagKind.QR.value and uid is not None and uid != item.uid:
        others = uow.items.by_uids({uid})
        other = f"{others[0].gtin}/{others[0].serial}" if others else None
        findings += anomalies.bound_to_other_item(uid, item.uid, other)
    return findings


def _tag_verdict(check: TagCheck) -> str:
    if check.verdict in (AUTHENTIC, SIGNATURE_VALID):
        # A signature-only URL can be copied: the history rules are what catch a copy.
        return AUTHENTIC
    if check.verdict in (SUSPICIOUS, COUNTERFEIT):
        return check.verdict
    return UNVERIFIABLE


def _answer(
    verdict: str,
    findings: Sequence[Finding],
    now: datetime,
    link: DigitalLink,
    product: Product | None = None,
    supplier: Organization | None = None,
    item: Item | None = None,
    tag_kind: str | None = None,
) -> Verification:
    return Verification(
        verdict=Verdict(verdict),
        reasons=[ReasonPublic(code=f.code, message=f.message) for f in findings],
        checked_at=now,
        tag_kind=tag_kind,
        gtin=link.gtin,
        serial=link.serial,
        status=ItemStatus(item.status) if item is not None else None,
        product=(
            ProductBrief(gtin=product.gtin, name=product.name, image_url=product.image_url)
            if product is not None
            else None
        ),
        supplier=(
            PartyPublic(name=supplier.name, address=supplier.address)
            if supplier is not None
            else None
        ),
    )


def _names(
    uow: UnitOfWork, events: Sequence[CustodyEvent], supplier: Organization
) -> dict[str, str]:
    """Organization names by address, for the parties the events name."""
    names = {supplier.address: supplier.name}
    for address in {e.party for e in events} | {e.to_party for e in events}:
        if address not in names and address != eip712.ZERO_ADDRESS:
            found = uow.organizations.by_address(address)
            if found is not None:
                names[address] = found.name
    return names


def _name(names: dict[str, str], address: str | None) -> str | None:
    return None if address is None else names.get(address, address)


def _kind(uow: UnitOfWork, address: str | None) -> str | None:
    found = uow.organizations.by_address(address) if address else None
    return None if found is None else str(found.kind)


def _party(names: dict[str, str], address: str | None, uow: UnitOfWork) -> PartyPublic | None:
    if address is None:
        return None
    if address not in names:
        found = uow.organizations.by_address(address)
        if found is None:
            return PartyPublic(name=address, address=address)  # a wallet, not an organization
        names[address] = found.name
    return PartyPublic(name=names[address], address=address)


def _rule_event(event: CustodyEvent, arrival: int) -> custody_rules.Event:
    return custody_rules.Event(
        event_id=event.event_id,
        biz_step=event.biz_step,
        party=event.party,
        event_time=event.event_time,
        arrival=arrival,
        from_party=None if event.from_party == eip712.ZERO_ADDRESS else event.from_party,
        to_party=None if event.to_party == eip712.ZERO_ADDRESS else event.to_party,
    )


def _event_sighting(event: CustodyEvent) -> Sighting:
    return Sighting(
        datetime.fromtimestamp(event.event_time, UTC),
        event.read_point,
        anomalies.parse_geo(event.read_point),
    )


def _scan_sighting(scan: ItemScan) -> Sighting:
    position = None
    if scan.latitude is not None and scan.longitude is not None:
        position = (scan.latitude, scan.longitude)
    return Sighting(as_utc(scan.scanned_at), scan.place, position, scan.scanner)


def _sold_at(events: Sequence[CustodyEvent]) -> datetime | None:
    sold = [e.event_time for e in events if e.biz_step in anomalies.SOLD]
    return datetime.fromtimestamp(max(sold), UTC) if sold else None


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _step(event: CustodyEventPublic, names: dict[str, str]) -> HistoryStep:
    return HistoryStep(
        event_id=event.event_id,
        biz_step=event.biz_step,
        disposition=event.disposition,
        read_point=event.read_point,
        party=event.party,
        party_name=names.get(event.party),
        event_time=event.event_time,
        time_zone_offset=event.time_zone_offset,
        from_party=event.from_party,
        to_party=event.to_party,
        device=event.device,
        tag_evidence=event.tag_evidence,
        signature=event.signature,
        anchoring=event.anchoring,
        digest=event.digest,
        salt=event.salt,
        leaf_index=event.leaf_index,
        proof=event.proof,
        root=event.root,
        transaction=event.transaction,
        block_number=event.block_number,
        confirmations=event.confirmations,
    )


def attest(answer: Verification, key: bytes, chain_id: int, ledger: str) -> Attestation | None:
    """The service's signature over the verdict `answer` shows; None without an item named.

    Pure: no I/O; the key, the chain id and the CustodyLedger address are arguments. The
    buyer's browser checks it, and that its signer is an operator of `ledger`: an NTAG 424
    DNA tap is checked with a symmetric key, so this signature is all a browser can check of it.
    """
    if answer.gtin is None or answer.serial is None:
        return None
    signed = eip712.TagVerdict(
        gtin=answer.gtin,
        serial=answer.serial,
        tag_kind=answer.tag_kind or "",
        verdict=answer.verdict.value,
        reasons_hash=eip712.reasons_hash([(r.code, r.message) for r in answer.reasons]),
        checked_at=int(answer.checked_at.timestamp()),
    )
    signature = eip712.sign_tag_verdict(key, signed, chain_id=chain_id, ledger=ledger)
    return Attestation(
        signer=eip712.address_of_private_key(key),
        signature="0x" + signature.hex(),
        chain_id=chain_id,
        ledger=eip712.to_checksum_address(ledger),
        gtin=signed.gtin,
        serial=signed.serial,
        tag_kind=signed.tag_kind,
        verdict=answer.verdict,
        reasons_hash="0x" + signed.reasons_hash.hex(),
        checked_at=signed.checked_at,
    )


def _captured_steps(
    uow: UnitOfWork, rows: Sequence[CapturedEvent], head: Head
) -> list[HistoryStep]:
    """Events captured over EPCIS that name the item, as history steps (not device-signed)."""
    found = history.anchorings(uow, [row.batch_id for row in rows], head)
    capturers = {i: uow.organizations.get(i) for i in {row.organization_id for row in rows}}
    steps = []
    for row, anchoring in zip(rows, found, strict=True):
        capturer = capturers[row.organization_id]
        event = row.event
        read_point = event.get("readPoint")
        batch, receipt = anchoring.batch, anchoring.receipt
        steps.append(
            HistoryStep(
                event_id=row.event_hash,
                device_signed=False,
                event_type=row.event_type,
                biz_step=row.biz_step or "",
                disposition=capture_rules.term_name(
                    event.get("disposition"), row.context, CBV + "Disp-"
                )
                or "",
                read_point=str(read_point.get("id", "")) if isinstance(read_point, dict) else "",
                party=capturer.address if capturer is not None else "",
                party_name=capturer.name if capturer is not None else None,
                event_time=datetime.fromtimestamp(row.event_time_ms / 1000, UTC),
                anchoring=anchoring.state,
                digest="0x" + bytes(row.digest).hex(),
                salt="0x" + bytes(row.salt).hex(),
                leaf_index=row.leaf_index,
                proof=list(row.proof) if row.proof is not None else None,
                root="0x" + bytes(batch.root).hex() if batch is not None else None,
                transaction=receipt.tx_hash if receipt is not None else None,
                block_number=receipt.block_number if receipt is not None else None,
                confirmations=anchoring.confirmations,
            )
        )
    return steps


def recall_status(uow: UnitOfWork, gtin: str, serial: str) -> RecallStatusPublic:
    """An item's status and its supplier's public reason, for anyone (the buyer's phone).

    The same as a verification shows, without the item's owner, custody or tag; an unknown
    item is a 404 that does not say whether its product is known here.
    """
    missing = NotFound(f"no item with GTIN {gtin} and serial {serial!r}", {"serial": "not found"})
    try:
        gtin = normalize_gtin(gtin)
    except GS1Error:
        raise missing from None
    with uow:
        item = uow.items.get(gtin, serial)
        if item is None:
            raise missing
        return RecallStatusPublic(
            gtin=item.gtin,
            serial=item.serial,
            status=ItemStatus(item.status),
            reason=item.status_reason,
            since=_utc(item.status_at),
        )


# --- the supplier's side ------------------------------------------------------------------


def set_status(
    uow: UnitOfWork,
    organization_id: int,
    gtin: str,
    serial: str,
    update: ItemStatusUpdate,
    now: datetime | None = None,
) -> ItemStatusPublic:
    """The item's supplier reports it recalled, stolen, destroyed, or active again."""
    now = now or datetime.now(UTC)
    with uow:
        item = _own_item(uow, organization_id, gtin, serial)
        assert item.id is not None
        uow.items.set_status(item.id, update.status.value, update.reason, now)
        answer = ItemStatusPublic(
            gtin=item.gtin,
            serial=item.serial,
            status=update.status,
            reason=update.reason,
            status_at=now,
        )
        uow.commit()
    return answer


def get_status(uow: UnitOfWork, organization_id: int, gtin: str, serial: str) -> ItemStatusPublic:
    """The status of one of the caller's items."""
    with uow:
        item = _own_item(uow, organization_id, gtin, serial)
        return ItemStatusPublic(
            gtin=item.gtin,
            serial=item.serial,
            status=ItemStatus(item.status),
            reason=item.status_reason,
            status_at=_utc(item.status_at),
        )


def item_scans(
    uow: UnitOfWork, organization_id: int | None, gtin: str, serial: str, limit: int
) -> ScanList:
    """The item's most recent public checks with the tag check's causes.

    For its supplier (`organization_id`), or for an operator (None), who may read any item.
    """
    with uow:
        item = _own_item(uow, organization_id, gtin, serial)
        assert item.id is not None
        rows = uow.scans.recent(item.id, datetime(1970, 1, 1, tzinfo=UTC), limit)
        return ScanList(
            gtin=item.gtin,
            serial=item.serial,
            scans=[
                ScanPublic(
                    scanned_at=as_utc(row.scanned_at),
                    verdict=Verdict(row.verdict),
                    tag_kind=row.tag_kind,
                    codes=list(row.codes),
                    details=[ReasonPublic(**detail) for detail in row.details],
                    place=row.place,
                    latitude=row.latitude,
                    longitude=row.longitude,
                    counter=row.counter,
                )
                for row in rows
            ],
        )


def _own_item(uow: UnitOfWork, organization_id: int | None, gtin: str, serial: str) -> Item:
    """The item, if the caller may see it: its supplier's, or any for an operator (None)."""
    item = uow.items.get(gtin, serial)
    if item is None or organization_id not in (None, item.organization_id):
        raise NotFound(f"no item with GTIN {gtin} and serial {serial!r}", {"serial": "not found"})
    return item
