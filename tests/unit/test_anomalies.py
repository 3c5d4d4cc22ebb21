"""The anomaly rules, one by one, with the sentences a buyer reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provenance_api.services import anomalies
from provenance_api.services.anomalies import Finding, Sighting, Thresholds

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BERLIN = (52.52, 13.405)
POTSDAM = (52.39, 13.065)
MADRID = (40.4168, -3.7038)
SUPPLIER = "0x" + "aa" * 20


def one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_ghost_serial_is_counterfeit():
    found = one(anomalies.ghost_serial("09506000134352", "X9", "Tea"))
    assert (found.code, found.verdict) == ("ghost_serial", "counterfeit")
    assert found.message == (
        "Tea serial X9 (GTIN 09506000134352) was never issued by its maker: this code is"
        " counterfeit"
    )


def test_a_label_signed_by_another_key_is_counterfeit():
    found = one(anomalies.signed_by_other_key("0x" + "bb" * 20, SUPPLIER, "Acme"))
    assert (found.code, found.verdict) == ("signed_by_other_key", "counterfeit")
    assert "signed with a key that is not Acme's" in found.message
    assert anomalies.signed_by_other_key(SUPPLIER.upper().replace("0X", "0x"), SUPPLIER, "A") == []
    assert anomalies.signed_by_other_key(None, SUPPLIER, "Acme") == []


def test_a_chip_bound_to_another_item():
    found = one(anomalies.bound_to_other_item("04AA", "04BB", "09506000134352/S2"))
    assert found.code == "tag_bound_to_other_item"
    assert found.message.startswith("this chip belongs to another item (09506000134352/S2)")
    assert "no item of this maker" in one(anomalies.bound_to_other_item("04AA", None, None)).message
    assert anomalies.bound_to_other_item("04AA", "04AA", None) == []


@pytest.mark.parametrize(
    ("counter", "last", "code", "what"),
    [
        (7, 7, "counter_repeated", "repeats the last accepted tap (7)"),
        (5, 7, "counter_went_back", "is below the last accepted tap (7)"),
    ],
)
def test_a_sun_counter_that_does_not_rise(counter, last, code, what):
    found = one(anomalies.counter_rule(counter, last))
    assert (found.code, found.verdict) == (code, "suspicious")
    assert found.message == (
        f"this tap's counter ({counter}) {what}: the link was recorded from an earlier tap and"
        " replayed, or the chip was cloned; tap the chip itself again"
    )


def test_a_rising_counter_or_a_first_tap_is_fine():
    assert anomalies.counter_rule(8, 7) == []
    assert anomalies.counter_rule(1, None) == []


def test_parse_geo():
    assert anomalies.parse_geo("geo:52.52,13.405") == BERLIN
    assert anomalies.parse_geo("GEO:52.52,13.405,34;u=20") == BERLIN
    for bad in (None, "", "dock 1", "geo:", "geo:91,0", "geo:a,b", "geo:nan,1"):
        assert anomalies.parse_geo(bad) is None


def test_distance():
    assert 1860 < anomalies.distance_km(BERLIN, MADRID) < 1880


def test_two_places_farther_apart_than_travel_allows():
    berlin = Sighting(T0, "Berlin", BERLIN, "phone-a")
    madrid = Sighting(T0 + timedelta(minutes=40), "Madrid", MADRID, "phone-b")
    found = one(anomalies.impossible_travel(madrid, [berlin], Thresholds()))
    assert (found.code, found.verdict) == ("impossible_travel", "suspicious")
    assert found.message == (
        "this code was also seen in Berlin 40 minutes before, 1869 km from here: one item"
        " cannot travel that fast (over 900 km/h), so the code has been copied"
    )


def test_travel_that_is_possible_or_close_by_is_not_flagged():
    berlin = Sighting(T0, "Berlin", BERLIN)
    flight = Sighting(T0 + timedelta(hours=3), "Madrid", MADRID)
    assert anomalies.impossible_travel(flight, [berlin], Thresholds()) == []
    # Berlin to Potsdam (about 27 km) at once: within the slack of city-level positions.
    nearby = Sighting(T0 + timedelta(seconds=1), "Potsdam", POTSDAM)
    assert anomalies.impossible_travel(nearby, [berlin], Thresholds()) == []
    assert anomalies.impossible_travel(Sighting(T0), [berlin], Thresholds()) == []
    stricter = Thresholds(max_speed_kmh=100)
    assert one(anomalies.impossible_travel(flight, [berlin], stricter)).code == "impossible_travel"


def test_a_buyer_scan_while_custody_says_warehouse_or_truck():
    truck = one(anomalies.still_in_supply_chain("Acme", "supplier", "FastFreight"))
    assert truck.message == (
        "our records say this item is still on its way to FastFreight, not in a shop: if you"
        " are holding it, its code may have been copied or the item diverted"
    )
    held = one(anomalies.still_in_supply_chain("Depot", "warehouse", None))
    assert "still held by Depot (a warehouse)" in held.message
    assert anomalies.still_in_supply_chain("Corner shop", "retailer", None) == []
    assert anomalies.still_in_supply_chain("Acme", "supplier", None) == []


def test_many_phones_after_the_sale():
    sold = T0
    scans = [
        Sighting(T0 + timedelta(days=1, hours=n), "Vienna" if n == 0 else None, None, f"p{n}")
        for n in range(6)
    ]
    found = one(anomalies.scanned_after_sale(sold, scans, Thresholds()))
    assert (found.code, found.verdict) == ("many_scanners_after_sale", "suspicious")
    assert found.message == (
        "this code has been checked by 6 different phones since it was sold on 2026-12-01"
        " (first verified on 2026-12-02 in Vienna): genuine items are rarely checked by so"
        " many people, so it may be a copy"
    )
    assert anomalies.scanned_after_sale(sold, scans[:5], Thresholds()) == []


def test_one_owner_scanning_again_and_again_is_not_flagged_until_too_often():
    scans = [Sighting(T0 + timedelta(minutes=n), None, None, "owner") for n in range(1, 50)]
    assert anomalies.scanned_after_sale(T0, scans, Thresholds()) == []
    found = one(anomalies.scanned_after_sale(T0, scans, Thresholds(resale_scans=10)))
    assert found.code == "scanned_too_often"
    assert found.message.startswith("this code has been checked 49 times since it was sold on")


def test_scans_before_the_sale_or_without_one_do_not_count():
    scans = [Sighting(T0 - timedelta(hours=n), None, None, f"p{n}") for n in range(1, 20)]
    assert anomalies.scanned_after_sale(T0, scans, Thresholds()) == []
    assert anomalies.scanned_after_sale(None, scans, Thresholds()) == []


def test_first_verified_after_the_sale():
    before = Sighting(T0 - timedelta(hours=1), "Depot", None, "staff")
    first = Sighting(T0 + timedelta(hours=1), "Graz", None, "buyer")
    later = Sighting(T0 + timedelta(hours=2), "Linz", None, "someone")
    assert anomalies.first_verified(T0, [later, first, before]) == first
    assert anomalies.first_verified(None, [later, first, before]) == before


@pytest.mark.parametrize(
    ("status", "verdict", "message"),
    [
        (
            "recalled",
            "suspicious",
            "its maker recalled this item on 2026-12-01: batch contaminated; do not use it",
        ),
        ("stolen", "suspicious", "this item was reported stolen on 2026-12-01: batch contaminated"),
        (
            "destroyed",
            "counterfeit",
            "this item was reported destroyed on 2026-12-01 (batch contaminated): whatever"
            " carries its code now is not the original",
        ),
    ],
)
def test_status_set_by_the_supplier(status, verdict, message):
    found = one(anomalies.status_rule(status, "batch contaminated", T0))
    assert (found.code, found.verdict, found.message) == (f"item_{status}", verdict, message)


def test_an_active_item_has_no_status_finding():
    assert anomalies.status_rule("active", None, None) == []


def test_the_verdict_is_the_worst():
    suspicious = Finding("x", "x", "suspicious")
    counterfeit = Finding("y", "y", "counterfeit")
    assert anomalies.verdict("authentic", []) == "authentic"
    assert anomalies.verdict("authentic", [suspicious]) == "suspicious"
    assert anomalies.verdict("suspicious", [counterfeit]) == "counterfeit"
    assert anomalies.verdict("unverifiable", [suspicious]) == "unverifiable"
