"""The one tag check: tag evidence and trust material in, a verdict with its reasons out.

Pure: no I/O; keys are arguments, and replay is checked through the caller's counter
store (a port: `CounterStore`). The CLI, the API and the reader agent all call `check_tag`.

Verdicts (DESIGN.md "Tags"):

- ``authentic``: every check passed and the item (GTIN, serial) is authenticated.
- ``suspicious``: the tag is valid but something is off: a replayed or exhausted SUN
  counter, or a SUN tap whose MAC does not cover the item it names.
- ``counterfeit``: a bad signature or MAC, damaged SUN parameters, a chip that is not
  NXP's or not the one the tag names, a UID the supplier's keys refuse.
- ``signature_valid``: an NTAG 21x URL checked without its chip. The supplier signed it,
  but a URL can be copied exactly; only the chip in a reader's field (or scan history)
  shows that this is the original tag.
- None: a chip was read, but no trust material was given to decide with.

A check only reports a GTIN and serial that are authenticated (`TagCheck.item`): signed
by the supplier, or under a SUN MAC that covers the GS1 path, or bound to the chip UID by
the supplier's signature the caller supplies. What a URL names without that is reported
apart, as `unverified_item`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from firmware_tools.chips.ntag424.sun import KeyEpoch, SunResult, gs1_path_start, verify_sun_url
from firmware_tools.chips.originality import NXP_424_PUBLIC_KEY, NXP_NTAG21X_PUBLIC_KEY
from firmware_tools.errors import (
    BadOriginality,
    CounterExhausted,
    FormatError,
    GS1Error,
    InvalidTag,
    MalformedSun,
)
from firmware_tools.formats.gs1 import DigitalLink, parse_digital_link

__all__ = [
    "AUTHENTIC",
    "COUNTERFEIT",
    "NTAG21X",
    "NTAG424",
    "SIGNATURE_VALID",
    "SUSPICIOUS",
    "ChipRead",
    "CounterStore",
    "InMemoryCounterStore",
    "Item",
    "KeyEpoch",
    "Reason",
    "ScannedUrl",
    "TagCheck",
    "Trust",
    "check_tag",
    "is_sun_url",
]

AUTHENTIC = "authentic"
SUSPICIOUS = "suspicious"
COUNTERFEIT = "counterfeit"
SIGNATURE_VALID = "signature_valid"

NTAG21X = "ntag21x"
NTAG424 = "ntag424"

SUN_PARAMETERS = ("picc_data", "cmac")
GENUINE_NXP_UID = "genuine NXP chip UID (originality signature valid)"


# --- what goes in ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannedUrl:
    """A URL scanned from a QR label or tapped from a tag; the chip is not in a reader."""

    url: str


@dataclass(frozen=True, slots=True)
class ChipRead:
    """What a reader read from the chip in its field: UID, NDEF URL, originality signature."""

    family: str  # NTAG21X or NTAG424
    uid: bytes
    url: str
    originality_signature: bytes
    chip: str | None = None  # e.g. "NTAG215", for the report


Evidence = ScannedUrl | ChipRead


@dataclass(frozen=True)
class Trust:
    """What a verifier trusts: the supplier's address, its SUN key epochs, NXP's keys.

    `uid_binding` is the supplier's signature (base64url, as in a label's ``sig``) over
    the GTIN, serial and chip UID of an NTAG 424 DNA item, for taps whose MAC does not
    cover the URL (see the module docstring); it needs `supplier`.
    """

    supplier: str | None = None
    key_epochs: tuple[KeyEpoch, ...] = ()
    uid_binding: str | None = None
    ntag21x_public_key: bytes = NXP_NTAG21X_PUBLIC_KEY
    ntag424_public_key: bytes = NXP_424_PUBLIC_KEY


class CounterStore(Protocol):
    """The last accepted SUN counter per (chip UID, key epoch): the replay check's port."""

    def advance(self, uid: bytes, key_epoch: int, counter: int) -> bool:
        """Atomically store `counter` if it is above the last one stored; True if it was."""
        ...


class InMemoryCounterStore:
    """A `CounterStore` in memory, for offline use and tests.

    `last_counter` stands for every tag not yet seen (the CLI's ``--last-counter``).
    """

    def __init__(self, last_counter: int | None = None) -> None:
        self._default = -1 if last_counter is None else last_counter
        self._last: dict[tuple[bytes, int], int] = {}
        self._lock = threading.Lock()

    def advance(self, uid: bytes, key_epoch: int, counter: int) -> bool:
        key = (bytes(uid), key_epoch)
        with self._lock:
            if counter <= self._last.get(key, self._default):
                return False
            self._last[key] = counter
            return True

    def last(self, uid: bytes, key_epoch: int) -> int | None:
        """The last accepted counter of (uid, key_epoch), if any."""
        with self._lock:
            return self._last.get((bytes(uid), key_epoch))


# --- what comes out -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a tag is not authentic: a stable code for machines and a sentence for people."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Item:
    """A GS1 item: GTIN-14 and serial, with the lot, expiry and variant when known."""

    gtin: str
    serial: str
    lot: str | None = None
    expiry: str | None = None
    variant: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "gtin": self.gtin,
            "serial": self.serial,
            "lot": self.lot,
            "expiry": self.expiry,
            "variant": self.variant,
        }


@dataclass(frozen=True)
class TagCheck:
    """The outcome of one check; `item` is set only when the item is authenticated."""

    verdict: str | None
    kind: str
    reasons: tuple[Reason, ...] = ()
    findings: tuple[str, ...] = ()
    item: Item | None = None
    unverified_item: Item | None = None
    uid: bytes | None = None
    counter: int | None = None
    key_epoch: int | None = None
    signer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == AUTHENTIC

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready report; ``gtin`` and ``serial`` are the authenticated ones or null."""
        item = self.item.as_dict() if self.item is not None else dict.fromkeys(Item.__slots__)
        return {
            "verdict": self.verdict,
            "kind": self.kind,
            "reasons": [reason.message for reason in self.reasons],
            "codes": list(self.codes),
            "findings": list(self.findings),
            **item,
            "unverified": None if self.unverified_item is None else self.unverified_item.as_dict(),
            "uid": None if self.uid is None else self.uid.hex().upper(),
            "counter": self.counter,
            "key_epoch": self.key_epoch,
            "signer": self.signer,
            **self.extra,
        }


# --- the check ------------------------------------------------------------------------


def is_sun_url(url: str) -> bool:
    """Whether the query names a SUN parameter (picc_data or cmac), even a damaged one.

    >>> is_sun_url("https://x/01/1/21/2?picc_data=00&cmac=00"), is_sun_url("https://x/?sig=a")
    (True, False)
    """
    query = url.partition("?")[2].partition("#")[0]
    return any(pair.partition("=")[0] in SUN_PARAMETERS for pair in query.split("&"))


def check_tag(evidence: Evidence, trust: Trust, counters: CounterStore | None = None) -> TagCheck:
    """Check one tag; never raises for a bad tag, only for missing trust material.

    Raises ValueError when the evidence needs trust material that `trust` lacks (a SUN
    URL without key epochs, a label without a supplier) or a public key is malformed.
    `counters`, when given, is advanced by every SUN tap whose MAC verifies; a counter not
    above the stored one makes the tap suspicious (a replay or a clone).
    """
    if isinstance(evidence, ChipRead):
        if evidence.family == NTAG21X:
            return _ntag21x_read(evidence, trust)
        if evidence.family == NTAG424:
            return _ntag424_read(evidence, trust, counters)
        raise ValueError(f"unknown chip family {evidence.family!r}")
    url = evidence.url
    if is_sun_url(url):
        if not trust.key_epochs:
            raise ValueError("a SUN URL needs the supplier's SUN key epochs")
        return _sun(url, trust, counters)
    if trust.supplier is None:
        raise ValueError("a signed label needs the supplier's address")
    return _label(url, trust.supplier)


def _verdict(reasons: list[Reason], suspicious_codes: frozenset[str] = frozenset()) -> str:
    if not reasons:
        return AUTHENTIC
    if all(reason.code in suspicious_codes for reason in reasons):
        return SUSPICIOUS
    return COUNTERFEIT


def _link(url: str) -> DigitalLink | None:
    try:
        return parse_digital_link(url)
    except GS1Error:
        return None


def _item(link: DigitalLink, *, with_expiry: bool = True) -> Item:
    expiry = link.expiry if with_expiry else None
    return Item(link.gtin, link.serial, link.lot, expiry, link.variant)


# --- signed labels (QR, NTAG 21x) -----------------------------------------------------


def _label(url: str, supplier: str) -> TagCheck:
    # Imported when needed: the label library loads secp256k1 and keccak (about 200 ms),
    # which a verifier of SUN taps alone never uses.
    from firmware_tools.formats.qr import check_label, verify_label_url

    link = _link(url)
    if link is not None and link.param("uid") is not None:
        return _ntag21x_url(link, supplier)
    check = verify_label_url(url, supplier) if link is None else check_label(link, supplier)
    if check.ok:
        assert link is not None
        return TagCheck(AUTHENTIC, "qr_label", item=_item(link), signer=check.signer)
    reasons = tuple(Reason(c, m) for c, m in zip(check.codes, check.reasons, strict=True))
    return TagCheck(
        COUNTERFEIT,
        "qr_label",
        reasons,
        unverified_item=None if link is None else _item(link),
        signer=check.signer,
    )


# Plain sentences for the codes of `verify_ntag21x`, whose findings hold the details.
_NTAG21X_SENTENCES = {
    "bad_originality_signature": "the NXP originality signature does not verify for this UID",
    "malformed_url": "the tag's URL is not a valid label URL",
    "missing_uid": "the URL names no chip UID",
    "uid_mismatch": "the label is bound to another chip than this one",
    "missing_signature": "the URL carries no supplier signature",
    "bad_signature": "the supplier's signature over the item and the chip UID does not verify",
}


def _ntag21x_reasons(codes: tuple[str, ...]) -> tuple[Reason, ...]:
    return tuple(Reason(code, _NTAG21X_SENTENCES.get(code, code)) for code in codes)


def _ntag21x_url(link: DigitalLink, supplier: str) -> TagCheck:
    """An NTAG 21x URL seen without its chip: only the supplier's UID-bound signature."""
    from firmware_tools.formats.qr import check_label

    check = check_label(link, supplier)
    if not check.ok:
        reasons = tuple(Reason(c, m) for c, m in zip(check.codes, check.reasons, strict=True))
        return TagCheck(
            COUNTERFEIT,
            "ntag21x_url",
            reasons,
            unverified_item=_item(link),
            uid=check.uid,
            signer=check.signer,
        )
    reason = Reason(
        "chip_not_checked",
        "the supplier's signature over the item and the chip UID is valid, but a URL can be"
        " copied: only the chip itself (`tag read`) or scan history shows this is the original",
    )
    return TagCheck(
        SIGNATURE_VALID,
        "ntag21x_url",
        (reason,),
        item=_item(link),
        uid=check.uid,
        signer=check.signer,
    )


def _ntag21x_read(read: ChipRead, trust: Trust) -> TagCheck:
    from firmware_tools.chips.ntag21x import verify_ntag21x
    from firmware_tools.chips.originality import is_original

    extra = {"chip": read.chip, "url": read.url, "originality_signature": _hex(read)}
    if trust.supplier is None:
        if is_original(read.uid, read.originality_signature, trust.ntag21x_public_key):
            return TagCheck(None, NTAG21X, findings=(GENUINE_NXP_UID,), uid=read.uid, extra=extra)
        return _not_nxp(NTAG21X, read, extra)
    check = verify_ntag21x(
        read.uid, read.url, read.originality_signature, trust.supplier, trust.ntag21x_public_key
    )
    link = _link(read.url)
    item = None if link is None else _item(link)
    return TagCheck(
        AUTHENTIC if check.ok else COUNTERFEIT,
        NTAG21X,
        _ntag21x_reasons(check.codes),
        check.findings,
        item=item if check.ok else None,
        unverified_item=None if check.ok else item,
        uid=read.uid,
        signer=check.signer,
        extra=extra,
    )


def _hex(read: ChipRead) -> str:
    return read.originality_signature.hex().upper()


def _not_nxp(kind: str, read: ChipRead, extra: dict[str, Any]) -> TagCheck:
    reason = Reason(
        BadOriginality.reason,
        f"the originality signature is not NXP's for UID {read.uid.hex().upper()}:"
        " not a genuine NXP chip",
    )
    return TagCheck(COUNTERFEIT, kind, (reason,), (reason.message,), uid=read.uid, extra=extra)


# --- NTAG 424 DNA SUN -----------------------------------------------------------------

_SUSPICIOUS_SUN = frozenset({"replayed_counter", "counter_exhausted", "item_not_authenticated"})


def _sun(url: str, trust: Trust, counters: CounterStore | None) -> TagCheck:
    link = _link(url)
    # SUN taps name the item in the path; what follows cmac is not under the MAC, so
    # the expiry (a query value) is not reported as authenticated.
    named = None if link is None else _item(link, with_expiry=False)
    path_start = None if link is None else gs1_path_start(url, link)
    try:
        result = verify_sun_url(url, trust.key_epochs, mac_input_start=path_start)
    except CounterExhausted as exc:
        reason = Reason(exc.reason, f"{exc}: the tag cannot prove a fresh tap any more")
        return TagCheck(SUSPICIOUS, "ntag424_sun", (reason,), unverified_item=named)
    except MalformedSun as exc:
        reason = Reason(exc.reason, f"damaged SUN parameters: {exc}")
        return TagCheck(COUNTERFEIT, "ntag424_sun", (reason,), unverified_item=named)
    except InvalidTag as exc:
        reason = Reason(exc.reason, str(exc))
        return TagCheck(COUNTERFEIT, "ntag424_sun", (reason,), unverified_item=named)

    reasons: list[Reason] = []
    findings = [f"SUN MAC valid under key epoch {result.key_epoch}"]
    item = None
    if path_start is not None and result.mac_input_start == path_start:
        item = named
        findings.append("the MAC covers the URL from the GS1 path: GTIN and serial authenticated")
    elif link is not None and trust.uid_binding is not None and trust.supplier is not None:
        bound = _uid_binding(link, result.uid, trust.uid_binding, trust.supplier)
        if bound is None:
            item = named
            findings.append("GTIN and serial bound to this UID by the supplier's signature")
        else:
            reasons.append(bound)
    elif link is None:
        reasons.append(
            Reason("item_not_authenticated", "the URL names no GS1 item (GTIN and serial)")
        )
    else:
        reasons.append(
            Reason(
                "item_not_authenticated",
                "the SUN MAC covers none of the URL's GS1 path (a tag personalized with the"
                " MAC over an empty input), so its GTIN and serial are not authenticated",
            )
        )
    if counters is not None and not counters.advance(result.uid, result.key_epoch, result.counter):
        reasons.append(
            Reason(
                "replayed_counter",
                f"tag {result.uid.hex().upper()} counter {result.counter} is not above the last"
                " accepted one: a replayed or cloned SUN message",
            )
        )
    return _sun_check(result, reasons, findings, item, named)


def _sun_check(
    result: SunResult,
    reasons: list[Reason],
    findings: list[str],
    item: Item | None,
    named: Item | None,
) -> TagCheck:
    return TagCheck(
        _verdict(reasons, _SUSPICIOUS_SUN),
        "ntag424_sun",
        tuple(reasons),
        tuple(findings),
        item=item,
        unverified_item=None if item is not None else named,
        uid=result.uid,
        counter=result.counter,
        key_epoch=result.key_epoch,
        extra={} if result.file_data is None else {"file_data": result.file_data.hex().upper()},
    )


def _uid_binding(link: DigitalLink, uid: bytes, signature: str, supplier: str) -> Reason | None:
    """None when the supplier signed this item (GTIN, serial, lot, variant) with this UID."""
    from contracts_abi.eip712 import label_digest
    from firmware_tools.formats.qr import address_bytes, decode_signature, recover_signer_bytes

    # The label struct with the UID the SUN message authenticated; no expiry, because a
    # SUN URL's query values are outside its MAC and the binding names what the MAC does.
    digest = label_digest(link.gtin, link.serial, uid, lot=link.lot, variant=link.variant)
    try:
        signer = recover_signer_bytes(digest, decode_signature(signature))
    except (InvalidTag, FormatError):
        signer = None
    if signer == address_bytes(supplier):
        return None
    return Reason(
        "bad_uid_binding",
        "the supplier's signature does not bind this URL's GTIN and serial to the tapped"
        f" chip UID {uid.hex().upper()}",
    )


def _ntag424_read(read: ChipRead, trust: Trust, counters: CounterStore | None) -> TagCheck:
    from firmware_tools.chips.originality import verify_originality_424

    extra = {
        "chip": read.chip or "NTAG 424 DNA",
        "url": read.url,
        "originality_signature": _hex(read),
    }
    # The signature proves NXP issued this UID, not that this chip is the original: a SUN
    # MAC under the supplier's keys and a rising counter are what a clone cannot produce.
    genuine = verify_originality_424(read.uid, read.originality_signature, trust.ntag424_public_key)
    findings = [GENUINE_NXP_UID] if genuine else []
    if not trust.key_epochs:
        if not genuine:
            return _not_nxp("ntag424_sun", read, extra)
        return TagCheck(None, "ntag424_sun", findings=tuple(findings), uid=read.uid, extra=extra)
    sun = _sun(read.url, trust, counters)
    reasons = list(sun.reasons)
    findings += sun.findings
    if sun.uid is not None and sun.uid != read.uid:
        reasons.append(
            Reason(
                "uid_mismatch",
                f"the SUN message names UID {sun.uid.hex().upper()}, not the chip in the field"
                f" ({read.uid.hex().upper()})",
            )
        )
    if not genuine:
        reasons += _not_nxp("ntag424_sun", read, extra).reasons
    verdict = _verdict(reasons, _SUSPICIOUS_SUN)
    item = sun.item if verdict != COUNTERFEIT else None
    return TagCheck(
        verdict,
        "ntag424_sun",
        tuple(reasons),
        tuple(findings),
        item=item,
        unverified_item=None if item is not None else (sun.item or sun.unverified_item),
        uid=read.uid,
        counter=sun.counter,
        key_epoch=sun.key_epoch,
        extra={**extra, **sun.extra},
    )
