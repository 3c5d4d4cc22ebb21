"""Configuration order: defaults, then PROVENANCE_* variables, then the test mapping.

DATA_DIR points at a directory that is never created: no file is touched.
"""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

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


def test_admin_is_needed_only_where_it_signs_or_is_named(missing_dir):
    """A worker or API server starts without the admin; deploying says what to set."""
    settings = config.build(
        {
            "DATA_DIR": str(missing_dir),
            "SECRET_KEY": "x",
            "OPERATOR_KEY": "0x" + "11" * 32,
            "KEY_ENCRYPTION_KEY": "k",
        }
    )
    assert not settings["ADMIN_KEY"] and not settings["ADMIN_ADDRESS"]
    config.require_secrets(settings)
    with pytest.raises(config.ConfigError, match="PROVENANCE_ADMIN_ADDRESS is set"):
        config.admin_address(settings)
    settings["ADMIN_ADDRESS"] = "0x" + "ab" * 20
    assert config.admin_address(settings) == to_checksum_address("0x" + "ab" * 20)


def test_admin_address_comes_from_the_key_unless_given(missing_dir):
    from eth_account import Account

    key = Account.create()
    settings = {"ADMIN_KEY": key.key.hex(), "ADMIN_ADDRESS": ""}
    assert config.admin_address(settings) == key.address
    other = Account.create().address
    assert config.admin_address({**settings, "ADMIN_ADDRESS": other.lower()}) == other


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "neither PROVENANCE_ADMIN_KEY nor PROVENANCE_ADMIN_ADDRESS is set"),
        ({"ADMIN_ADDRESS": "0x1234"}, "PROVENANCE_ADMIN_ADDRESS is not an Ethereum address"),
        ({"ADMIN_KEY": "zz" * 32}, "PROVENANCE_ADMIN_KEY is not a hex secp256k1 private key"),
        ({"ADMIN_KEY": "00" * 32}, "PROVENANCE_ADMIN_KEY is not a hex secp256k1 private key"),
    ],
)
def test_admin_address_errors_name_the_setting(settings, message):
    with pytest.raises(config.ConfigError, match=message) as error:
        config.admin_address(settings)
    assert "zz" not in str(error.value)  # a bad key is never echoed


def test_new_secrets_give_admin_and_operator_different_keys():
    fresh = config.new_secrets()
    assert set(fresh) == set(config.SECRET_SETTINGS)
    assert fresh["ADMIN_KEY"] != fresh["OPERATOR_KEY"]
