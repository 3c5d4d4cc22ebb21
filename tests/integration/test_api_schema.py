"""The OpenAPI document: committed and current, served at /openapi.json, browsable at /docs
from local files, and honoured by every route (schemathesis, in-process, with real keys)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from provenance_api.api import access
from provenance_api.api.docs import render_document
from provenance_api.cli import ensure_deployed, fund_operator
from provenance_api.schemas import Role

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
REGENERATE = "python -m provenance_api.api.docs docs/openapi.json"
PUBLIC_PATHS = {
    "/v1/verify",
    "/v1/items/{gtin}/{serial}/recall-status",
    "/v1/claims",
    "/v1/claims/wallet",
}  # access.PUBLIC_V1
# Public operations on paths that also have guarded ones (arbiters register by POST).
PUBLIC_OPERATIONS = {("get", "/v1/arbiters"), ("get", "/v1/arbiters/{arbiter_id}")}


def test_the_committed_document_is_current(api):
    current = render_document(api.app.api_doc)
    assert COMMITTED.read_text(encoding="utf-8") == current, f"regenerate it: {REGENERATE}"
    assert api.call("GET", "/openapi.json").get_json() == api.app.api_doc


def test_every_v1_operation_needs_the_bearer_key_and_documents_its_errors(api):
    document = api.app.api_doc
    assert document["openapi"].startswith("3.1")
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    error = {"$ref": "#/components/schemas/ErrorBody"}
    operations = 0
    public = 0
    for path, item in document["paths"].items():
        assert path.startswith("/v1/")
        for method, operation in item.items():
            if path in PUBLIC_PATHS or (method, path) in PUBLIC_OPERATIONS:
                # a buyer's check or an arbiter's profile: no key, and a 422 for a bad query
                public += 1
                assert "security" not in operation, (method, path)
                schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
                continue
            operations += 1
            assert operation["security"] == [{"bearer": []}], (method, path)
            for status in ("401", "403", "422"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == error, (method, path, status)
    assert operations == len(access.ACCESS)
    assert public == len(access.PUBLIC_V1)


def test_the_docs_page_loads_only_files_this_app_serves(api):
    page = api.call("GET", "/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(assets) == 4
    for asset in assets:
        assert asset.startswith("/docs/static/"), asset
        response = api.call("GET", asset)
        response.close()  # a file response streams until closed
        assert response.status_code == 200
    assert "http://" not in page and "https://" not in page
    assert '"/openapi.json"' in page


schema = schemathesis.pytest.from_fixture("live_schema")


@pytest.fixture
def keys(api):
    """Real keys: a supplier's (with one product) and an operator's; the contracts deployed
    (transfers sign consents for the deployed ProductPassport)."""
    runtime = api.app.extensions["provenance"]
    fund_operator(runtime)
    ensure_deployed(runtime)
    made = {Role.SUPPLIER: api.key(Role.SUPPLIER), Role.OPERATOR: api.key(Role.OPERATOR)}
    tea = {"gtin": "09506000134352", "name": "Tea"}
    assert api.call("POST", "/v1/products", made[Role.SUPPLIER], json=tea).status_code == 201
    return made


@pytest.fixture
def live_schema(api):
    """The schema as the app serves it."""
    return schemathesis.openapi.from_wsgi("/openapi.json", api.app)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_route_honours_its_schema(case, keys):
    role = Role.OPERATOR if case.operation.path.startswith("/v1/organizations") else Role.SUPPLIER
    # Left out: positive_data_acceptance. A schema cannot say "check digit" or "printable", so
    # schema-valid data can rightly be refused with the documented 422.
    excluded = [schemathesis.checks.positive_data_acceptance]
    if (case.method, case.operation.path) == ("POST", "/v1/items") or _mutates_authorization(case):
        # A batch answers a malformed row in its 200 body (refused, by index), not with a 4xx.
        # And a case made invalid in its Authorization header is sent with the real key below,
        # which replaces that header: the request it makes may well be valid.
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {keys[role]}"}, excluded_checks=excluded
    )


def _mutates_authorization(case) -> bool:
    """Whether schemathesis made this case invalid in (among others) its Authorization header."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return False
    data = meta.phase.data
    names = {getattr(data, "parameter", None)}
    names |= {mutation.parameter for mutation in getattr(data, "mutations", ())}
    return any(name is not None and name.lower() == "authorization" for name in names)
