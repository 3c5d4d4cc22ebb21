"""/v1/trust: every registered GTIN with the supplier that signs it, for devices to cache."""

from __future__ import annotations

import pytest

from provenance_api.schemas import Role
from tests.integration.api_support import make_api


@pytest.fixture(params=["sqlite", "fake"])
def any_api(request, tmp_path):
    """The same route over the SQL adapter and over the in-memory fake."""
    made = make_api(request.param, tmp_path)
    yield made
    made.app.extensions["provenance"].close()


def _supplier(api, gtins: list[str]) -> str:
    key = api.key(Role.SUPPLIER)
    for gtin in gtins:
        made = api.call("POST", "/v1/products", key, json={"gtin": gtin, "name": "Secret name"})
        assert made.status_code == 201
    return api.call("GET", "/v1/me", key).get_json()["organization"]


def test_a_device_org_reads_every_gtin_with_its_signer_page_by_page(any_api):
    first = _supplier(any_api, ["09506000134352", "00000000000017"])
    second = _supplier(any_api, ["00000000000024"])
    carrier = any_api.key(Role.CARRIER)
    seen, after = [], None
    while True:
        query = {"limit": 2} | ({"after": after} if after else {})
        page = any_api.call("GET", "/v1/trust", carrier, query_string=query)
        assert page.status_code == 200
        body = page.get_json()
        seen += body["items"]
        after = body["next"]
        if after is None:
            break
    signer = {org["address"]: org["name"] for org in (first, second)}
    assert [entry["gtin"] for entry in seen] == [
        "00000000000017",
        "00000000000024",
        "09506000134352",
    ]
    for entry in seen:
        assert signer[entry["supplier_address"]] == entry["supplier"]
        # Only what a label shows: no product names or descriptions.
        assert set(entry) == {"gtin", "supplier", "supplier_address"}
    assert seen[1]["supplier_address"] == second["address"]


def test_trust_needs_a_key_and_a_sane_page(any_api):
    assert any_api.call("GET", "/v1/trust").status_code == 401
    carrier = any_api.key(Role.CARRIER)
    bad = any_api.call("GET", "/v1/trust", carrier, query_string={"limit": 0})
    assert bad.status_code == 422 and "limit" in bad.get_json()["fields"]
    bad = any_api.call("GET", "/v1/trust", carrier, query_string={"after": "123"})
    assert bad.status_code == 422 and "after" in bad.get_json()["fields"]
