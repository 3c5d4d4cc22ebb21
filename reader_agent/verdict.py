"""The local verdict at the dock door: good, warning or rejected, at once for every scan.

Pure: no I/O; the trust material (GTIN to supplier address, cached from the API) is an
argument. The tag library's `check_tag` decides; this module only maps its verdict to what
the operator sees and hears. The API checks every event again and has the last word:

- good: the supplier's signature (or the genuine NXP chip) checks out, or an NTAG 424 DNA
  tap of a known GTIN, whose SUN MAC only the API can check (the SUN keys stay there).
- warning: recorded, but look again: a GTIN not in the cache, a copyable NTAG 21x URL seen
  without its chip, a suspicious tag.
- rejected: not an item's tag at all (nothing is recorded), or a counterfeit (recorded, so
  that the API keeps the evidence and the reason shows in `status`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from firmware_tools.errors import GS1Error
from firmware_tools.formats.gs1 import parse_digital_link
from firmware_tools.verify import (
    AUTHENTIC,
    COUNTERFEIT,
    NTAG21X,
    NTAG424,
    ChipRead,
    ScannedUrl,
    Trust,
    check_tag,
    is_sun_url,
)
from reader_agent.reads import Read

GOOD, WARNING, REJECTED = "good", "warning", "rejected"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the operator is told at once; `record` is False when no event can be made."""

    level: str
    reasons: tuple[str, ...] = ()
    gtin: str | None = None
    serial: str | None = None
    record: bool = True


def unreadable(message: str) -> Verdict:
    """The verdict for a read that failed (bad characters, an over-long line): not recorded."""
    return Verdict(REJECTED, (f"unreadable tag: {message}",), record=False)


def local_verdict(read: Read, suppliers: Mapping[str, str]) -> Verdict:
    """The verdict for `read`, given each known GTIN's supplier address."""
    try:
        link = parse_digital_link(read.url)
    except GS1Error as exc:
        reason = f"not a GS1 Digital Link of a serialized item: {exc}"
        return Verdict(REJECTED, (reason,), record=False)
    gtin, serial = link.gtin, link.serial
    supplier = suppliers.get(gtin)
    if supplier is None:
        reason = f"GTIN {gtin} is not in the trust cache (an unknown product, or a stale cache)"
        return Verdict(WARNING, (reason,), gtin, serial)
    sun = is_sun_url(read.url)
    if read.uid and read.originality_signature:
        family = NTAG424 if sun else NTAG21X
        evidence: ChipRead | ScannedUrl = ChipRead(
            family, read.uid, read.url, read.originality_signature
        )
    elif sun:
        return Verdict(GOOD, ("SUN message: the API checks its MAC and counter",), gtin, serial)
    else:
        evidence = ScannedUrl(read.url)
    try:
        check = check_tag(evidence, Trust(supplier=supplier))
    except ValueError as exc:  # trust material this device cannot hold (SUN keys)
        return Verdict(WARNING, (f"not checked here: {exc}",), gtin, serial)
    reasons = tuple(reason.message for reason in check.reasons)
    if check.verdict == AUTHENTIC or (check.verdict is None and not reasons):
        return Verdict(GOOD, reasons or check.findings, gtin, serial)
    if check.verdict == COUNTERFEIT:
        return Verdict(REJECTED, reasons, gtin, serial)
    return Verdict(WARNING, reasons, gtin, serial)
