"""Custody events: a batch of device-signed events, each checked, the accepted ones stored.

Each event is checked in this order, and its failures are recorded as codes and sentences:

1. the device is registered to the caller's organization and not revoked (a revoked device
   is refused from its revocation on, whatever time its events claim: its key may leak);
2. the signature over the EIP-712 digest recovers to that device;
3. the item (GTIN, serial) is registered;
4. the tag evidence passes `firmware_tools.verify.check_tag` with the item's supplier's
   address and SUN key epochs, and names the same item (and, for NFC, the same chip UID);
5. the event time is not further in the future than the allowed skew.

An event failing 1 or 2 is not checked further: nothing it says is attested. Only an
`authentic` tag is accepted: a suspicious verdict (a replayed SUN counter, an exhausted
counter) is rejected with its reason, as is a signature-only NTAG 21x URL.

The SUN counter is advanced only for an event that passed every other check, in the batch's
own transaction: a rejected event burns no counter, and a batch that rolls back advances
none. Of two requests presenting the same counter at once exactly one advances it
(provenance_api.sun_counters).

A batch costs a few queries whatever its size: the devices, the items, the stored event ids,
the earlier events of its items (for the custody rules' flags), the organizations and SUN keys
of the few suppliers named, one bulk insert and one update of the devices' `last_seen_at`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from eth_utils import to_canonical_address

from contracts_abi import eip712
from contracts_abi.merkle import SALT_BYTES
from firmware_tools.verify import (
    AUTHENTIC,
    ChipRead,
    Evidence,
    KeyEpoch,
    ScannedUrl,
    TagCheck,
    Trust,
    check_tag,
    is_sun_url,
)
from provenance_api.keys import KeyBox
from provenance_api.models import CustodyEvent, Device, Item, Organization, TagKind, utcnow
from provenance_api.schemas import (
    EventBatchResult,
    EventCreate,
    EventResult,
    EventStatus,
    as_utc,
)
from provenance_api.services import custody_rules, sun_keys
from provenance_api.services.errors import Conflict
from provenance_api.services.ports import (
    EventStep,
    NewCustodyEvent,
    UnitOfWork,
    new_custody_event,
)

# A concurrent request that stored some of the same event ids first makes the bulk insert
# clash; the retry finds them stored and answers them as resends.
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an event is rejected: a stable code and a sentence for people."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Signed:
    """An event as the device signed it: the EIP-712 values, digest, signature and signer."""

    event: eip712.CustodyEvent
    digest: bytes
    signature: bytes
    signer: bytes | None  # the 20 address bytes the signature recovers to, if it does
    uid: bytes
    originality_signature: bytes


def sign_input(data: EventCreate) -> eip712.CustodyEvent:
    """The EIP-712 `CustodyEvent` a request's event stands for (what the device signed)."""
    uid = bytes.fromhex(data.tag.uid) if data.tag.uid else b""
    signature = bytes.fromhex(data.tag.originality_signature or "")
    offset = data.event_time.utcoffset()
    assert offset is not None  # schemas.event_time refuses a naive time
    return eip712.CustodyEvent(
        event_id=data.event_id,
        gtin=data.gtin,
        serial=data.serial,
        biz_step=data.biz_step,
        disposition=data.disposition,
        read_point=data.read_point,
        from_party=data.from_party or eip712.ZERO_ADDRESS,
        to_party=data.to_party or eip712.ZERO_ADDRESS,
        event_time=int(data.event_time.timestamp()),
        time_zone_offset=int(offset.total_seconds()) // 60,
        tag_evidence=eip712.tag_evidence_digest(data.tag.url, uid, signature),
        device=data.device,
    )


def _signed(data: EventCreate) -> Signed:
    event = sign_input(data)
    digest = eip712.custody_event_digest(event)
    signature = bytes.fromhex(data.signature[2:])
    try:
        signer: bytes | None = eip712.recover_digest_signer_bytes(digest, signature)
    except eip712.SignatureError:
        signer = None
    return Signed(
        event=event,
        digest=digest,
        signature=signature,
        signer=signer,
        uid=bytes.fromhex(data.tag.uid) if data.tag.uid else b"",
        originality_signature=bytes.fromhex(data.tag.originality_signature or ""),
    )


Tap = tuple[bytes, int, int]  # a SUN tap: chip UID, key epoch, read counter


class _DeferredTap:
    """A CounterStore that notes the tap `check_tag` would advance and lets it pass.

    The real compare-and-set runs only once the event passed every other check.
    """

    def __init__(self) -> None:
        self.tap: Tap | None = None

    def advance(self, uid: bytes, key_epoch: int, counter: int) -> bool:
        self.tap = (bytes(uid), key_epoch, counter)
        return True


@dataclass
class _Batch:
    """What one batch reads once: devices, items, stored events, suppliers and their keys."""

    uow: UnitOfWork
    keybox: KeyBox
    devices: dict[str, Device]
    items: dict[tuple[str, str], Item]
    stored: dict[str, CustodyEvent]
    organizations: dict[int, Organization] = field(default_factory=dict)
    epochs: dict[int, tuple[KeyEpoch, ...]] = field(default_factory=dict)

    def organization(self, organization_id: int) -> Organization:
        if organization_id not in self.organizations:
            found = self.uow.organizations.get(organization_id)
            assert found is not None, "an item's or device's organization exists (foreign key)"
            self.organizations[organization_id] = found
        return self.organizations[organization_id]

    def key_epochs(self, organization_id: int) -> tuple[KeyEpoch, ...]:
        if organization_id not in self.epochs:
            rows = self.uow.sun_keys.epochs(organization_id)
            self.epochs[organization_id] = tuple(sun_keys.open_epochs(self.keybox, rows))
        return self.epochs[organization_id]


def record_events(
    uow: UnitOfWork,
    keybox: KeyBox,
    organization_id: int,
    events: Sequence[EventCreate],
    *,
    max_skew_seconds: int,
    now: datetime | None = None,
) -> EventBatchResult:
    """Check every event, store the accepted ones; one result per event, in order."""
    signed = [_signed(event) for event in events]  # the CPU part, outside the transaction
    for attempt in range(ATTEMPTS):
        try:
            return _record_once(
                uow, keybox, organization_id, events, signed, max_skew_seconds, now or utcnow()
            )
        except Conflict:
            if attempt == ATTEMPTS - 1:
                raise Conflict("other requests kept storing these events; send it again") from None
    raise AssertionError("unreachable")


def _record_once(
    uow: UnitOfWork,
    keybox: KeyBox,
    organization_id: int,
    events: Sequence[EventCreate],
    signed: Sequence[Signed],
    max_skew_seconds: int,
    now: datetime,
) -> EventBatchResult:
    results: list[EventResult | None] = []
    rows: dict[int, NewCustodyEvent] = {}  # by index: the events accepted so far
    taps: list[tuple[int, Tap]] = []  # by index: the SUN taps of those events
    repeats: dict[int, int] = {}  # index of an identical repeat within the batch -> first's
    first: dict[str, tuple[bytes, int]] = {}  # event id -> (digest, index) in this batch
    with uow:
        batch = _Batch(
            uow,
            keybox,
            devices={d.address: d for d in uow.devices.by_addresses({e.device for e in events})},
            items={(i.gtin, i.serial): i for i in uow.items.by_keys({_key(e) for e in events})},
            stored={
                row.event_id: row
                for row in uow.events.by_event_ids({str(e.event_id) for e in events})
            },
        )
        party = batch.organization(organization_id).address
        for index, (data, sig) in enumerate(zip(events, signed, strict=True)):
            event_id = str(data.event_id)
            stored = batch.stored.get(event_id)
            if stored is not None:
                results.append(_resent(index, event_id, sig.digest, stored))
                continue
            if event_id in first:
                digest, first_index = first[event_id]
                repeats[index] = first_index
                results.append(None if digest == sig.digest else _conflict(index, event_id))
                continue
            first[event_id] = (sig.digest, index)
            problems, check, tap = _problems(
                batch, organization_id, data, sig, max_skew_seconds, now
            )
            if problems:
                results.append(_rejected(index, event_id, problems, check))
                continue
            item = batch.items[_key(data)]
            rows[index] = _row(item, organization_id, party, sig, check, now, data)
            if tap is not None:
                taps.append((index, tap))
            results.append(
                EventResult(
                    index=index,
                    event_id=event_id,
                    status=EventStatus.ACCEPTED,
                    tag_verdict=AUTHENTIC,
                    received_at=now,
                )
            )
        tap_of = dict(taps)
        for index in _replayed(uow, taps):
            uid, _, counter = tap_of[index]
            del rows[index]
            results[index] = _rejected(
                index, str(events[index].event_id), [_replay(uid, counter)], None
            )
        new = list(rows.values())
        _flag(batch, new)
        for index, row in rows.items():
            accepted = results[index]
            assert accepted is not None
            accepted.flags = list(row.flags)
        uow.events.add_many(new)
        uow.devices.seen({row.device for row in new}, now)
        uow.commit()
    answers = [
        _repeat(results, index, repeats[index]) if r is None else r
        for index, r in enumerate(results)
    ]
    counts = {status: 0 for status in EventStatus}
    for result in answers:
        counts[result.status] += 1
    return EventBatchResult(
        accepted=counts[EventStatus.ACCEPTED],
        duplicates=counts[EventStatus.DUPLICATE],
        rejected=counts[EventStatus.REJECTED],
        results=answers,
    )


def _key(data: EventCreate) -> tuple[str, str]:
    return (data.gtin, data.serial)


def _replayed(uow: UnitOfWork, taps: Sequence[tuple[int, Tap]]) -> list[int]:
    """Advance the SUN counters of the accepted events' taps; the indexes whose counter was not.

    The first tap of each tag goes in one statement for the whole batch; a tag tapped again
    later in the batch (rare) is advanced after it, in the batch's order.
    """
    firsts: dict[tuple[bytes, int], tuple[int, Tap]] = {}
    later: list[tuple[int, Tap]] = []
    for index, tap in taps:
        if tap[:2] in firsts:
            later.append((index, tap))
        else:
            firsts[tap[:2]] = (index, tap)
    advanced = uow.counters.advance_many([tap for _, tap in firsts.values()])
    replayed = [index for key, (index, _) in firsts.items() if key not in advanced]
    replayed += [index for index, tap in later if not uow.counters.advance(*tap)]
    return sorted(replayed)


def _replay(uid: bytes, counter: int) -> Problem:
    return Problem(
        "replayed_counter",
        f"tag {uid.hex().upper()} counter {counter} is not above the last accepted one: a"
        " replayed or cloned SUN message (tag verdict: suspicious)",
    )


def _resent(index: int, event_id: str, digest: bytes, stored: CustodyEvent) -> EventResult:
    """The answer to an event id stored before: its first result, or a conflict."""
    if stored.digest != digest:
        return _conflict(index, event_id)
    return EventResult(
        index=index,
        event_id=event_id,
        status=EventStatus.DUPLICATE,
        flags=list(stored.flags),
        tag_verdict=stored.tag_verdict,
        received_at=as_utc(stored.received_at),
    )


def _repeat(results: Sequence[EventResult | None], index: int, first_index: int) -> EventResult:
    """An identical repeat within the batch: a duplicate of an accepted first, else its result."""
    first = results[first_index]
    assert first is not None
    status = EventStatus.DUPLICATE if first.status is EventStatus.ACCEPTED else first.status
    return first.model_copy(update={"index": index, "status": status})


def _conflict(index: int, event_id: str) -> EventResult:
    return _rejected(
        index,
        event_id,
        [
            Problem(
                "conflict",
                f"event {event_id} was sent before with different content: an event id names"
                " one event",
            )
        ],
        None,
    )


def _rejected(
    index: int, event_id: str, problems: Sequence[Problem], check: TagCheck | None
) -> EventResult:
    return EventResult(
        index=index,
        event_id=event_id,
        status=EventStatus.REJECTED,
        codes=[p.code for p in problems],
        reasons=[p.message for p in problems],
        tag_verdict=None if check is None else check.verdict,
    )


def _problems(
    batch: _Batch,
    organization_id: int,
    data: EventCreate,
    sig: Signed,
    max_skew_seconds: int,
    now: datetime,
) -> tuple[list[Problem], TagCheck | None, Tap | None]:
    """Every check of one event, in order (see the module docstring), and its SUN tap if any.

    The tap's counter is not advanced here: only once the whole batch is decided.
    """
    device = batch.devices.get(data.device)
    problems = _device_problems(data.device, device, organization_id, now)
    if sig.signer is None:
        problems.append(Problem("bad_signature", "the signature is malformed or unrecoverable"))
    elif sig.signer != to_canonical_address(data.device):
        problems.append(
            Problem("bad_signature", f"the signature was not made by device {data.device}")
        )
    if problems:
        return problems, None, None
    item = batch.items.get(_key(data))
    check = None
    tap = _DeferredTap()
    if item is None:
        problems.append(
            Problem("unknown_item", f"no item with GTIN {data.gtin} and serial {data.serial!r}")
        )
    else:
        check, tag_problems = _tag(batch, item, data, sig, tap)
        problems += tag_problems
    ahead = sig.event.event_time - now.timestamp()
    if ahead > max_skew_seconds:
        problems.append(
            Problem(
                "future_time",
                f"the event time is {ahead:.0f} s ahead of the server's clock; at most"
                f" {max_skew_seconds} s is allowed",
            )
        )
    return problems, check, tap.tap


def _device_problems(
    address: str, device: Device | None, organization_id: int, now: datetime
) -> list[Problem]:
    if device is None or device.organization_id != organization_id:
        # Another organization's device reads as unknown: whose it is is not disclosed.
        return [
            Problem("unknown_device", f"device {address} is not registered to your organization")
        ]
    if device.revoked_at is not None and as_utc(device.revoked_at) <= now:
        when = as_utc(device.revoked_at).isoformat()
        return [Problem("revoked_device", f"device {address} was revoked at {when}")]
    return []


def _tag(
    batch: _Batch, item: Item, data: EventCreate, sig: Signed, tap: _DeferredTap
) -> tuple[TagCheck | None, list[Problem]]:
    """The tag check with the item's supplier's trust material, and whether it names the item."""
    supplier = batch.organization(item.organization_id)
    evidence: Evidence
    if sig.uid and item.tag != TagKind.QR.value:
        evidence = ChipRead(item.tag, sig.uid, data.tag.url, sig.originality_signature)
    else:
        evidence = ScannedUrl(data.tag.url)
    needs_keys = item.tag == TagKind.NTAG424.value or is_sun_url(data.tag.url)
    epochs = batch.key_epochs(item.organization_id) if needs_keys else ()
    try:
        check = check_tag(evidence, Trust(supplier=supplier.address, key_epochs=epochs), tap)
    except ValueError as exc:
        return None, [Problem("tag_unverifiable", f"the tag cannot be checked: {exc}")]
    if check.verdict != AUTHENTIC:
        problems = [
            Problem(reason.code, f"tag {check.verdict or 'not verified'}: {reason.message}")
            for reason in check.reasons
        ]
        return check, problems or [Problem("tag_not_authentic", "the tag did not verify")]
    problems = []
    named = check.item
    if named is None or (named.gtin, named.serial) != (item.gtin, item.serial):
        what = "no item" if named is None else f"GTIN {named.gtin} serial {named.serial!r}"
        problems.append(Problem("tag_item_mismatch", f"the tag names {what}, not this event's"))
    uid = check.uid.hex().upper() if check.uid is not None else None
    if uid != item.uid:
        problems.append(
            Problem(
                "tag_uid_mismatch",
                f"the tag's chip UID is {uid or 'none'}, the item's is {item.uid or 'none'}",
            )
        )
    return check, problems


def _row(
    item: Item,
    organization_id: int,
    party: str,
    sig: Signed,
    check: TagCheck | None,
    now: datetime,
    data: EventCreate,
) -> NewCustodyEvent:
    assert item.id is not None and check is not None
    return new_custody_event(
        sig.event,
        item_id=item.id,
        organization_id=organization_id,
        party=party,
        tag_url=data.tag.url,
        tag_uid=sig.uid,
        tag_originality_signature=sig.originality_signature,
        signature=sig.signature,
        digest=sig.digest,
        salt=os.urandom(SALT_BYTES),
        tag_verdict=check.verdict or "",
        tag_codes=list(check.codes),
        flags=[],
        received_at=now,
    )


def _flag(batch: _Batch, new: Sequence[NewCustodyEvent]) -> None:
    """Fill each new event's flags from the custody rules over its item's whole history.

    Only the new events' flags are stored: an earlier event keeps what was found when it
    arrived.
    """
    if not new:
        return
    # Every item's history starts with its stored, supplier-signed commissioning event.
    history: dict[int, list[custody_rules.Event]] = {row.item_id: [] for row in new}
    for step in batch.uow.events.steps_for_items(history):
        history[step.item_id].append(_rule_event(step, step.id))
    by_id = {}
    for arrival, row in enumerate(new, start=2**62):
        history[row.item_id].append(_rule_event(row, arrival))
        by_id[row.event_id] = row
    for events in history.values():
        for flag in custody_rules.custody(events).flags:
            if flag.event_id in by_id:
                by_id[flag.event_id].flags.append(flag.code)


def _rule_event(row: EventStep | NewCustodyEvent, arrival: int) -> custody_rules.Event:
    return custody_rules.Event(
        event_id=row.event_id,
        biz_step=row.biz_step,
        party=row.party,
        event_time=row.event_time,
        arrival=arrival,
        from_party=None if row.from_party == eip712.ZERO_ADDRESS else row.from_party,
        to_party=None if row.to_party == eip712.ZERO_ADDRESS else row.to_party,
    )
