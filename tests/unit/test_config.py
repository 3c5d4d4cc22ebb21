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


@pytest.mark.parametrize("name", sorted(config.NUMBERS))
def test_a_non_numeric_setting_is_refused_naming_its_variable(monkeypatch, missing_dir, name):
    monkeypatch.setenv(f"PROVENANCE_{name}", "lots")
    with pytest.raises(config.ConfigError, match=f"PROVENANCE_{name} must be .*'lots'"):
        config.build({"DATA_DIR": str(missing_dir)})


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("CONFIRMATIONS", "-1"),
        ("WRITER_BATCH", "0"),
        ("WRITER_BATCH", "2.5"),
        ("WRITER_POLL_SECONDS", "0"),
        ("WRITER_POLL_SECONDS", "NaN"),  # JSON-decodes to a float that passes `<` checks
        ("WRITER_LEASE_SECONDS", "Infinity"),
        ("WRITER_FEE_BUMP_PERCENT", "5"),
        ("WRITER_FALLBACK_GAS", "true"),  # JSON-decodes to True, an int in Python
        ("DEV_FUND_WEI", "-1"),
        ("DEV_FUND_WEI", str(2**256)),
    ],
)
def test_a_number_out_of_range_is_refused(monkeypatch, missing_dir, name, text):
    monkeypatch.setenv(f"PROVENANCE_{name}", text)
    with pytest.raises(config.ConfigError, match=f"PROVENANCE_{name} must be"):
        config.build({"DATA_DIR": str(missing_dir)})


def test_numbers_are_converted_to_their_type(monkeypatch, missing_dir):
    monkeypatch.setenv("PROVENANCE_DEV_FUND_WEI", "1e21")
    monkeypatch.setenv("PROVENANCE_WRITER_POLL_SECONDS", "2")
    settings = config.build({"DATA_DIR": str(missing_dir), "WRITER_BATCH": " 7 "})
    assert settings["DEV_FUND_WEI"] == 10**21
    assert type(settings["DEV_FUND_WEI"]) is int
    assert settings["WRITER_POLL_SECONDS"] == 2.0
    assert type(settings["WRITER_POLL_SECONDS"]) is float
    assert settings["WRITER_BATCH"] == 7


def test_every_numeric_setting_has_a_range():
    # A new numeric setting must say what it accepts, or it goes unchecked.
    numeric = {
        name
        for name, value in config.DEFAULTS.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    assert numeric | {"CONFIRMATIONS"} == set(config.NUMBERS)
    for name, rule in config.NUMBERS.items():
        default = config.DEFAULTS[name]
        if default is not None:
            assert config.check_number(name, default, rule) == default


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "not a database URL"),
        ("mysql://app:hunter2@db/provenance", "mysql is not supported"),
        ("postgresql+psycopg2://app@db/provenance", "driver psycopg2 is not installed"),
        ("sqlite+aiosqlite:///x.sqlite3", "driver aiosqlite is not installed"),
    ],
)
def test_an_unsupported_database_url_is_refused(monkeypatch, missing_dir, url, expected):
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", url)
    with pytest.raises(config.ConfigError, match="PROVENANCE_DATABASE_URL") as error:
        config.build({"DATA_DIR": str(missing_dir)})
    assert expected in str(error.value)
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_plain_postgresql_url_means_our_driver(monkeypatch, missing_dir, scheme):
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", f"{scheme}://app:p%40ss@db:5433/provenance")
    url = config.build({"DATA_DIR": str(missing_dir)})["DATABASE_URL"]
    assert url == "postgresql+psycopg://app:p%40ss@db:5433/provenance"


def test_the_pages_explorer_and_rpc_urls_are_checked(missing_dir):
    settings = config.build(
        {
            "DATA_DIR": str(missing_dir),
            "EXPLORER_TX_URL": "https://explorer.example/tx/{tx}",
            "PUBLIC_RPC_URL": " https://rpc.example/ ",
        }
    )
    assert settings["EXPLORER_TX_URL"] == "https://explorer.example/tx/{tx}"
    assert settings["PUBLIC_RPC_URL"] == "https://rpc.example/"
    unset = config.build({"DATA_DIR": str(missing_dir)})
    assert (unset["EXPLORER_TX_URL"], unset["PUBLIC_RPC_URL"]) == ("", "")
    with pytest.raises(config.ConfigError, match=r"EXPLORER_TX_URL must hold \{tx\}"):
        config.build({"DATA_DIR": str(missing_dir), "EXPLORER_TX_URL": "https://x.example/tx/"})
    with pytest.raises(config.ConfigError, match="PUBLIC_RPC_URL must be an http"):
        config.build({"DATA_DIR": str(missing_dir), "PUBLIC_RPC_URL": "javascript:alert(1)"})
