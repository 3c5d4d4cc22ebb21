"""/v1/sun-keys: suppliers' NTAG 424 DNA master keys, held sealed and never returned."""

from __future__ import annotations

import base64
import secrets

import pytest
import sqlalchemy as sa

from firmware_tools.chips.ntag424.diversify import sun_meta_read_key
from provenance_api.keys import KeyBoxError
from provenance_api.models import SunKey
from provenance_api.schemas import Role
from provenance_api.services import organizations, sun_keys
from tests.integration.api_support import make_api


@pytest.fixture(params=["sqlite", "fake"])
def any_api(request, tmp_path):
    made = make_api(request.param, tmp_path)
    yield made
    made.app.extensions["provenance"].close()


def _tenant(api, key: str) -> int:
    return organizations.authenticate(api.uow(), key).organization_id


def _spellings(key: bytes) -> list[str]:
    return [key.hex(), key.hex().upper(), base64.b64encode(key).decode().rstrip("=")]


def test_epochs_are_generated_or_imported_listed_and_never_returned(any_api):
    key = any_api.key(Role.SUPPLIER)
    imported = secrets.token_bytes(16)
    responses = [
        any_api.call("GET", "/v1/sun-keys", key),
        any_api.call("POST", "/v1/sun-keys", key, json={}),
        any_api.call("POST", "/v1/sun-keys", key, json={"master_key": imported.hex().upper()}),
        any_api.call("POST", "/v1/sun-keys", key, json={}),
    ]
    assert [r.status_code for r in responses] == [200, 201, 201, 201]
    assert responses[0].get_json() == {"items": []}
    assert [r.get_json()["epoch"] for r in responses[1:]] == [1, 2, 3]
    listed = any_api.call("GET", "/v1/sun-keys", key)
    responses.append(listed)
    items = listed.get_json()["items"]
    assert [(i["epoch"], i["current"]) for i in items] == [(1, False), (2, False), (3, True)]
    assert all(set(i) == {"epoch", "created_at", "current"} for i in items)

    runtime = any_api.app.extensions["provenance"]
    epochs = sun_keys.key_epochs(any_api.uow(), runtime.keybox, _tenant(any_api, key))
    assert [e.number for e in epochs] == [1, 2, 3]
    assert epochs[1].meta_read_key == sun_meta_read_key(imported)
    # The master keys as the key box opens them: none appears in any answer, in any spelling.
    masters = []
    with any_api.uow() as uow:
        for row in uow.sun_keys.epochs(_tenant(any_api, key)):
            context = sun_keys.sealing_context(row.organization_id, row.epoch)
            masters.append(runtime.keybox.open(row.sealed_key, context))
            assert imported.hex() not in row.sealed_key.lower()
    assert masters[1] == imported and len(set(masters)) == 3
    for response in responses:
        text = response.get_data(as_text=True)
        for master in masters:
            for spelled in _spellings(master):
                assert spelled not in text


def test_each_supplier_sees_only_its_own_epochs(any_api):
    mine, theirs = any_api.key(Role.SUPPLIER), any_api.key(Role.SUPPLIER)
    any_api.call("POST", "/v1/sun-keys", theirs, json={})
    any_api.call("POST", "/v1/sun-keys", theirs, json={})
    assert any_api.call("GET", "/v1/sun-keys", mine).get_json() == {"items": []}
    first = any_api.call("POST", "/v1/sun-keys", mine, json={})
    assert first.get_json()["epoch"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"master_key": "00" * 15}, "master_key"),
        ({"master_key": "00" * 17}, "master_key"),
        ({"master_key": "zz" * 16}, "master_key"),
        ({"master_key": "00" * 16}, "master_key"),  # the chip's factory default
        ({"master_key": None}, "master_key"),
        ({"key": "11" * 16}, "key"),
    ],
)
def test_a_malformed_key_is_422_and_stores_nothing(any_api, body, field):
    key = any_api.key(Role.SUPPLIER)
    response = any_api.call("POST", "/v1/sun-keys", key, json=body)
    assert response.status_code == 422
    assert field in response.get_json()["fields"]
    assert any_api.call("GET", "/v1/sun-keys", key).get_json() == {"items": []}


def test_only_suppliers_hold_sun_keys(api):
    assert api.call("GET", "/v1/sun-keys").status_code == 401
    for role in (Role.CARRIER, Role.WAREHOUSE, Role.RETAILER, Role.OPERATOR):
        key = api.key(role)
        assert api.call("POST", "/v1/sun-keys", key, json={}).status_code == 403
        assert api.call("GET", "/v1/sun-keys", key).status_code == 403


def test_a_sealed_key_copied_to_another_organizations_row_does_not_open(api):
    victim, thief = api.key(Role.SUPPLIER), api.key(Role.SUPPLIER)
    api.call("POST", "/v1/sun-keys", victim, json={"master_key": "11" * 16})
    api.call("POST", "/v1/sun-keys", victim, json={"master_key": "22" * 16})
    api.call("POST", "/v1/sun-keys", thief, json={"master_key": "33" * 16})
    runtime = api.app.extensions["provenance"]
    victim_id, thief_id = _tenant(api, victim), _tenant(api, thief)
    with runtime.engine.begin() as connection:
        sealed = connection.execute(
            sa.select(SunKey.sealed_key).where(
                SunKey.organization_id == victim_id, SunKey.epoch == 1
            )
        ).scalar_one()
        connection.execute(
            sa.update(SunKey).where(SunKey.organization_id == thief_id).values(sealed_key=sealed)
        )
        # Another epoch of the same organization is another context too.
        connection.execute(
            sa.update(SunKey)
            .where(SunKey.organization_id == victim_id, SunKey.epoch == 2)
            .values(sealed_key=sealed)
        )
    with pytest.raises(KeyBoxError):
        sun_keys.key_epochs(api.uow(), runtime.keybox, thief_id)
    with pytest.raises(KeyBoxError):
        sun_keys.key_epochs(api.uow(), runtime.keybox, victim_id)
    assert api.call("GET", "/v1/sun-keys", thief).status_code == 200  # listing opens nothing


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_api(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    yield made
    made.app.extensions["provenance"].close()


def test_keys_added_at_once_each_get_their_own_epoch(db_api):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    key = db_api.key(Role.SUPPLIER)
    racers = 4
    barrier = Barrier(racers)

    def add(_: int) -> int:
        client = db_api.app.test_client()
        barrier.wait()
        response = client.post("/v1/sun-keys", json={}, headers={"Authorization": f"Bearer {key}"})
        return response.status_code

    with ThreadPoolExecutor(racers) as pool:
        assert list(pool.map(add, range(racers))) == [201] * racers
    items = db_api.call("GET", "/v1/sun-keys", key).get_json()["items"]
    assert [i["epoch"] for i in items] == [1, 2, 3, 4]


def test_the_epochs_verify_a_tap_of_a_tag_keyed_under_an_older_epoch(any_api):
    from firmware_tools.verify import AUTHENTIC, ScannedUrl, Trust, check_tag
    from tests.fakes.sun_tags import sun_tag, tap

    key = any_api.key(Role.SUPPLIER)
    old, new = secrets.token_bytes(16), secrets.token_bytes(16)
    for master in (old, new):
        body = {"master_key": master.hex()}
        assert any_api.call("POST", "/v1/sun-keys", key, json=body).status_code == 201
    runtime = any_api.app.extensions["provenance"]
    epochs = sun_keys.key_epochs(any_api.uow(), runtime.keybox, _tenant(any_api, key))
    url = tap(sun_tag(old, bytes.fromhex("04A1B2C3D4E5F6"), serial="OLD-1"))
    check = check_tag(ScannedUrl(url), Trust(key_epochs=tuple(epochs)))
    assert check.verdict == AUTHENTIC, check
    stranger = tap(sun_tag(secrets.token_bytes(16), bytes.fromhex("04A1B2C3D4E5F6")))
    assert check_tag(ScannedUrl(stranger), Trust(key_epochs=tuple(epochs))).verdict != AUTHENTIC
