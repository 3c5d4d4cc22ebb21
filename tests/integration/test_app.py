"""The Flask app: configuration, secrets, /healthz and the JSON error shape."""

from __future__ import annotations

import json
import stat

import pytest
from eth_account import Account
from flask import Blueprint

from provenance_api import config, db
from provenance_api.api import access
from provenance_api.app import create_app
from provenance_api.cli import ensure_deployed, fund_operator
from provenance_api.services.chain_writes import owe_write
from provenance_api.services.errors import InvalidInput, NotFound


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path / "data"),
            "OPERATOR_KEY": Account.create().key.hex(),
        }
    )
    yield app
    app.extensions["provenance"].close()


def test_outside_testing_the_app_refuses_to_start_without_secrets(monkeypatch, tmp_path):
    for name in config.SECRET_SETTINGS:
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path))
    with pytest.raises(config.ConfigError, match="PROVENANCE_OPERATOR_KEY"):
        create_app()
    config.ensure_secrets(tmp_path)
    assert create_app().config["OPERATOR_KEY"]


def test_healthz_before_migration_is_degraded_and_says_why(app):
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
    assert "db upgrade" in body["database"]["error"]
    assert app.config["DATA_DIR"] not in json.dumps(body)  # no file path for strangers


def test_healthz_on_a_ready_embedded_stack(app):
    rt = app.extensions["provenance"]
    db.upgrade(app.config["DATABASE_URL"])
    fund_operator(rt)
    addresses = ensure_deployed(rt)
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "backend": "sqlite"}
    assert app.config["DATA_DIR"] not in json.dumps(body)
    assert body["chain"]["embedded"] is True
    assert isinstance(body["chain"]["chain_id"], int)
    assert isinstance(body["chain"]["block"], int)
    assert body["chain"]["contracts"] == addresses
    assert body["writer"] == {"running": False, "pending": 0, "failed": 0, "last_error": None}

    with db.session_scope(rt.engine) as session:
        owe_write(
            session,
            sender=rt.operator.address,
            contract="CustodyLedger",
            function="anchor",
            args=["0x" + "01" * 32, 1, "0x" + "02" * 32],
            idempotency_key="one",
        )
    body = client.get("/healthz").get_json()
    assert body["writer"]["pending"] == 1
    assert body["status"] == "degraded"  # owed writes and no writer to send them
    writer = rt.new_writer()
    writer.tick()
    body = client.get("/healthz").get_json()
    assert body["writer"]["running"] is True
    assert body["status"] == "ok"


def test_healthz_hides_the_database_password(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgresql+psycopg://app:hunter2@127.0.0.1:1/none",
        }
    )
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
    assert "hunter2" not in json.dumps(body)
    shown = {key: body["database"][key] for key in ("backend", "host", "database")}
    assert shown == {"backend": "postgresql", "host": "127.0.0.1:1", "database": "none"}
    assert body["database"]["error"].startswith("unreachable: ")
    app.extensions["provenance"].close()


def test_healthz_names_no_path_when_the_database_cannot_be_opened(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{blocker}/under/a/file.sqlite3",
        }
    )
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["database"]["ok"] is False
    assert body["database"]["backend"] == "sqlite"
    assert body["database"]["error"].startswith("cannot create the database's directory")
    assert str(tmp_path) not in json.dumps(body)
    app.extensions["provenance"].close()


def test_errors_are_json_with_code_message_and_fields(app, monkeypatch):
    # Routes outside the access table are refused to everyone; these probes are public.
    monkeypatch.setattr(access, "PUBLIC", access.PUBLIC | {"probe.missing", "probe.invalid"})
    probe = Blueprint("probe", __name__)

    @probe.get("/probe/missing")
    def missing():
        raise NotFound("item 01/123 not found")

    @probe.post("/probe/invalid")
    def invalid():
        raise InvalidInput("bad item", {"gtin": "must be 14 digits"})

    app.register_blueprint(probe)
    client = app.test_client()
    response = client.get("/probe/missing")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "not_found",
        "message": "item 01/123 not found",
        "fields": {},
    }
    response = client.post("/probe/invalid")
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"gtin": "must be 14 digits"}
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_generated_secrets_are_private_and_stable(tmp_path):
    data_dir = tmp_path / "data"
    path, created = config.ensure_secrets(data_dir)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = json.loads(path.read_text())
    assert set(first) == set(config.SECRET_SETTINGS)
    _, created_again = config.ensure_secrets(data_dir)
    assert not created_again
    assert json.loads(path.read_text()) == first
    settings = config.build({"DATA_DIR": str(data_dir)})
    config.require_secrets(settings)
    assert settings["OPERATOR_KEY"] == first["OPERATOR_KEY"]


def test_environment_secret_wins_over_the_file(monkeypatch, tmp_path):
    config.ensure_secrets(tmp_path)
    monkeypatch.setenv("PROVENANCE_SECRET_KEY", "from-env")
    assert config.build({"DATA_DIR": str(tmp_path)})["SECRET_KEY"] == "from-env"


def test_corrupt_secrets_file_is_named(tmp_path):
    (tmp_path / config.SECRETS_FILE).write_text("{not json")
    (tmp_path / config.SECRETS_FILE).chmod(0o600)
    with pytest.raises(config.ConfigError, match=r"secrets\.json is not valid JSON"):
        config.build({"DATA_DIR": str(tmp_path)})


def test_cli_commands_on_a_fresh_data_dir(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from provenance_api.cli import cli

    for name in config.SECRET_SETTINGS:
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    runner = CliRunner()

    result = runner.invoke(cli, ["org", "create", "Acme", "--kind", "supplier"], env=env)
    assert result.exit_code == 1  # a configuration error, not a usage error
    assert "PROVENANCE_OPERATOR_KEY" in result.output
    assert "Traceback" not in result.output

    config.ensure_secrets(tmp_path)
    result = runner.invoke(cli, ["chain", "status"], env=env)
    assert result.exit_code == 1
    assert "provenance-api db upgrade" in result.output

    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli, ["chain", "deploy"], env=env)
    assert result.exit_code == 0, result.output
    assert "CustodyLedger: 0x" in result.output
    result = runner.invoke(cli, ["chain", "status", "--json"], env=env)
    status = json.loads(result.output)
    assert set(status["contracts"]) == {"CustodyLedger", "ProductPassport", "TradeEscrow"}
    assert status["embedded"] is True

    result = runner.invoke(
        cli, ["org", "create", "Acme Farms", "--kind", "supplier", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["kind"] == "supplier"
    assert created["api_key"].startswith("pk_")
    result = runner.invoke(cli, ["org", "create", "Acme Farms", "--kind", "carrier"], env=env)
    assert result.exit_code == 1
    assert "already exists" in result.output
    result = runner.invoke(cli, ["org", "create", "X", "--kind", "pirate"], env=env)
    assert result.exit_code == 2
    assert "pirate" in result.output
    for blank_or_forged in ("   ", "Acme\nERROR forged log line"):
        result = runner.invoke(
            cli, ["org", "create", blank_or_forged, "--kind", "supplier"], env=env
        )
        assert result.exit_code == 1
        assert "invalid organization: name: " in result.output
        assert "Traceback" not in result.output

    result = runner.invoke(cli, ["worker", "--once"], env=env)
    assert result.exit_code == 0, result.output
    assert "chain writer for 0x" in result.output
    assert "Example" in runner.invoke(cli, ["--help"], env=env).output


def test_healthz_shows_the_kind_of_a_chain_failure_never_its_url_or_path(tmp_path):
    # A node URL with credentials that does not answer, then an embedded chain whose state
    # directory is a file: the probe says what kind of failure, and nothing an operator
    # would not post publicly.
    secret_url = "http://app:hunter2@127.0.0.1:1/rpc-token-s3cret"
    app = create_app({"TESTING": True, "DATA_DIR": str(tmp_path), "CHAIN_URL": secret_url})
    body = app.test_client().get("/healthz").get_json()
    assert body["chain"]["ok"] is False
    assert body["chain"]["error"] == "the chain node does not answer"
    assert "hunter2" not in json.dumps(body) and "s3cret" not in json.dumps(body)
    app.extensions["provenance"].close()

    data_dir = tmp_path / "embedded"
    data_dir.mkdir()
    (data_dir / "chain").write_text("not a directory")
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir)})
    body = app.test_client().get("/healthz").get_json()
    assert body["chain"]["ok"] is False
    assert str(tmp_path) not in json.dumps(body)
    app.extensions["provenance"].close()
