"""/v1/products: a supplier's products by GTIN, and every way a caller can get it wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provenance_api.schemas import ATTRIBUTES_MAX_BYTES, PAGE_LIMIT_MAX, Role
from tests.integration.api_support import GTIN, GTIN_13, OTHER_GTIN, make_api

TEA = {"gtin": GTIN_13, "name": "Green tea", "attributes": {"weight_g": 100}}


@pytest.fixture(params=["sqlite", "fake"])
def any_api(request, tmp_path):
    """The same routes over the SQL adapter and over the in-memory fake."""
    made = make_api(request.param, tmp_path)
    yield made
    made.app.extensions["provenance"].close()


def test_a_supplier_registers_reads_lists_and_changes_its_product(any_api):
    key = any_api.key(Role.SUPPLIER)
    created = any_api.call("POST", "/v1/products", key, json=TEA)
    assert created.status_code == 201, created.get_json()
    product = created.get_json()
    assert product["gtin"] == GTIN  # GTIN-13 stored as GTIN-14
    assert product["attributes"] == {"weight_g": 100}
    assert product["created_at"].endswith("Z")
    for spelled in (GTIN, GTIN_13):
        got = any_api.call("GET", f"/v1/products/{spelled}", key)
        assert got.status_code == 200
        assert got.get_json() == product

    changed = any_api.call(
        "PATCH",
        f"/v1/products/{GTIN}",
        key,
        json={"description": "Loose leaf", "image_url": "https://img.example.com/tea.png"},
    )
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["name"], body["description"]) == ("Green tea", "Loose leaf")
    assert body["image_url"] == "https://img.example.com/tea.png"
    assert body["updated_at"] > product["updated_at"]
    cleared = any_api.call("PATCH", f"/v1/products/{GTIN}", key, json={"image_url": None})
    assert cleared.get_json()["image_url"] is None
    assert cleared.get_json()["description"] == "Loose leaf"


def test_listing_is_the_callers_own_paged_by_gtin(api):
    key = api.key(Role.SUPPLIER)
    other = api.key(Role.SUPPLIER)
    gtins = ["00000000000017", "00000000000024", "00000000000031", "00000000000048"]
    for gtin in reversed(gtins):
        assert (
            api.call("POST", "/v1/products", key, json={"gtin": gtin, "name": "x"}).status_code
            == 201
        )
    api.call("POST", "/v1/products", other, json={"gtin": OTHER_GTIN, "name": "theirs"})
    seen, after = [], None
    while True:
        query = {"limit": 3} | ({"after": after} if after else {})
        page = api.call("GET", "/v1/products", key, query_string=query).get_json()
        seen += [item["gtin"] for item in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == gtins
    for limit in (0, PAGE_LIMIT_MAX + 1, "many"):
        response = api.call("GET", "/v1/products", key, query_string={"limit": limit})
        assert response.status_code == 422
        assert "limit" in response.get_json()["fields"]


def test_no_key_a_wrong_key_and_a_revoked_key_are_401(api):
    key = api.key(Role.SUPPLIER)
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer pk_00_x"}):
        response = api.call("POST", "/v1/products", json=TEA, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    spare = api.call("POST", "/v1/api-keys", key).get_json()["api_key"]
    prefix = key.split("_")[1]
    assert api.call("DELETE", f"/v1/api-keys/{prefix}", spare).status_code == 200
    response = api.call("GET", "/v1/products", key)
    assert response.status_code == 401
    assert api.call("GET", "/v1/products", spare).status_code == 200


@pytest.mark.parametrize("role", [Role.CARRIER, Role.WAREHOUSE, Role.RETAILER, Role.OPERATOR])
def test_only_suppliers_register_products(api, role):
    response = api.call("POST", "/v1/products", api.key(role), json=TEA)
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"


def test_another_suppliers_product_is_not_found_and_its_gtin_taken_without_saying_by_whom(api):
    owner, rival = api.key(Role.SUPPLIER, "Owner Foods"), api.key(Role.SUPPLIER, "Rival Foods")
    assert api.call("POST", "/v1/products", owner, json=TEA).status_code == 201
    missing = api.call("GET", f"/v1/products/{OTHER_GTIN}", rival)
    hidden = api.call("GET", f"/v1/products/{GTIN}", rival)
    assert hidden.status_code == missing.status_code == 404
    # Same body as for a GTIN nobody registered, but for the GTIN itself.
    assert hidden.get_json()["fields"] == missing.get_json()["fields"] == {"gtin": "not found"}
    patched = api.call("PATCH", f"/v1/products/{GTIN}", rival, json={"name": "Mine now"})
    assert patched.status_code == 404
    assert api.call("GET", f"/v1/products/{GTIN}", owner).get_json()["name"] == "Green tea"
    assert api.call("GET", "/v1/products", rival).get_json()["items"] == []

    taken = api.call("POST", "/v1/products", rival, json=TEA)
    again = api.call("POST", "/v1/products", owner, json=TEA)
    assert taken.status_code == again.status_code == 409
    assert taken.get_json() == again.get_json()
    text = json.dumps(taken.get_json())
    assert "Owner" not in text and "0x" not in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gtin": "9506000134353", "name": "x"}, "gtin"),  # wrong check digit
        ({"gtin": "95060001343", "name": "x"}, "gtin"),  # 11 digits
        ({"gtin": "O9506000134352", "name": "x"}, "gtin"),  # a letter O
        ({"gtin": GTIN, "name": "   "}, "name"),
        ({"gtin": GTIN, "name": "Tea\nERROR forged"}, "name"),
        ({"gtin": GTIN, "name": "x" * 201}, "name"),
        ({"gtin": GTIN}, "name"),
        ({"gtin": GTIN, "name": "x", "image_url": "http://img.example.com/a.png"}, "image_url"),
        ({"gtin": GTIN, "name": "x", "image_url": "javascript:alert(1)"}, "image_url"),
        ({"gtin": GTIN, "name": "x", "image_url": "https://"}, "image_url"),
        ({"gtin": GTIN, "name": "x", "image_url": "https://a.example/" + "a" * 2048}, "image_url"),
        (
            {"gtin": GTIN, "name": "x", "attributes": {"k": "v" * ATTRIBUTES_MAX_BYTES}},
            "attributes",
        ),
        (
            {"gtin": GTIN, "name": "x", "attributes": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
            "attributes",
        ),
        ({"gtin": GTIN, "name": "x", "attributes": [1, 2]}, "attributes"),
        ({"gtin": GTIN, "name": "x", "owner": 7}, "owner"),
        ({"gtin": GTIN, "name": "x", "description": "x" * 2001}, "description"),
    ],
)
def test_a_malformed_product_is_422_naming_the_field_and_stores_nothing(api, body, field):
    key = api.key(Role.SUPPLIER)
    response = api.call("POST", "/v1/products", key, json=body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["error"] == "invalid_input"
    assert field in error["fields"], error
    assert api.call("GET", "/v1/products", key).get_json()["items"] == []


def test_a_body_that_is_not_a_json_object_is_422_on_body(api):
    key = api.key(Role.SUPPLIER)
    for data, content_type in (
        ("{not json", "application/json"),
        ('["a list"]', "application/json"),
        (json.dumps(TEA), "text/plain"),
        ("", "application/json"),
    ):
        response = api.call("POST", "/v1/products", key, data=data, content_type=content_type)
        assert response.status_code == 422
        assert "body" in response.get_json()["fields"]


def test_a_bad_gtin_in_the_path_is_422_and_a_patch_to_clear_the_name_is_refused(api):
    key = api.key(Role.SUPPLIER)
    api.call("POST", "/v1/products", key, json=TEA)
    response = api.call("GET", "/v1/products/9506000134353", key)
    assert response.status_code == 422
    assert "check digit" in response.get_json()["fields"]["gtin"]
    for change in ({"name": None}, {"attributes": None}, {"gtin": OTHER_GTIN}):
        response = api.call("PATCH", f"/v1/products/{GTIN}", key, json=change)
        assert response.status_code == 422
        assert set(response.get_json()["fields"]) == set(change)
    assert api.call("GET", f"/v1/products/{GTIN}", key).get_json()["name"] == "Green tea"


def test_a_body_over_the_limit_is_413_json(tmp_path):
    made = make_api("sqlite", tmp_path)
    made.app.config["MAX_CONTENT_LENGTH"] = 10_000
    key = made.key(Role.SUPPLIER)
    body = json.dumps(TEA | {"description": "x" * 20_000})
    response = made.call("POST", "/v1/products", key, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json() == {
        "error": "request_entity_too_large",
        "message": "the request body is larger than the limit of 10000 bytes",
        "fields": {"body": "too large"},
    }
    made.app.extensions["provenance"].close()


def test_the_default_body_limit_is_set():
    from provenance_api import config

    assert config.build({"DATA_DIR": "/nonexistent"})["MAX_CONTENT_LENGTH"] == 8 * 1024 * 1024


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_api(request, tmp_path):
    """The API on SQLite and on PostgreSQL: hostile values must not reach either."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    yield made
    made.app.extensions["provenance"].close()


@pytest.mark.parametrize(
    "attributes",
    [
        '{"x": NaN}',  # Python's JSON parser takes these; JSON and PostgreSQL do not
        '{"x": Infinity}',
        '{"x": [1, -Infinity]}',
        '{"x": 1e400}',  # parses to inf
        '{"x": "a\\u0000b"}',
        '{"a\\u0000": 1}',
        '{"x": "\\u001b[31mred"}',
        '{"x": "\\ud800"}',
    ],
)
def test_attributes_that_are_not_plain_json_text_are_422_and_never_stored(db_api, attributes):
    key = db_api.key(Role.SUPPLIER)
    body = f'{{"gtin": "{GTIN}", "name": "x", "attributes": {attributes}}}'
    response = db_api.call("POST", "/v1/products", key, data=body, content_type="application/json")
    assert response.status_code == 422, response.get_data(as_text=True)
    # NaN, Infinity and lone surrogates do not even parse ("body"); the rest are "attributes".
    assert set(response.get_json()["fields"]) & {"attributes", "body"}
    assert db_api.call("GET", "/v1/products", key).get_json()["items"] == []
    good = db_api.call("POST", "/v1/products", key, json=TEA)
    assert good.status_code == 201
    patch = db_api.call(
        "PATCH",
        f"/v1/products/{GTIN}",
        key,
        data=f'{{"attributes": {attributes}}}',
        content_type="application/json",
    )
    assert patch.status_code == 422
    assert (
        db_api.call("GET", f"/v1/products/{GTIN}", key).get_json()["attributes"]
        == TEA["attributes"]
    )


DEEP_BODIES = """
import json, sys, tempfile, pathlib
from provenance_api.schemas import Role
from tests.integration.api_support import make_api
api = make_api("sqlite", pathlib.Path(sys.argv[1]))
key = api.key(Role.SUPPLIER)
n = 200_000  # 400 KB of brackets, far under the body limit
for body in (
    "[" * n + "]" * n,
    '{"gtin": "09506000134352", "name": "x", "attributes": {"a": ' + "[" * n + "]" * n + "}}",
    '{"gtin": "09506000134352", "name": "x", "attributes": ' + '{"a": ' * n + "1" + "}" * n + "}",
):
    response = api.call("POST", "/v1/products", key, data=body, content_type="application/json")
    print(response.status_code, json.dumps(response.get_json()["fields"])[:200])
"""


def test_a_deeply_nested_body_is_422_and_does_not_crash_the_process(tmp_path):
    # py_ecc lifts the recursion limit to 100,000 at import, so the stdlib JSON parser would
    # recurse until the C stack overflows. Run in a child: a crash must fail this test only.
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", DEEP_BODIES, str(tmp_path)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-1500:]}"
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert line.startswith("422 "), line
        assert "recursion limit" in line
