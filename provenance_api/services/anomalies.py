"""Anomaly rules: what a copied code, a replayed tap or a stolen item leaves in its history.

Pure: no I/O; the history, the recent scans, the time and the thresholds are arguments.

A QR label or an NTAG 21x URL can be copied exactly, and a SUN URL can be harvested: the tag
check alone cannot tell the copy from the original, what happened around it can. Each rule
returns findings: a stable code, a sentence a buyer can act on, and the verdict it implies
(`suspicious` or `counterfeit`). Positions are RFC 5870 `geo:` URIs ("geo:48.2082,16.3738"),
in a custody event's read point or given by the scanning phone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

AUTHENTIC = "authentic"
SUSPICIOUS = "suspicious"
COUNTERFEIT = "counterfeit"
UNVERIFIABLE = "unverifiable"

# Worst first: the verdict of a check is the worst of its tag's and its findings'.
_SEVERITY = {AUTHENTIC: 0, SUSPICIOUS: 1, UNVERIFIABLE: 2, COUNTERFEIT: 3}

SOLD = frozenset({"retail_selling", "point_of_sale", "sold"})
IN_CHAIN_KINDS = frozenset({"carrier", "warehouse"})
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True, slots=True)
class Finding:
    """Something in the item's history a person can act on: code, sentence, implied verdict."""

    code: str
    message: str
    verdict: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The rules' limits; the defaults suit a small brand (config: ANOMALY_*)."""

    max_speed_kmh: float = 900.0  # an airliner: faster than this, two copies were scanned
    travel_slack_km: float = 50.0  # city-level positions are this rough: never flag closer
    resale_scanners: int = 5  # distinct phones after the sale before it looks copied
    resale_scans: int = 200  # scans after the sale before it looks copied
    scan_window_days: int = 90  # how far back recent scans are read


@dataclass(frozen=True, slots=True)
class Sighting:
    """The item seen somewhere: a custody event (scanner None) or a buyer's scan."""

    at: datetime
    place: str | None = None
    position: tuple[float, float] | None = None
    scanner: str | None = None


def parse_geo(text: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) from a `geo:lat,lon[,alt][;params]` URI; None if it is not one.

    >>> parse_geo("geo:48.2082,16.3738;u=30"), parse_geo("urn:epc:id:sgln:1.2.0")
    ((48.2082, 16.3738), None)
    """
    if not text or not text.lower().startswith("geo:"):
        return None
    coordinates = text[4:].split(";")[0].split(",")
    try:
        lat, lon = float(coordinates[0]), float(coordinates[1])
    except (IndexError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat + lon):
        return None
    return lat, lon


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def verdict(tag_verdict: str, findings: Iterable[Finding]) -> str:
    """The worst of the tag's verdict and the findings'."""
    return max([tag_verdict, *(f.verdict for f in findings)], key=_SEVERITY.__getitem__)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _where(sighting: Sighting) -> str:
    if sighting.place:
        return sighting.place
    if sighting.position:
        return f"{sighting.position[0]:.2f}, {sighting.position[1]:.2f}"
    return "an unknown place"


# --- the rules --------------------------------------------------------------------------


def ghost_serial(gtin: str, serial: str, product_name: str) -> list[Finding]:
    """A serial its maker never issued: no genuine item carries it."""
    return [
        Finding(
            "ghost_serial",
            f"{product_name} serial {serial} (GTIN {gtin}) was never issued by its maker:"
            " this code is counterfeit",
            COUNTERFEIT,
        )
    ]


def signed_by_other_key(signer: str | None, supplier: str, supplier_name: str) -> list[Finding]:
    """A label whose signature is valid but made with a key that is not its supplier's."""
    if signer is None or signer.lower() == supplier.lower():
        return []
    return [
        Finding(
            "signed_by_other_key",
            f"this label was signed with a key that is not {supplier_name}'s: it was not"
            " issued by the maker",
            COUNTERFEIT,
        )
    ]


def bound_to_other_item(uid: str | None, item_uid: str | None, other: str | None) -> list[Finding]:
    """A chip whose UID is not this item's (`other` names the item it belongs to, if any)."""
    if uid is None or uid == item_uid:
        return []
    whose = f"another item ({other})" if other else "no item of this maker"
    return [
        Finding(
            "tag_bound_to_other_item",
            f"this chip belongs to {whose}, not to this one: the tag was moved or copied",
            COUNTERFEIT,
        )
    ]


def counter_rule(counter: int | None, last: int | None) -> list[Finding]:
    """A SUN counter must rise at every tap: equal is a replay, lower a clone or a replay."""
    if counter is None or last is None or counter > last:
        return []
    if counter == last:
        code, what = "counter_repeated", f"repeats the last accepted tap ({last})"
    else:
        code, what = "counter_went_back", f"is below the last accepted tap ({last})"
    return [
        Finding(
            code,
            f"this tap's counter ({counter}) {what}: the link was recorded from an earlier tap"
            " and replayed, or the chip was cloned; tap the chip itself again",
            SUSPICIOUS,
        )
    ]


def impossible_travel(
    now: Sighting, earlier: Sequence[Sighting], thresholds: Thresholds
) -> list[Finding]:
    """The same serial in two places farther apart than travel allows in the time between.

    Only the fastest implied journey is reported (one finding at most).
    """
    if now.position is None:
        return []
    worst: tuple[float, Sighting, float] | None = None
    for seen in earlier:
        if seen.position is None:
            continue
        km = distance_km(now.position, seen.position)
        if km <= thresholds.travel_slack_km:
            continue
        hours = abs((now.at - seen.at).total_seconds()) / 3600
        speed = km / hours if hours > 0 else math.inf
        if speed > thresholds.max_speed_kmh and (worst is None or speed > worst[0]):
            worst = (speed, seen, km)
    if worst is None:
        return []
    _, seen, km = worst
    minutes = abs((now.at - seen.at).total_seconds()) / 60
    return [
        Finding(
            "impossible_travel",
            f"this code was also seen in {_where(seen)} {minutes:.0f} minutes"
            f" {'before' if seen.at <= now.at else 'after'}, {km:.0f} km from here: one item"
            f" cannot travel that fast (over {thresholds.max_speed_kmh:.0f} km/h), so the code"
            " has been copied",
            SUSPICIOUS,
        )
    ]


def still_in_supply_chain(
    custodian: str | None, custodian_kind: str | None, in_transit_to: str | None
) -> list[Finding]:
    """A buyer's scan of an item that custody says is in a warehouse or on a truck."""
    if in_transit_to is not None:
        where = f"on its way to {in_transit_to}"
    elif custodian is not None and custodian_kind in IN_CHAIN_KINDS:
        where = f"held by {custodian} (a {custodian_kind})"
    else:
        return []
    return [
        Finding(
            "still_in_supply_chain",
            f"our records say this item is still {where}, not in a shop: if you are holding"
            " it, its code may have been copied or the item diverted",
            SUSPICIOUS,
        )
    ]


def first_verified(sold_at: datetime | None, scans: Sequence[Sighting]) -> Sighting | None:
    """The first buyer scan after the sale (after commissioning when there is no sale)."""
    for scan in sorted(scans, key=lambda s: s.at):
        if scan.scanner is not None and (sold_at is None or scan.at >= sold_at):
            return scan
    return None


def scanned_after_sale(
    sold_at: datetime | None, scans: Sequence[Sighting], thresholds: Thresholds
) -> list[Finding]:
    """Scanned after its sale by many distinct phones, or too often: copies of its code.

    `scans` includes the current one. Its owner scanning it again and again is one phone.
    """
    if sold_at is None:
        return []
    after = sorted((s for s in scans if s.scanner is not None and s.at >= sold_at), key=_at)
    if not after:
        return []
    first = after[0]
    since = f"since it was sold on {_day(sold_at)} (first verified on {_day(first.at)} in" + (
        f" {_where(first)})"
    )
    phones = len({s.scanner for s in after})
    if phones > thresholds.resale_scanners:
        return [
            Finding(
                "many_scanners_after_sale",
                f"this code has been checked by {phones} different phones {since}: genuine"
                " items are rarely checked by so many people, so it may be a copy",
                SUSPICIOUS,
            )
        ]
    if len(after) > thresholds.resale_scans:
        return [
            Finding(
                "scanned_too_often",
                f"this code has been checked {len(after)} times {since}: it may be a copy",
                SUSPICIOUS,
            )
        ]
    return []


def _at(sighting: Sighting) -> datetime:
    return sighting.at


_STATUS = {
    "recalled": (SUSPICIOUS, "its maker recalled this item on {day}: {reason}; do not use it"),
    "stolen": (SUSPICIOUS, "this item was reported stolen on {day}: {reason}"),
    "destroyed": (
        COUNTERFEIT,
        "this item was reported destroyed on {day} ({reason}): whatever carries its code now"
        " is not the original",
    ),
}


def status_rule(status: str, reason: str | None, at: datetime | None) -> list[Finding]:
    """Recalled, reported stolen or destroyed by its supplier."""
    if status not in _STATUS:
        return []
    implied, template = _STATUS[status]
    day = _day(at) if at is not None else "an unknown date"
    text = template.format(day=day, reason=reason or "no reason given")
    return [Finding(f"item_{status}", text, implied)]
