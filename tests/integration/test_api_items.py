"""/v1/items: a supplier's serialized items in batches, and every way a caller can get it wrong."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import sqlalchemy as sa

from contracts_abi import eip712
from provenance_api.models import CustodyEvent, Item
from provenance_api.schemas import ITEMS_PER_BATCH_MAX, Role
from tests.integration.api_support import GTIN, GTIN_13, OTHER_GTIN, make_api

UID = "04A1B2C3D4E5F6"


@pytest.fixture(params=["sqlite", "fake"])
def any_api(request, tmp_path):
    """The same routes over the SQL adapter and over the in-memory fake."""
    made = make_api(request.param, tmp_path)
    yield made
    made.app.extensions["provenance"].close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_api(request, tmp_path):
    """The API on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    yield made
    made.app.extensions["provenance"].close()


def supplier_with_product(api, gtin: str = GTIN) -> str:
    key = api.key(Role.SUPPLIER)
    created = api.call("POST", "/v1/products", key, json={"gtin": gtin, "name": "Tea"})
    assert created.status_code == 201
    return key


def row(serial: str, **fields) -> dict:
    return {"gtin": GTIN, "serial": serial, "tag": "qr"} | fields


def post(api, key: str, rows: list, **query):
    return api.call("POST", "/v1/items", key, json={"items": rows}, query_string=query)


def stored_count(api, key: str, gtin: str = GTIN) -> int:
    page = api.call("GET", "/v1/items", key, query_string={"gtin": gtin, "limit": 200})
    return len(page.get_json()["items"])


def test_a_supplier_registers_reads_and_lists_its_items(any_api):
    key = supplier_with_product(any_api)
    rows = [
        row("A1", lot="L-7", expiry="271231"),
        {"gtin": GTIN_13, "serial": "A2", "tag": "ntag21x", "uid": UID.lower()},
        row("A3", tag="ntag424", uid="04000000000003", expiry="270200"),
    ]
    response = post(any_api, key, rows)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["created"], body["unchanged"], body["refused_count"]) == (3, 0, 0)
    assert [entry["index"] for entry in body["items"]] == [0, 1, 2]
    first = body["items"][0]
    assert (first["gtin"], first["lot"], first["expiry"], first["uid"]) == (
        GTIN,
        "L-7",
        "271231",
        None,
    )
    assert body["items"][1]["uid"] == UID  # stored upper-case
    assert first["commissioned_at"].endswith("Z")
    assert "salt" not in json.dumps(body)
    got = any_api.call("GET", f"/v1/items/{GTIN_13}/A2", key)
    assert got.status_code == 200
    assert got.get_json() == {
        k: v for k, v in body["items"][1].items() if k not in ("index", "created")
    }
    seen, after = [], None
    while True:
        query = {"gtin": GTIN, "limit": 2} | ({"after": after} if after else {})
        page = any_api.call("GET", "/v1/items", key, query_string=query).get_json()
        seen += [item["serial"] for item in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == ["A1", "A2", "A3"]


def test_registration_owes_no_chain_write_and_commissions_each_item_once(api):
    key = supplier_with_product(api)
    rows = [row(f"S{n}") for n in range(19)] + [row("N1", tag="ntag424", uid=UID)]
    assert post(api, key, rows).status_code == 200
    assert post(api, key, rows).status_code == 200  # a resend commissions nothing again
    supplier = api.call("GET", "/v1/me", key).get_json()["organization"]["address"]
    engine = api.app.extensions["provenance"].engine
    with engine.connect() as connection:
        events = connection.execute(sa.select(CustodyEvent)).all()
        items = dict(connection.execute(sa.select(Item.id, Item.serial)).all())
        owed = connection.execute(sa.text("SELECT count(*) FROM chain_write")).scalar_one()
    assert owed == 0
    assert sorted(items[event.item_id] for event in events) == sorted(items.values())
    assert len({bytes(event.salt) for event in events}) == 20
    for event in events:
        signed = eip712.CustodyEvent(
            event_id=uuid.UUID(event.event_id),
            gtin=event.gtin,
            serial=event.serial,
            biz_step="commissioning",
            disposition="active",
            read_point="",
            from_party=eip712.ZERO_ADDRESS,
            to_party=supplier,
            event_time=event.event_time,
            time_zone_offset=0,
            # The supplier's signature binds the chip to the item.
            tag_evidence=eip712.tag_evidence_digest(
                "", bytes.fromhex(UID) if event.serial == "N1" else b""
            ),
            device=supplier,
        )
        assert bytes(event.digest) == eip712.custody_event_digest(signed)
        assert eip712.recover_custody_event_signer(bytes(event.signature), signed) == supplier
        assert (event.party, event.device, event.organization_id) == (
            supplier,
            supplier,
            events[0].organization_id,
        )


def test_an_atomic_refusal_commissions_nothing(api):
    key = supplier_with_product(api)
    rows = [row("S1"), row("S2", gtin=OTHER_GTIN)]
    assert post(api, key, rows, atomic=True).status_code == 422
    engine = api.app.extensions["provenance"].engine
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM custody_event")).scalar_one() == 0


def test_no_key_and_other_roles_are_refused_before_the_body_is_read(api):
    assert api.call("POST", "/v1/items", json={"items": [row("A1")]}).status_code == 401
    assert api.call("POST", "/v1/items", data="{").status_code == 401
    for role in (Role.CARRIER, Role.WAREHOUSE, Role.RETAILER, Role.OPERATOR):
        key = api.key(role)
        assert post(api, key, [row("A1")]).status_code == 403
        assert api.call("GET", f"/v1/items/{GTIN}/A1", key).status_code == 403


def test_another_suppliers_product_and_items_are_not_disclosed(api):
    mine = supplier_with_product(api)
    rival = supplier_with_product(api, OTHER_GTIN)
    assert post(api, rival, [row("R1", gtin=OTHER_GTIN)]).get_json()["created"] == 1
    body = post(api, mine, [row("R1", gtin=OTHER_GTIN), row("R2", gtin=OTHER_GTIN)]).get_json()
    assert body["created"] == 0
    assert [(r["index"], r["error"], r["fields"]) for r in body["refused"]] == [
        (0, "unknown_product", {"gtin": "no such product"}),
        (1, "unknown_product", {"gtin": "no such product"}),
    ]
    unregistered = "00000000000017"
    never = post(api, mine, [row("X", gtin=unregistered)]).get_json()["refused"][0]
    assert never["fields"] == {"gtin": "no such product"}  # the same answer: the owner is not told
    for url in (f"/v1/items/{OTHER_GTIN}/R1", f"/v1/items/{OTHER_GTIN}/R2"):
        assert api.call("GET", url, mine).status_code == 404
    listed = api.call("GET", "/v1/items", mine, query_string={"gtin": OTHER_GTIN})
    assert listed.status_code == 404
    assert stored_count(api, rival, OTHER_GTIN) == 1


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"gtin": "09506000134353"}, "gtin"),  # wrong check digit
        ({"gtin": "0950600013435"}, "gtin"),
        ({"serial": ""}, "serial"),
        ({"serial": "A 1"}, "serial"),  # a space is not in GS1 character set 82
        ({"serial": "S" * 21}, "serial"),
        ({"lot": "L\u00e9"}, "lot"),
        ({"expiry": "270229"}, "expiry"),  # 2027 is not a leap year
        ({"expiry": "2027-01-31"}, "expiry"),
        ({"tag": "nfc"}, "tag"),
        ({"uid": UID}, "uid"),  # a QR label has no chip
        ({"tag": "ntag424"}, "uid"),  # an NFC tag needs one
        ({"tag": "ntag21x", "uid": "04A1B2C3D4E5"}, "uid"),  # 6 bytes
        ({"tag": "ntag21x", "uid": "04A1B2C3D4E5FG"}, "uid"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_malformed_row_is_refused_by_index_and_the_good_rows_are_stored(api, fields, bad):
    key = supplier_with_product(api)
    body = post(api, key, [row("G1"), row("B1") | fields, row("G2")]).get_json()
    assert [entry["serial"] for entry in body["items"]] == ["G1", "G2"]
    [refused] = body["refused"]
    assert (refused["index"], refused["error"], list(refused["fields"])) == (
        1,
        "invalid_input",
        [bad],
    )
    assert stored_count(api, key) == 2


def test_atomic_stores_all_or_none(api):
    key = supplier_with_product(api)
    bad = [row("A1"), row("A 2"), row("A3", gtin=OTHER_GTIN)]
    refused = post(api, key, bad, atomic="true")
    assert refused.status_code == 422
    assert set(refused.get_json()["fields"]) == {"items.1.serial"}
    assert stored_count(api, key) == 0
    unknown = post(api, key, [row("A1"), row("A3", gtin=OTHER_GTIN)], atomic="true")
    assert unknown.status_code == 422
    assert unknown.get_json()["fields"] == {"items.1.gtin": "unknown_product: no such product"}
    assert stored_count(api, key) == 0
    good = post(api, key, [row("A1"), row("A2")], atomic="true")
    assert good.status_code == 200 and good.get_json()["created"] == 2
    clash = post(api, key, [row("A4"), row("A1", lot="OTHER")], atomic="true")
    assert clash.status_code == 422
    assert clash.get_json()["fields"] == {
        "items.1.lot": "conflict: differs from the item already registered"
    }
    assert stored_count(api, key) == 2


def test_an_identical_resend_returns_the_stored_items_and_stores_nothing(any_api):
    key = supplier_with_product(any_api)
    rows = [row("A1", lot="L1"), row("A2", tag="ntag424", uid=UID)]
    first = post(any_api, key, rows).get_json()
    again = post(any_api, key, [rows[1], rows[0]]).get_json()
    assert (again["created"], again["unchanged"], again["refused_count"]) == (0, 2, 0)
    assert [entry["created"] for entry in again["items"]] == [False, False]
    by_serial = {entry["serial"]: entry for entry in first["items"]}
    for entry in again["items"]:
        before = by_serial[entry["serial"]]
        assert entry["commissioned_at"] == before["commissioned_at"]  # the stored one
    assert stored_count(any_api, key) == 2


def test_a_conflicting_resend_is_refused_for_that_row_only(any_api):
    key = supplier_with_product(any_api)
    post(any_api, key, [row("A1", lot="L1"), row("A2", tag="ntag424", uid=UID)])
    body = post(
        any_api,
        key,
        [row("A1", lot="L2"), row("A2", tag="ntag424", uid="04000000000009"), row("A3")],
    ).get_json()
    assert [entry["serial"] for entry in body["items"]] == ["A3"]
    assert [(r["index"], r["error"], r["fields"]) for r in body["refused"]] == [
        (0, "conflict", {"lot": "differs from the item already registered"}),
        (1, "conflict", {"uid": "differs from the item already registered"}),
    ]
    got = any_api.call("GET", f"/v1/items/{GTIN}/A1", key).get_json()
    assert got["lot"] == "L1"


def test_a_chip_uid_is_bound_to_one_item_only(any_api):
    key = supplier_with_product(any_api)
    rival = supplier_with_product(any_api, OTHER_GTIN)
    assert post(any_api, key, [row("A1", tag="ntag21x", uid=UID)]).get_json()["created"] == 1
    again = post(any_api, key, [row("A2", tag="ntag21x", uid=UID.lower())]).get_json()
    assert again["refused"][0]["fields"] == {"uid": "already bound to another item"}
    theirs = post(any_api, rival, [row("R1", gtin=OTHER_GTIN, tag="ntag424", uid=UID)]).get_json()
    assert theirs["refused"][0]["fields"] == {"uid": "already bound to another item"}
    same_batch = post(
        any_api,
        key,
        [
            row("B1", tag="ntag424", uid="04000000000001"),
            row("B2", tag="ntag424", uid="04000000000001"),
        ],
    ).get_json()
    assert [e["serial"] for e in same_batch["items"]] == ["B1"]
    assert same_batch["refused"][0]["index"] == 1
    repeated = post(any_api, key, [row("C1"), row("C1"), row("C1", lot="X")]).get_json()
    assert [(e["index"], e["created"]) for e in repeated["items"]] == [(0, True), (1, False)]
    assert repeated["refused"][0]["index"] == 2


@pytest.mark.parametrize(
    "body",
    [
        "{",
        "[]",
        '{"items": []}',
        '{"items": {}}',
        '{"rows": []}',
        '{"items": [{"gtin": "09506000134352", "serial": "A", "tag": "qr"}], "extra": 1}',
    ],
)
def test_a_malformed_body_as_a_whole_is_422_and_stores_nothing(api, body):
    key = supplier_with_product(api)
    response = api.call("POST", "/v1/items", key, data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["fields"]
    assert stored_count(api, key) == 0


def test_a_batch_over_10000_rows_is_refused_whole(api):
    key = supplier_with_product(api)
    rows = [row(f"S{n}") for n in range(ITEMS_PER_BATCH_MAX + 1)]
    response = post(api, key, rows)
    assert response.status_code == 422
    assert list(response.get_json()["fields"]) == ["items"]
    assert stored_count(api, key) == 0


def test_bad_paths_and_queries_are_422_or_404(api):
    key = supplier_with_product(api)
    post(api, key, [row("A/1")])  # "/" is in GS1 character set 82
    assert api.call("GET", f"/v1/items/{GTIN}/A/1", key).status_code == 200
    assert api.call("GET", f"/v1/items/{GTIN}/A2", key).status_code == 404
    assert api.call("GET", "/v1/items/09506000134353/A1", key).status_code == 422
    assert api.call("GET", "/v1/items", key).status_code == 422  # gtin is required
    assert (
        api.call("GET", "/v1/items", key, query_string={"gtin": GTIN, "limit": 0}).status_code
        == 422
    )


def test_two_identical_batches_at_once_store_each_item_once(db_api):
    key = supplier_with_product(db_api)
    rows = [row(f"S{n:04d}", tag="ntag424", uid=f"04{n:012X}") for n in range(300)]
    body = json.dumps({"items": rows})
    racers = 4
    barrier = Barrier(racers)

    def send(_: int):
        client = db_api.app.test_client()
        barrier.wait()
        response = client.post(
            "/v1/items",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(send, range(racers)))
    assert [status for status, _ in outcomes] == [200] * racers
    assert sum(body["created"] for _, body in outcomes) == 300
    assert all(body["refused_count"] == 0 for _, body in outcomes)
    assert all(body["created"] + body["unchanged"] == 300 for _, body in outcomes)
    engine = db_api.app.extensions["provenance"].engine
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM item")).scalar_one() == 300
