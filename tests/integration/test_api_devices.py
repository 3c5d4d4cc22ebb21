"""/v1/devices: register, list and revoke readers; the chain registration through the writer."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlmodel import Session, select

from provenance_api import chain
from provenance_api.models import ChainWrite
from provenance_api.schemas import Role
from provenance_api.services import devices
from provenance_api.services.deployments import known_addresses
from provenance_api.services.errors import Forbidden
from provenance_api.services.ports import ChainState
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import Api, make_api
from tests.integration.test_chain_writer import drain, make_app


def new_address() -> str:
    return Account.create().address


@pytest.fixture(params=["sqlite", "fake"])
def any_api(request, tmp_path):
    """The same routes over the SQL adapter and over the in-memory fake."""
    made = make_api(request.param, tmp_path)
    yield made
    made.app.extensions["provenance"].close()


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.CARRIER, Role.WAREHOUSE, Role.RETAILER])
def test_every_party_registers_lists_and_revokes_its_device(any_api, role):
    key = any_api.key(role)
    address = new_address()
    created = any_api.call("POST", "/v1/devices", key, json={"address": address, "name": "Dock 3"})
    assert created.status_code == 201, created.get_json()
    device = created.get_json()
    assert device["address"] == address
    assert (device["name"], device["status"]) == ("Dock 3", "active")
    assert device["chain_registration"] == "owed"
    assert device["revoked_at"] is None and device["last_seen_at"] is None
    assert device["registered_at"].endswith("Z")

    listed = any_api.call("GET", "/v1/devices", key).get_json()
    assert listed == {"items": [device], "next": None}

    revoked = any_api.call("DELETE", f"/v1/devices/{address}", key)
    assert revoked.status_code == 200, revoked.get_json()
    body = revoked.get_json()
    assert (body["status"], body["chain_revocation"]) == ("revoked", "owed")
    assert body["revoked_at"] >= body["registered_at"]
    again = any_api.call("DELETE", f"/v1/devices/{address}", key).get_json()
    assert again["revoked_at"] == body["revoked_at"]  # revoking twice keeps the first time
    assert any_api.call("GET", "/v1/devices", key).get_json()["items"] == [body]


def test_lower_and_upper_case_addresses_are_stored_checksummed(any_api):
    key = any_api.key(Role.WAREHOUSE)
    lower, upper = new_address(), new_address()
    for address, sent in ((lower, lower.lower()), (upper, "0x" + upper[2:].upper())):
        answer = any_api.call("POST", "/v1/devices", key, json={"address": sent, "name": "R"})
        assert answer.status_code == 201
        assert answer.get_json()["address"] == address
        # The same address spelled another way names the same device.
        path = any_api.call("DELETE", f"/v1/devices/{sent}", key)
        assert path.status_code == 200 and path.get_json()["address"] == address


@pytest.mark.parametrize(
    "address",
    [
        "0x2946259E0334f33A064106302415aD3391BeD38",  # 39 digits
        "2946259E0334f33A064106302415aD3391BeD3840",  # no 0x
        "0x2946259E0334f33A064106302415aD3391BeD38g",  # not hex
        "0x0000000000000000000000000000000000000000",  # nobody holds this key
        "",
        None,
        42,
    ],
)
def test_malformed_addresses_are_422_naming_the_field(any_api, address):
    key = any_api.key(Role.CARRIER)
    answer = any_api.call("POST", "/v1/devices", key, json={"address": address, "name": "R"})
    assert answer.status_code == 422, answer.get_json()
    assert "address" in answer.get_json()["fields"]
    assert any_api.call("GET", "/v1/devices", key).get_json()["items"] == []


def test_a_mistyped_checksum_is_refused(any_api):
    key = any_api.key(Role.SUPPLIER)
    address = "0x2946259E0334f33A064106302415aD3391BeD384"
    mistyped = address.replace("E0334", "e0334")  # one letter's case flipped
    answer = any_api.call("POST", "/v1/devices", key, json={"address": mistyped, "name": "R"})
    assert answer.status_code == 422
    assert "checksum" in answer.get_json()["fields"]["address"]
    assert any_api.call("DELETE", f"/v1/devices/{mistyped}", key).status_code == 422


def test_name_is_required_and_unknown_fields_refused(any_api):
    key = any_api.key(Role.SUPPLIER)
    address = new_address()
    for body in (
        {"address": address},
        {"address": address, "name": " "},
        {"address": address, "name": "R", "organization_id": 1},
    ):
        answer = any_api.call("POST", "/v1/devices", key, json=body)
        assert answer.status_code == 422, body


def test_duplicate_registration_is_409_and_another_tenants_address_is_not_disclosed(any_api):
    mine, theirs = any_api.key(Role.WAREHOUSE), any_api.key(Role.CARRIER)
    address = new_address()
    body = {"address": address, "name": "Gate"}
    assert any_api.call("POST", "/v1/devices", theirs, json=body).status_code == 201
    assert any_api.call("POST", "/v1/devices", theirs, json=body).status_code == 409
    taken = any_api.call("POST", "/v1/devices", mine, json=body)
    assert taken.status_code == 409
    assert taken.get_json()["fields"] == {"address": "already registered"}
    assert "Carrier" not in taken.get_json()["message"]
    # Revoked by its holder, it is still someone else's: the same answer, no more.
    any_api.call("DELETE", f"/v1/devices/{address}", theirs)
    assert any_api.call("POST", "/v1/devices", mine, json=body).get_json() == taken.get_json()
    # Another tenant's device: 404 to revoke, absent from the list, and left untouched.
    assert any_api.call("DELETE", f"/v1/devices/{address}", mine).status_code == 404
    other = new_address()
    any_api.call("POST", "/v1/devices", theirs, json={"address": other, "name": "B"})
    assert any_api.call("DELETE", f"/v1/devices/{other}", mine).status_code == 404
    assert any_api.call("GET", "/v1/devices", mine).get_json()["items"] == []
    statuses = {
        d["address"]: d["status"]
        for d in any_api.call("GET", "/v1/devices", theirs).get_json()["items"]
    }
    assert statuses == {address: "revoked", other: "active"}


def test_a_revoked_device_is_refused_at_once_and_cannot_be_registered_again(any_api):
    key = any_api.key(Role.RETAILER)
    address = new_address()
    any_api.call("POST", "/v1/devices", key, json={"address": address, "name": "Till"})
    with any_api.uow() as uow:
        assert devices.active_device(uow, address).address == address
    any_api.call("DELETE", f"/v1/devices/{address}", key)
    # Refused before the chain has seen the revocation: the database decides.
    with any_api.uow() as uow:
        with pytest.raises(Forbidden, match="revoked"):
            devices.active_device(uow, address)
        with pytest.raises(Forbidden, match="not registered"):
            devices.active_device(uow, new_address())
    again = any_api.call("POST", "/v1/devices", key, json={"address": address, "name": "Till"})
    assert again.status_code == 409
    assert "new key" in again.get_json()["message"]
    assert again.get_json()["fields"] == {"address": "revoked; a new key is needed"}


def test_no_key_and_the_operator_role_are_refused(any_api):
    address = new_address()
    body = {"address": address, "name": "R"}
    for method, url in (
        ("POST", "/v1/devices"),
        ("GET", "/v1/devices"),
        ("DELETE", f"/v1/devices/{address}"),
    ):
        assert any_api.call(method, url, json=body if method == "POST" else None).status_code == 401
        operator = any_api.key(Role.OPERATOR)
        refused = any_api.call(method, url, operator, json=body if method == "POST" else None)
        assert refused.status_code == 403


def test_listing_pages_by_address(any_api):
    key = any_api.key(Role.SUPPLIER)
    made = sorted(new_address() for _ in range(5))
    for address in made:
        any_api.call("POST", "/v1/devices", key, json={"address": address, "name": "R"})
    seen, after = [], None
    while True:
        query = {"limit": 2} | ({"after": after} if after else {})
        page = any_api.call("GET", "/v1/devices", key, query_string=query).get_json()
        seen += [d["address"] for d in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == made
    assert (
        any_api.call("GET", "/v1/devices", key, query_string={"after": "0x12"}).status_code == 422
    )


def test_the_chain_state_is_read_from_the_write_row(tmp_path):
    fake_api = make_api("fake", tmp_path)
    key = fake_api.key(Role.WAREHOUSE)
    address = new_address()
    fake_api.call("POST", "/v1/devices", key, json={"address": address, "name": "R"})
    fake = fake_api.uow()
    fake.settle(devices.register_key(address), ChainState.CONFIRMED)
    item = fake_api.call("GET", "/v1/devices", key).get_json()["items"][0]
    assert item["chain_registration"] == "confirmed"
    fake_api.app.extensions["provenance"].close()


@pytest.mark.parametrize(
    "where",
    [
        "embedded+sqlite",
        pytest.param("anvil+postgres", marks=[pytest.mark.postgres, pytest.mark.anvil]),
    ],
)
def test_registration_and_revocation_reach_custody_ledger(tmp_path, request, where):
    if where == "embedded+sqlite":
        app, rt = make_app(tmp_path)
    else:
        chain_url = request.getfixturevalue("anvil_url")
        database_url = request.getfixturevalue("postgres_url")
        # Automining anvil makes no block without a transaction: confirm at depth 0.
        app, rt = make_app(tmp_path, chain_url, database_url, CONFIRMATIONS=0)
    api = Api(app, lambda: SqlUnitOfWork(rt.engine))
    key = api.key(Role.WAREHOUSE, "Dock Co")
    me = api.call("GET", "/v1/me", key).get_json()
    org_address = me["organization"]["address"]
    address = new_address()
    assert (
        api.call("POST", "/v1/devices", key, json={"address": address, "name": "D"}).status_code
        == 201
    )
    writer = rt.new_writer()
    drain(writer, rt)
    with Session(rt.engine) as session:
        ledger_address = known_addresses(session, rt.w3.eth.chain_id)["CustodyLedger"]
        row = session.exec(
            select(ChainWrite).where(ChainWrite.idempotency_key == devices.register_key(address))
        ).one()
    assert row.status == "confirmed"
    ledger = chain.contract(rt.w3, "CustodyLedger", ledger_address)
    assert ledger.functions.deviceOrganization(address).call() == org_address
    assert ledger.functions.isDeviceActive(address).call() is True
    listed = api.call("GET", "/v1/devices", key).get_json()["items"][0]
    assert listed["chain_registration"] == "confirmed"

    assert api.call("DELETE", f"/v1/devices/{address}", key).status_code == 200
    assert api.call("GET", "/v1/devices", key).get_json()["items"][0]["chain_revocation"] == "owed"
    drain(writer, rt)
    writer.release()
    assert ledger.functions.isDeviceActive(address).call() is False
    assert ledger.functions.deviceOrganization(address).call() == org_address
    listed = api.call("GET", "/v1/devices", key).get_json()["items"][0]
    assert (listed["chain_registration"], listed["chain_revocation"]) == ("confirmed", "confirmed")
    rt.close()
