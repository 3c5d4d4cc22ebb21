"""Configuration: defaults, then `PROVENANCE_*` environment variables, then the test mapping.

Nothing here reads the environment at import time; `build` does, when it is called.

Setting (env `PROVENANCE_<NAME>`), default, meaning:

- DATA_DIR, `./instance`: the SQLite file, the embedded chain and the secrets file.
- DATABASE_URL, `sqlite:///<DATA_DIR>/provenance.sqlite3`: or `postgresql+psycopg://...`.
- CHAIN_URL, empty: JSON-RPC endpoint; empty means the embedded chain in DATA_DIR/chain.
- CONFIRMATIONS, 0 embedded / 2 over RPC: blocks on top of a receipt before it counts.
- OPERATOR_KEY, from the secrets file: hex private key that signs every chain write.
- ADMIN_KEY, from the secrets file: hex private key of the contracts' admin, which only grants
  and revokes the operator role (`provenance-api chain operators grant`). To keep it offline,
  set ADMIN_ADDRESS instead and give the key only to those commands (`--admin-key-file`).
  Only deploying and those commands need either; a worker or API server starts without.
- ADMIN_ADDRESS, empty: the admin's address when ADMIN_KEY is kept offline; it wins over
  ADMIN_KEY when both are set.
- SECRET_KEY, from the secrets file: Flask's session secret.
- KEY_ENCRYPTION_KEY, from the secrets file: base64 AES-256 key for organization keys.
- WRITER_POLL_SECONDS, 0.5: how often the chain writer looks for work.
- WRITER_BATCH, 64: most writes signed per tick (the in-flight window).
- WRITER_FEE_BUMP_PERCENT, 12.5: fee increase of a replacement transaction (at least 10).
- WRITER_REBROADCAST_SECONDS, 15: a sent tx the node no longer knows is re-sent after this.
- WRITER_BUMP_SECONDS, 60: a tx still unmined after this is replaced with higher fees.
- WRITER_LEASE_SECONDS, 15: a writer silent this long is presumed dead; another takes over.
- WRITER_GAS_MARGIN_PERCENT, 20: margin added to the node's gas estimate.
- WRITER_FALLBACK_GAS, 1000000: gas limit when estimation reverts (sent anyway, keeps order).
- DEV_FUND_WEI, 10**21: what `run` gives the operator on the embedded chain or anvil.
- MAX_CONTENT_LENGTH, 8 MiB: the largest request body; a larger one answers 413.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flask

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

SECRET_SETTINGS = ("SECRET_KEY", "OPERATOR_KEY", "ADMIN_KEY", "KEY_ENCRYPTION_KEY")
SECRETS_FILE = "secrets.json"

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "instance",
    "DATABASE_URL": "",
    "CHAIN_URL": "",
    "CONFIRMATIONS": None,
    "OPERATOR_KEY": "",
    "ADMIN_KEY": "",
    "ADMIN_ADDRESS": "",
    "SECRET_KEY": "",
    "KEY_ENCRYPTION_KEY": "",
    "WRITER_POLL_SECONDS": 0.5,
    "WRITER_BATCH": 64,
    "WRITER_FEE_BUMP_PERCENT": 12.5,
    "WRITER_REBROADCAST_SECONDS": 15.0,
    "WRITER_BUMP_SECONDS": 60.0,
    "WRITER_LEASE_SECONDS": 15.0,
    "WRITER_GAS_MARGIN_PERCENT": 20,
    "WRITER_FALLBACK_GAS": 1_000_000,
    "DEV_FUND_WEI": 10**21,
    "JSON_SORT_KEYS": False,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
}


class ConfigError(RuntimeError):
    """The configuration is incomplete or inconsistent; the message says what to set."""


def build(test_config: Mapping[str, Any] | None = None, root: str | None = None) -> flask.Config:
    """The effective configuration: defaults, environment, test mapping, then derived values."""
    config = flask.Config(root or os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("PROVENANCE")
    if test_config:
        config.from_mapping(test_config)
    finish(config)
    return config


def finish(config: dict[str, Any]) -> None:
    """Fill the values derived from others: paths, database URL, confirmations, secrets file."""
    data_dir = Path(str(config["DATA_DIR"])).expanduser().resolve()
    config["DATA_DIR"] = str(data_dir)
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{data_dir / 'provenance.sqlite3'}"
    if config.get("CONFIRMATIONS") in (None, ""):
        config["CONFIRMATIONS"] = 2 if config.get("CHAIN_URL") else 0
    config["CONFIRMATIONS"] = int(config["CONFIRMATIONS"])
    stored = read_secrets(data_dir)
    for name in SECRET_SETTINGS:
        if not config.get(name) and stored.get(name):
            config[name] = stored[name]


def missing_secrets(config: Mapping[str, Any]) -> list[str]:
    """Names of the secret settings that are empty, of those every process needs.

    ADMIN_KEY is not one of them: only `chain deploy` and `chain operators` need the admin,
    and they say so (see `admin_address`); a worker or an API server runs without it.
    """
    return [name for name in SECRET_SETTINGS if name != "ADMIN_KEY" and not config.get(name)]


def require_secrets(config: Mapping[str, Any]) -> None:
    """Raise ConfigError naming every missing secret and how to provide it."""
    missing = missing_secrets(config)
    if missing:
        names = ", ".join(f"PROVENANCE_{name}" for name in missing)
        raise ConfigError(
            f"missing secrets: {names}. Set them in the environment, or run "
            f"`provenance-api run` once to generate {Path(config['DATA_DIR']) / SECRETS_FILE}."
        )


def new_secrets() -> dict[str, str]:
    """Fresh random values for every secret setting."""
    import base64

    from eth_account import Account

    return {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "OPERATOR_KEY": Account.create().key.hex(),
        "ADMIN_KEY": Account.create().key.hex(),
        "KEY_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def admin_address(config: Mapping[str, Any]) -> str:
    """The contracts' admin: ADMIN_ADDRESS, else the address of ADMIN_KEY (checksummed)."""
    from eth_utils import is_address, to_checksum_address

    address = str(config.get("ADMIN_ADDRESS") or "")
    if address:
        if not is_address(address):
            raise ConfigError(f"PROVENANCE_ADMIN_ADDRESS is not an Ethereum address: {address!r}")
        return to_checksum_address(address)
    if config.get("ADMIN_KEY"):
        return account_from_key(config["ADMIN_KEY"], "PROVENANCE_ADMIN_KEY").address
    raise ConfigError(
        "neither PROVENANCE_ADMIN_KEY nor PROVENANCE_ADMIN_ADDRESS is set: the contracts need "
        "an admin (set the address to keep its key offline)"
    )


def account_from_key(key: str, name: str) -> LocalAccount:
    """The eth-account LocalAccount of hex private key `key`; ConfigError naming `name` if bad."""
    from eth_account import Account

    try:
        return Account.from_key(str(key).strip())
    except (ValueError, TypeError):
        raise ConfigError(f"{name} is not a hex secp256k1 private key") from None


def read_secrets(data_dir: Path) -> dict[str, str]:
    """The secrets file in `data_dir`, or {} when there is none."""
    path = data_dir / SECRETS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return {str(key): str(value) for key, value in loaded.items()}


def ensure_secrets(data_dir: Path) -> tuple[Path, bool]:
    """Create DATA_DIR and its secrets file (mode 0600) unless present; (path, created)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRETS_FILE
    stored = read_secrets(data_dir)
    missing = {k: v for k, v in new_secrets().items() if not stored.get(k)}
    if not missing:
        return path, False
    stored.update(missing)
    # Written under a temporary name with 0600 from the start, then renamed: never readable
    # by others and never half-written.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(stored, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path, True
