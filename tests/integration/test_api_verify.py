"""GET /v1/verify and the resolver: every verdict, with the reasons a buyer reads.

The tags are real: QR labels signed with the supplier's key as the API holds it, SUN URLs
from a tag keyed from the supplier's registered master key (tests/fakes/sun_tags.py).
"""

from __future__ import annotations

import pytest
from eth_account import Account

from firmware_tools.formats.qr import sign_label_url
from provenance_api.app import create_app
from provenance_api.schemas import Role
from tests.fakes.sun_tags import sun_url
from tests.integration.api_support import GTIN, make_api
from tests.integration.events_support import MASTER, make_world, serial_of, uid_of

HOST = "id.example.com"
BERLIN = "geo:52.52,13.405"
MADRID = "geo:40.4168,-3.7038"
VERIFY_URL = f"https://{HOST}/01/{GTIN}/21/S1"


@pytest.fixture(params=["sqlite", "fake", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    yield made
    made.app.extensions["provenance"].close()


def verify(api, url: str, phone: str = "phone-1", **where):
    """A buyer's check from phone `phone` (its User-Agent), without any key."""
    response = api.call(
        "GET", "/v1/verify", query_string={"url": url, **where}, headers={"User-Agent": phone}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def reasons(body) -> list[tuple[str, str]]:
    return [(r["code"], r["message"]) for r in body["reasons"]]


def codes(body) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def me(api, key: str) -> dict:
    return api.call("GET", "/v1/me", key).get_json()["organization"]


def qr_supplier(api, serials=("Q1",)) -> tuple[str, bytes]:
    """A supplier of Tea with QR-labelled items; its key, and the private key that signs."""
    key = api.key(Role.SUPPLIER, "Acme Tea")
    assert api.call("POST", "/v1/products", key, json={"gtin": GTIN, "name": "Tea"}).status_code
    rows = [{"gtin": GTIN, "serial": s, "tag": "qr"} for s in serials]
    if rows:
        assert api.call("POST", "/v1/items", key, json={"items": rows}).status_code == 200
    address = me(api, key)["address"]
    with api.uow() as uow:
        org = uow.organizations.by_address(address)
        sealed = org.encrypted_key
    return key, api.app.extensions["provenance"].keybox.open(sealed, address)


def test_a_genuine_qr_label(api):
    _, private = qr_supplier(api)
    body = verify(api, sign_label_url(private, HOST, GTIN, "Q1"))
    assert body["verdict"] == "authentic" and body["reasons"] == []
    assert (body["gtin"], body["serial"], body["status"]) == (GTIN, "Q1", "active")
    assert body["product"]["name"] == "Tea"
    assert body["supplier"]["name"] == "Acme Tea"
    assert body["owner"]["name"] == body["custodian"]["name"] == "Acme Tea"
    (step,) = body["history"]
    assert (step["biz_step"], step["party_name"], step["anchoring"]) == (
        "commissioning",
        "Acme Tea",
        "pending",
    )
    assert "tag_url" not in step  # a label URL shown to everyone could be printed again


def test_a_ghost_serial_is_counterfeit(api):
    _, private = qr_supplier(api)
    body = verify(api, sign_label_url(private, HOST, GTIN, "NEVER-ISSUED"))
    assert body["verdict"] == "counterfeit"
    assert reasons(body) == [
        (
            "ghost_serial",
            f"Tea serial NEVER-ISSUED (GTIN {GTIN}) was never issued by its maker: this code"
            " is counterfeit",
        )
    ]


def test_a_label_signed_by_another_key_is_counterfeit(api):
    key, _ = qr_supplier(api)
    forger = Account.create()
    body = verify(api, sign_label_url(bytes(forger.key), HOST, GTIN, "Q1"))
    assert body["verdict"] == "counterfeit"
    assert reasons(body) == [
        (
            "signed_by_other_key",
            "this label was signed with a key that is not Acme Tea's: it was not issued by"
            " the maker",
        )
    ]
    # The supplier sees the tag check's own causes; the public does not.
    scans = api.call("GET", f"/v1/items/{GTIN}/Q1/verifications", key).get_json()["scans"]
    assert scans[-1]["verdict"] == "counterfeit"
    assert scans[-1]["codes"] == ["signed_by_other_key"]
    assert scans[-1]["details"], "the tag check's detailed causes"


def test_an_unknown_product_is_unverifiable_not_counterfeit(api):
    body = verify(api, sign_label_url(Account.create().key, HOST, GTIN, "Q1"))
    assert body["verdict"] == "unverifiable"
    assert codes(body) == ["unknown_product"]
    assert "this says nothing about whether it is genuine" in body["reasons"][0]["message"]


def test_a_copied_qr_label_seen_in_two_far_apart_places(api):
    _, private = qr_supplier(api)
    url = sign_label_url(private, HOST, GTIN, "Q1")
    first = verify(api, url, "phone-berlin", geo=BERLIN, place="Berlin")
    assert first["verdict"] == "authentic"
    second = verify(api, url, "phone-madrid", geo=MADRID, place="Madrid")
    assert second["verdict"] == "suspicious"
    ((code, message),) = reasons(second)
    assert code == "impossible_travel"
    assert message.startswith("this code was also seen in Berlin 0 minutes before, 1869 km")
    assert message.endswith(
        "one item cannot travel that fast (over 900 km/h), so the code has been copied"
    )


def test_a_recalled_item_then_active_again(api):
    key, private = qr_supplier(api)
    url = sign_label_url(private, HOST, GTIN, "Q1")
    recall = {"status": "recalled", "reason": "batch 7 contaminated"}
    set_ = api.call("POST", f"/v1/items/{GTIN}/Q1/status", key, json=recall)
    assert set_.status_code == 200, set_.get_json()
    assert set_.get_json()["status"] == "recalled"
    got = api.call("GET", f"/v1/items/{GTIN}/Q1/status", key).get_json()
    assert (got["status"], got["reason"]) == ("recalled", "batch 7 contaminated")
    body = verify(api, url)
    assert (body["verdict"], body["status"]) == ("suspicious", "recalled")
    ((code, message),) = reasons(body)
    assert code == "item_recalled"
    assert message.startswith("its maker recalled this item on ")
    assert message.endswith(": batch 7 contaminated; do not use it")
    active = {"status": "active", "reason": "recall lifted"}
    assert api.call("POST", f"/v1/items/{GTIN}/Q1/status", key, json=active).status_code == 200
    assert verify(api, url)["verdict"] == "authentic"


def test_only_the_items_supplier_sets_its_status(api):
    qr_supplier(api)
    rival = api.key(Role.SUPPLIER)
    body = {"status": "stolen", "reason": "not mine"}
    assert api.call("POST", f"/v1/items/{GTIN}/Q1/status", rival, json=body).status_code == 404
    assert api.call("POST", f"/v1/items/{GTIN}/Q1/status", json=body).status_code == 401


def test_a_genuine_ntag424_tap_and_its_replay(api):
    world = make_world(api, items=1)
    url = world.tap(1)
    body = verify(api, url)
    assert (body["verdict"], body["tag_kind"], body["reasons"]) == ("authentic", "ntag424_sun", [])
    replay = verify(api, url, "phone-2")
    assert replay["verdict"] == "suspicious"
    assert reasons(replay) == [
        (
            "counter_repeated",
            "this tap's counter (1) repeats the last accepted tap (1): the link was recorded"
            " from an earlier tap and replayed, or the chip was cloned; tap the chip itself"
            " again",
        )
    ]
    scans = api.call("GET", f"/v1/items/{GTIN}/{serial_of(1)}/verifications", world.supplier)
    assert [s["details"][-1]["message"] for s in scans.get_json()["scans"]] == [
        f"chip {uid_of(1).hex().upper()}, key epoch 1, counter 1, last accepted none",
        f"chip {uid_of(1).hex().upper()}, key epoch 1, counter 1, last accepted 1",
    ]
    older = verify(api, world.tap(1, counter=1))  # a fresh message, but an older counter
    assert codes(older) == ["counter_repeated"]
    assert verify(api, world.tap(1))["verdict"] == "authentic"


def test_the_detailed_causes_are_for_the_supplier_and_operators_only(api):
    world = make_world(api, items=1)
    url = world.tap(1)
    verify(api, url)
    replay = verify(api, url, "phone-2")
    assert all("key epoch" not in reason["message"] for reason in replay["reasons"])
    path = f"/v1/items/{GTIN}/{serial_of(1)}/verifications"
    operator = api.call("GET", path, api.key(Role.OPERATOR))
    assert operator.status_code == 200
    assert operator.get_json()["scans"][-1]["details"][-1]["message"] == (
        f"chip {uid_of(1).hex().upper()}, key epoch 1, counter 1, last accepted 1"
    )
    assert api.call("GET", path, api.key(Role.SUPPLIER)).status_code == 404
    assert api.call("GET", path, api.key(Role.RETAILER)).status_code == 403
    assert api.call("GET", path).status_code == 401


def test_a_buyer_tap_consumes_the_counter_a_device_would_use(api):
    world = make_world(api, items=1)
    url = world.tap(1)
    assert verify(api, url)["verdict"] == "authentic"
    event = world.event(1, tag={"url": url})
    result = world.post([event]).get_json()["results"][0]
    assert (result["status"], result["codes"]) == ("rejected", ["replayed_counter"])


def test_an_ntag424_item_without_sun_keys_is_unverifiable(api):
    key = api.key(Role.SUPPLIER, "Keyless")
    api.call("POST", "/v1/products", key, json={"gtin": GTIN, "name": "Tea"})
    row = {"gtin": GTIN, "serial": "S1", "tag": "ntag424", "uid": "04000000000001"}
    api.call("POST", "/v1/items", key, json={"items": [row]})
    body = verify(api, sun_url(MASTER, uid_of(1), 1, gtin=GTIN, serial="S1"))
    assert body["verdict"] == "unverifiable"
    assert codes(body) == ["keys_unavailable"]


def test_a_genuine_item_scanned_many_times_by_its_owner_is_not_flagged(api):
    world = make_world(api, items=1)
    sale = world.event(1, biz_step="retail_selling", disposition="retail_sold")
    assert world.post([sale]).get_json()["accepted"] == 1
    for _ in range(12):
        body = verify(api, world.tap(1), "owner-phone", geo=BERLIN, place="Berlin")
        assert (body["verdict"], body["reasons"]) == ("authentic", [])
    # Five more phones after the sale (six in all, over the default five): passed around.
    for n in range(4):
        assert verify(api, world.tap(1), f"phone-{n}")["verdict"] == "authentic"
    crowd = verify(api, world.tap(1), "phone-4")
    assert crowd["verdict"] == "suspicious"
    ((code, message),) = reasons(crowd)
    assert code == "many_scanners_after_sale"
    assert "has been checked by 6 different phones since it was sold on" in message
    assert "(first verified on " in message and " in Berlin)" in message
    assert crowd["first_verified"]["place"] == "Berlin"


def test_a_buyer_scan_while_custody_says_on_a_truck(api):
    world = make_world(api, items=1)
    carrier = me(api, world.carrier)
    dock = world.reader_for(world.supplier)
    ship = world.event(
        1, dock, biz_step="shipping", disposition="in_transit", to_party=carrier["address"]
    )
    assert world.post([ship], world.supplier).get_json()["accepted"] == 1
    body = verify(api, world.tap(1))
    assert body["verdict"] == "suspicious"
    assert reasons(body) == [
        (
            "still_in_supply_chain",
            f"our records say this item is still on its way to {carrier['name']}, not in a"
            " shop: if you are holding it, its code may have been copied or the item diverted",
        )
    ]
    assert body["in_transit_to"]["name"] == carrier["name"]
    assert [step["biz_step"] for step in body["history"]] == ["commissioning", "shipping"]


def test_the_resolver_answers_json_when_asked_and_the_page_to_a_browser(api):
    world = make_world(api, items=1)
    path = world.tap(1).removeprefix("https://id.example.com")
    response = api.call("GET", path, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["verdict"] == "authentic"
    assert response.get_json()["serial"] == serial_of(1)
    # The page is the same check: the tap it shows again is a replay.
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = api.call("GET", path, headers={"Accept": browser})
    assert (page.status_code, page.mimetype) == (200, "text/html")
    assert "<h1>" in page.text and ">Warning</h1>" in page.text
    assert "repeats the last accepted tap (1)" in page.text
    refused = api.call("GET", path, headers={"Accept": "image/png"})
    assert refused.status_code == 406
    assert refused.get_json()["error"] == "not_acceptable"


def test_a_url_that_is_no_product_link_is_a_422(api):
    response = api.call("GET", "/v1/verify", query_string={"url": "https://example.com/x"})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"url": "not a GS1 Digital Link"}


def test_an_ntag21x_url_bound_to_another_chip_is_counterfeit(api):
    key, private = qr_supplier(api, serials=())
    rows = [
        {"gtin": GTIN, "serial": "N1", "tag": "ntag21x", "uid": "04000000000001"},
        {"gtin": GTIN, "serial": "N2", "tag": "ntag21x", "uid": "04000000000002"},
    ]
    assert api.call("POST", "/v1/items", key, json={"items": rows}).status_code == 200
    genuine = sign_label_url(private, HOST, GTIN, "N1", uid=bytes.fromhex("04000000000001"))
    assert verify(api, genuine)["verdict"] == "authentic"
    # The supplier's valid signature, but over N2's chip: a tag moved onto another item.
    moved = sign_label_url(private, HOST, GTIN, "N1", uid=bytes.fromhex("04000000000002"))
    body = verify(api, moved)
    assert body["verdict"] == "counterfeit"
    assert reasons(body) == [
        (
            "tag_bound_to_other_item",
            f"this chip belongs to another item ({GTIN}/N2), not to this one: the tag was"
            " moved or copied",
        )
    ]


def test_a_database_that_cannot_be_reached_is_unverifiable_not_counterfeit(tmp_path):
    # Nothing listens on port 1: every connection is refused at once.
    settings = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
    }
    app = create_app(settings)
    try:
        response = app.test_client().get("/v1/verify", query_string={"url": VERIFY_URL})
    finally:
        app.extensions["provenance"].close()
    assert response.status_code == 503
    body = response.get_json()
    assert body["verdict"] == "unverifiable"
    assert reasons(body) == [
        (
            "service_unavailable",
            "we could not check this item right now; please try again later",
        )
    ]
