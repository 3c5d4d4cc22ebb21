"""Configuration order: defaults, then PROVENANCE_* variables, then the test mapping.

DATA_DIR points at a directory that is never created: no file is touched.
"""

from __future__ import annotations

import pytest

from provenance_api import config


@pytest.fixture
def missing_dir(tmp_path):
    return tmp_path / "never-created"


def test_defaults_derive_paths_and_confirmations(monkeypatch, missing_dir):
    for name in ("DATABASE_URL", "CHAIN_URL", "CONFIRMATIONS", "DATA_DIR"):
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)
    settings = config.build({"DATA_DIR": str(missing_dir)})
    assert settings["DATABASE_URL"] == f"sqlite:///{missing_dir / 'provenance.sqlite3'}"
    assert settings["CONFIRMATIONS"] == 0
    assert settings["CHAIN_URL"] == ""


def test_rpc_chain_defaults_to_two_confirmations(monkeypatch, missing_dir):
    monkeypatch.setenv("PROVENANCE_CHAIN_URL", "http://127.0.0.1:8545")
    assert config.build({"DATA_DIR": str(missing_dir)})["CONFIRMATIONS"] == 2


def test_environment_overrides_defaults_and_test_mapping_overrides_environment(
    monkeypatch, missing_dir
):
    monkeypatch.setenv("PROVENANCE_CONFIRMATIONS", "5")
    monkeypatch.setenv("PROVENANCE_WRITER_BATCH", "7")
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", "postgresql+psycopg://u:pw@h/db")
    settings = config.build({"DATA_DIR": str(missing_dir), "WRITER_BATCH": 3})
    assert settings["CONFIRMATIONS"] == 5  # JSON-decoded, an int
    assert settings["WRITER_BATCH"] == 3
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u:pw@h/db"


def test_missing_secrets_are_all_named(missing_dir):
    settings = config.build({"DATA_DIR": str(missing_dir), "SECRET_KEY": "x"})
    with pytest.raises(config.ConfigError) as error:
        config.require_secrets(settings)
    message = str(error.value)
    assert "PROVENANCE_OPERATOR_KEY" in message
    assert "PROVENANCE_KEY_ENCRYPTION_KEY" in message
    assert "PROVENANCE_SECRET_KEY" not in message
