"""`provenance-api chain operators grant|revoke`: the admin key, kept apart from the operator's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from provenance_api import chain, config
from provenance_api.chain import roles
from provenance_api.cli import cli

CONTRACTS = {"CustodyLedger", "ProductPassport", "TradeEscrow"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*config.SECRET_SETTINGS, "ADMIN_ADDRESS", "CHAIN_URL", "DATABASE_URL"):
        monkeypatch.delenv(f"PROVENANCE_{name}", raising=False)


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env)


def deploy(env: dict[str, str]) -> dict[str, str]:
    assert invoke(env, "db", "upgrade").exit_code == 0
    result = invoke(env, "chain", "deploy")
    assert result.exit_code == 0, result.output
    status = json.loads(invoke(env, "chain", "status", "--json").output)
    return status["contracts"]


def role_holders(data_dir: Path, addresses: dict[str, str], account: str) -> dict[str, tuple]:
    """name -> (is admin, is operator) of `account`, read straight from the chain."""
    w3 = chain.connect(None, data_dir / "chain")
    try:
        held = {}
        for name, address in addresses.items():
            contract = chain.contract(w3, name, address)
            is_admin = contract.functions.hasRole(roles.ADMIN_ROLE, account).call()
            held[name] = (is_admin, roles.is_operator(contract, account))
        return held
    finally:
        chain.close(w3)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_embedded_default_admin_key_is_generated_and_grants(clean_env: None, tmp_path: Path):
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    secrets = json.loads((tmp_path / config.SECRETS_FILE).read_text())
    admin = Account.from_key(secrets["ADMIN_KEY"]).address
    operator = Account.from_key(secrets["OPERATOR_KEY"]).address
    assert admin != operator
    addresses = deploy(env)
    assert role_holders(tmp_path, addresses, admin) == dict.fromkeys(CONTRACTS, (True, False))
    assert role_holders(tmp_path, addresses, operator) == dict.fromkeys(CONTRACTS, (False, True))

    new = Account.create().address
    result = invoke(env, "chain", "operators", "grant", new, "--json")
    assert result.exit_code == 0, result.output
    granted = json.loads(result.output)
    assert granted["operator_role"] == "granted"
    assert set(granted["contracts"]) == CONTRACTS
    assert all(entry["transaction"].startswith("0x") for entry in granted["contracts"].values())
    assert role_holders(tmp_path, addresses, new) == dict.fromkeys(CONTRACTS, (False, True))

    again = invoke(env, "chain", "operators", "grant", new)
    assert again.exit_code == 0, again.output
    assert again.output.count("already an operator") == len(CONTRACTS)

    result = invoke(env, "chain", "operators", "revoke", new)
    assert result.exit_code == 0, result.output
    assert result.output.count("operator role revoked from") == len(CONTRACTS)
    assert role_holders(tmp_path, addresses, new) == dict.fromkeys(CONTRACTS, (False, False))


def test_revoking_the_services_own_operator_needs_force(clean_env: None, tmp_path: Path):
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    operator = Account.from_key(json.loads((tmp_path / "secrets.json").read_text())["OPERATOR_KEY"])
    addresses = deploy(env)
    line = one_line_error(invoke(env, "chain", "operators", "revoke", operator.address.lower()))
    assert "own OPERATOR_KEY" in line and "--force" in line
    assert role_holders(tmp_path, addresses, operator.address)["CustodyLedger"] == (False, True)
    result = invoke(env, "chain", "operators", "revoke", operator.address, "--force")
    assert result.exit_code == 0, result.output
    assert role_holders(tmp_path, addresses, operator.address)["CustodyLedger"] == (False, False)


@pytest.fixture
def offline_admin(clean_env: None, tmp_path: Path) -> tuple[dict[str, str], Path, object]:
    """Secrets in the environment, the admin named by address only, its key in a file."""
    admin = Account.create()
    key_file = tmp_path / "admin.key"
    key_file.write_text(admin.key.hex() + "\n")
    env = {
        "PROVENANCE_DATA_DIR": str(tmp_path / "data"),
        "PROVENANCE_SECRET_KEY": "s",
        "PROVENANCE_OPERATOR_KEY": Account.create().key.hex(),
        "PROVENANCE_KEY_ENCRYPTION_KEY": config.new_secrets()["KEY_ENCRYPTION_KEY"],
        "PROVENANCE_ADMIN_ADDRESS": admin.address,
    }
    return env, key_file, admin


def test_offline_admin_signs_only_with_the_key_file(offline_admin, tmp_path: Path) -> None:
    env, key_file, admin = offline_admin
    addresses = deploy(env)
    data_dir = tmp_path / "data"
    assert role_holders(data_dir, addresses, admin.address) == dict.fromkeys(
        CONTRACTS, (True, False)
    )
    new = Account.create().address

    line = one_line_error(invoke(env, "chain", "operators", "grant", new))
    assert "no admin key" in line and "--admin-key-file" in line

    other = tmp_path / "other.key"
    other.write_text(Account.create().key.hex())
    line = one_line_error(
        invoke(env, "chain", "operators", "grant", new, "--admin-key-file", str(other))
    )
    assert f"PROVENANCE_ADMIN_ADDRESS is {admin.address}" in line

    result = invoke(env, "chain", "operators", "grant", new, "--admin-key-file", str(key_file))
    assert result.exit_code == 0, result.output
    assert role_holders(data_dir, addresses, new) == dict.fromkeys(CONTRACTS, (False, True))


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the admin key file"), ("not a key\n", "is not a hex secp256k1")],
)
def test_a_bad_admin_key_file_is_one_line(offline_admin, content, message) -> None:
    env, key_file, _ = offline_admin
    deploy(env)
    if content is None:
        key_file.unlink()
    else:
        key_file.write_text(content)
    args = ["chain", "operators", "grant", Account.create().address]
    line = one_line_error(invoke(env, *args, "--admin-key-file", str(key_file)))
    assert message in line
    assert "not a key" not in line  # the key file's content is never echoed


def test_a_key_that_is_not_the_admin_changes_nothing(clean_env: None, tmp_path: Path) -> None:
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    addresses = deploy(env)
    impostor = Account.create()
    new = Account.create().address
    result = invoke(
        {**env, "PROVENANCE_ADMIN_KEY": impostor.key.hex()}, "chain", "operators", "grant", new
    )
    line = one_line_error(result)
    assert f"{impostor.address} is not the admin of" in line
    assert role_holders(tmp_path, addresses, new) == dict.fromkeys(CONTRACTS, (False, False))


def test_bad_address_and_missing_contracts_are_one_line(clean_env: None, tmp_path: Path) -> None:
    env = {"PROVENANCE_DATA_DIR": str(tmp_path)}
    config.ensure_secrets(tmp_path)
    assert invoke(env, "db", "upgrade").exit_code == 0
    line = one_line_error(invoke(env, "chain", "operators", "grant", Account.create().address))
    assert "not deployed" in line and "chain deploy" in line
    deploy(env)
    line = one_line_error(invoke(env, "chain", "operators", "grant", "0x1234"))
    assert "not an Ethereum address: '0x1234'" in line


def test_admin_address_must_be_an_address(clean_env: None, tmp_path: Path) -> None:
    env = {"PROVENANCE_DATA_DIR": str(tmp_path), "PROVENANCE_ADMIN_ADDRESS": "0xnope"}
    config.ensure_secrets(tmp_path)
    assert invoke(env, "db", "upgrade").exit_code == 0
    line = one_line_error(invoke(env, "chain", "deploy"))
    assert "PROVENANCE_ADMIN_ADDRESS is not an Ethereum address" in line
