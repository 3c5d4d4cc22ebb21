"""/v1/me, /v1/api-keys (rotation, revocation) and /v1/organizations (operators)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from provenance_api import config
from provenance_api.schemas import Role
from provenance_api.services.organizations import MAX_ACTIVE_KEYS


def _prefix(key: str) -> str:
    return key.split("_")[1]


def test_me_says_who_the_key_belongs_to(api):
    supplier = api.key(Role.SUPPLIER, "Acme Farms")
    me = api.call("GET", "/v1/me", supplier).get_json()
    assert me["role"] == "supplier"
    assert me["key_prefix"] == _prefix(supplier)
    assert me["organization"]["name"] == "Acme Farms"
    assert me["organization"]["address"].startswith("0x")
    assert me["operator"] is None
    operator = api.key(Role.OPERATOR, "Ops team")
    me = api.call("GET", "/v1/me", operator).get_json()
    assert (me["role"], me["organization"], me["operator"]["name"]) == (
        "operator",
        None,
        "Ops team",
    )


def test_rotation_new_key_works_at_once_old_until_revoked(api):
    old = api.key(Role.CARRIER)
    created = api.call("POST", "/v1/api-keys", old)
    assert created.status_code == 201
    new = created.get_json()["api_key"]
    assert created.get_json()["prefix"] == _prefix(new)
    assert api.call("GET", "/v1/me", new).status_code == 200
    assert api.call("GET", "/v1/me", old).status_code == 200

    listed = api.call("GET", "/v1/api-keys", new).get_json()
    assert sorted(k["prefix"] for k in listed["items"]) == sorted([_prefix(old), _prefix(new)])
    assert all(k["active"] for k in listed["items"])
    assert old not in json.dumps(listed) and new not in json.dumps(listed)

    revoked = api.call("DELETE", f"/v1/api-keys/{_prefix(old)}", new)
    assert revoked.status_code == 200
    assert revoked.get_json()["active"] is False
    assert api.call("GET", "/v1/me", old).status_code == 401
    assert api.call("GET", "/v1/me", new).status_code == 200
    again = api.call("DELETE", f"/v1/api-keys/{_prefix(old)}", new)
    assert again.get_json()["revoked_at"] == revoked.get_json()["revoked_at"]
    states = {
        k["prefix"]: k["active"] for k in api.call("GET", "/v1/api-keys", new).get_json()["items"]
    }
    assert states == {_prefix(old): False, _prefix(new): True}


def test_the_last_active_key_goes_only_when_the_caller_says_so(api):
    only = api.key(Role.RETAILER)
    refused = api.call("DELETE", f"/v1/api-keys/{_prefix(only)}", only)
    assert refused.status_code == 409
    assert "allow_last" in refused.get_json()["message"]
    assert api.call("GET", "/v1/me", only).status_code == 200
    gone = api.call(
        "DELETE", f"/v1/api-keys/{_prefix(only)}", only, query_string={"allow_last": "true"}
    )
    assert gone.status_code == 200
    assert api.call("GET", "/v1/me", only).status_code == 401


def test_another_callers_key_cannot_be_seen_or_revoked(api):
    mine, theirs = api.key(Role.WAREHOUSE), api.key(Role.WAREHOUSE)
    spare = api.call("POST", "/v1/api-keys", theirs).get_json()["api_key"]
    for prefix in (_prefix(theirs), _prefix(spare), "abcdef123456"):
        response = api.call("DELETE", f"/v1/api-keys/{prefix}", mine)
        assert response.status_code == 404
        assert response.get_json()["fields"] == {"prefix": "not found"}
    assert api.call("GET", "/v1/me", theirs).status_code == 200
    prefixes = [k["prefix"] for k in api.call("GET", "/v1/api-keys", mine).get_json()["items"]]
    assert prefixes == [_prefix(mine)]
    assert api.call("DELETE", "/v1/api-keys/NOT-HEX", mine).status_code == 422


def test_active_keys_are_bounded(api):
    key = api.key(Role.SUPPLIER)
    for _ in range(MAX_ACTIVE_KEYS - 1):
        assert api.call("POST", "/v1/api-keys", key).status_code == 201
    response = api.call("POST", "/v1/api-keys", key)
    assert response.status_code == 409
    assert response.get_json()["fields"] == {"api_key": "too many active keys"}


def test_an_operator_creates_and_lists_organizations(api):
    operator = api.key(Role.OPERATOR)
    created = api.call(
        "POST", "/v1/organizations", operator, json={"name": " Nordic Freight ", "kind": "carrier"}
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["organization"]["name"] == "Nordic Freight"
    me = api.call("GET", "/v1/me", body["api_key"]).get_json()
    assert (me["role"], me["organization"]["id"]) == ("carrier", body["organization"]["id"])

    duplicate = api.call(
        "POST", "/v1/organizations", operator, json={"name": "Nordic Freight", "kind": "retailer"}
    )
    assert duplicate.status_code == 409
    for bad, field in (
        ({"name": "X", "kind": "operator"}, "kind"),  # staff are not made through the API
        ({"name": "X", "kind": "pirate"}, "kind"),
        ({"name": "\u202eevil", "kind": "supplier"}, "name"),
        ({"kind": "supplier"}, "name"),
        ({"name": "X", "kind": "supplier", "address": "0x" + "0" * 40}, "address"),
    ):
        response = api.call("POST", "/v1/organizations", operator, json=bad)
        assert response.status_code == 422
        assert field in response.get_json()["fields"]

    for n in range(3):
        api.call(
            "POST", "/v1/organizations", operator, json={"name": f"Org {n}", "kind": "retailer"}
        )
    first = api.call("GET", "/v1/organizations", operator, query_string={"limit": 2}).get_json()
    rest = api.call(
        "GET", "/v1/organizations", operator, query_string={"after": first["next"]}
    ).get_json()
    names = [o["name"] for o in first["items"] + rest["items"]]
    assert names == ["Nordic Freight", "Org 0", "Org 1", "Org 2"]
    assert rest["next"] is None


def test_parties_cannot_create_organizations(api):
    for role in (Role.SUPPLIER, Role.CARRIER, Role.WAREHOUSE, Role.RETAILER):
        response = api.call(
            "POST", "/v1/organizations", api.key(role), json={"name": "Sneaky", "kind": "supplier"}
        )
        assert response.status_code == 403


def test_operator_create_command_prints_a_working_key_once(monkeypatch, tmp_path):
    from provenance_api.cli import cli

    for name in config.SECRET_SETTINGS:
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli, ["operator", "create", "Ops team", "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["name"] == "Ops team"
    result = runner.invoke(cli, ["operator", "create", "Ops team"], env=env)
    assert result.exit_code == 1
    assert "already exists" in result.output
    result = runner.invoke(cli, ["operator", "create", "Ops\x1bteam"], env=env)
    assert result.exit_code == 1
    assert "invalid operator name" in result.output
    assert "Traceback" not in result.output

    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path))
    from provenance_api.app import create_app

    app = create_app()
    try:
        response = app.test_client().get(
            "/v1/me", headers={"Authorization": f"Bearer {shown['api_key']}"}
        )
        assert response.get_json()["role"] == "operator"
    finally:
        app.extensions["provenance"].close()


def test_an_organization_page_after_an_id_beyond_bigint_is_422_not_500(api):
    operator = api.key(Role.OPERATOR)
    query = {"after": 2**63, "limit": 1}
    response = api.call("GET", "/v1/organizations", operator, query_string=query)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "after" in response.get_json()["fields"]
