"""Configuration: defaults, then `PROVENANCE_*` environment variables, then the test mapping.

Nothing here reads the environment at import time; `build` does, when it is called, and
checks every value (`NUMBERS` holds the numeric settings' types and ranges).

Setting (env `PROVENANCE_<NAME>`), default, meaning:

- DATA_DIR, `./instance`: the SQLite file, the embedded chain and the secrets file.
- DATABASE_URL, `sqlite:///<DATA_DIR>/provenance.sqlite3`: or `postgresql+psycopg://...`
  (`postgresql://` and `postgres://` mean the same).
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
- KEY_ENCRYPTION_KEY, from the secrets file: base64 AES-256 key for organization keys (and,
  through a key derived from it, for trades' data keys).
- WRITER_POLL_SECONDS, 0.5: how often the chain writer looks for work.
- WRITER_BATCH, 64: most writes signed per tick.
- WRITER_FEE_BUMP_PERCENT, 12.5: fee increase of a replacement transaction (at least 10).
- WRITER_REBROADCAST_SECONDS, 15: a sent tx the node no longer knows is re-sent after this.
- WRITER_BUMP_SECONDS, 60: a tx still unmined after this is replaced with higher fees.
- WRITER_LEASE_SECONDS, 15: a writer silent this long is presumed dead; another takes over.
- WRITER_GAS_MARGIN_PERCENT, 20: margin added to the node's gas estimate.
- WRITER_FALLBACK_GAS, 1000000: gas limit when estimation reverts (sent anyway, keeps order).
- WRITER_MAX_FEE_PER_GAS_WEI, 500 gwei: no transaction offers more per gas (0: no cap).
- WRITER_MAX_FEE_PER_WRITE_WEI, 10**17 (0.1 ether): nor more than this in all (0: no cap).
- WRITER_WINDOW, 256: most writes sent and not yet mined (mined ones hold no slot).
- DEV_FUND_WEI, 10**21: what `run` gives the operator on the embedded chain or anvil.
- MAX_CONTENT_LENGTH, 8 MiB: the largest request body; a larger one answers 413.
- CAPTURE_MAX_EVENTS, 10000: most events in one EPCIS document sent to
  POST /v1/epcis/capture; more answers 413 (the body is bounded by MAX_CONTENT_LENGTH).
- ANCHOR_BATCH_MAX, 1000: most events in one anchored Merkle batch (a full batch closes at once).
- ANCHOR_MAX_AGE_SECONDS, 2: a batch closes when its oldest unanchored event is this old.
- TRADE_SWEEP_SECONDS, 30: how often the trade sweeper (in `run` and `worker`) refreshes
  live trades and owes the timeout of those whose window passed; 0: never (parties then
  POST /timeout themselves).
- TRADE_SWEEP_GRACE_SECONDS, 5: the sweeper owes a timeout only this long after the window's
  end, so that the chain's clock has passed it too (the contract's timeout reverts before).
- TRADE_SWEEP_BATCH, 100: most trades one sweep refreshes (the longest unrefreshed first).
- EVENT_MAX_SKEW_SECONDS, 300: a custody event dated further than this in the future (by the
  server's clock) is rejected; devices' clocks drift.
- ANOMALY_MAX_SPEED_KMH, 900; ANOMALY_TRAVEL_SLACK_KM, 50; ANOMALY_RESALE_SCANNERS, 5;
  ANOMALY_RESALE_SCANS, 200; ANOMALY_SCAN_WINDOW_DAYS, 90: the verification's anomaly
  rules (services/anomalies.py `Thresholds`).
- CLAIM_CODE_DAYS, 30: how long a buyer's one-time claim code stays valid.
- CLAIM_ATTEMPTS, 5; CLAIM_WINDOW_SECONDS, 900: at most this many claim attempts per item in
  a window that begins with the first; further ones answer 429 until it ends.
- EXPLORER_TX_URL, empty: the buyer's page links each anchoring transaction to this block
  explorer page, `{tx}` standing for the hash ("https://explorer.example/tx/{tx}"); empty:
  no link.
- PUBLIC_RPC_URL, empty: a public read-only JSON-RPC endpoint of the chain, for the buyer's
  page to read anchored roots itself ("verify it yourself"); the page's Content-Security-Policy
  lets it connect there and nowhere else but its own site.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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
    "WRITER_MAX_FEE_PER_GAS_WEI": 500 * 10**9,
    "WRITER_MAX_FEE_PER_WRITE_WEI": 10**17,
    "WRITER_WINDOW": 256,
    "DEV_FUND_WEI": 10**21,
    "JSON_SORT_KEYS": False,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "EVENT_MAX_SKEW_SECONDS": 300,
    "ANOMALY_MAX_SPEED_KMH": 900.0,
    "ANOMALY_TRAVEL_SLACK_KM": 50.0,
    "ANOMALY_RESALE_SCANNERS": 5,
    "ANOMALY_RESALE_SCANS": 200,
    "ANOMALY_SCAN_WINDOW_DAYS": 90,
    "ANCHOR_BATCH_MAX": 1000,
    "ANCHOR_MAX_AGE_SECONDS": 2.0,
    "CLAIM_CODE_DAYS": 30,
    "CLAIM_ATTEMPTS": 5,
    "CLAIM_WINDOW_SECONDS": 900,
    "EXPLORER_TX_URL": "",
    "PUBLIC_RPC_URL": "",
    "CAPTURE_MAX_EVENTS": 10_000,
    "TRADE_SWEEP_SECONDS": 30.0,
    "TRADE_SWEEP_GRACE_SECONDS": 5,
    "TRADE_SWEEP_BATCH": 100,
}


@dataclass(frozen=True)
class Number:
    """The type and inclusive range of a numeric setting."""

    kind: type[int] | type[float]
    minimum: float
    maximum: float | None = None

    def describe(self) -> str:
        """The rule in words, for error messages."""
        what = "a whole number" if self.kind is int else "a number"
        if self.maximum is None:
            return f"{what} of at least {_shown(self.minimum)}"
        return f"{what} from {_shown(self.minimum)} to {_shown(self.maximum)}"


def _shown(bound: float) -> str:
    if isinstance(bound, int) and bound >= 2**32 and (bound + 1).bit_count() == 1:
        return f"2**{bound.bit_length()} - 1"  # a word size, e.g. uint256
    return f"{bound:g}"


DAY = 86_400.0

# Every numeric setting, checked in one place (`check_number`) before anything uses it.
NUMBERS: dict[str, Number] = {
    "CONFIRMATIONS": Number(int, 0, 1000),
    "WRITER_POLL_SECONDS": Number(float, 0.01, 3600),
    "WRITER_BATCH": Number(int, 1, 10_000),
    "WRITER_FEE_BUMP_PERCENT": Number(float, 10, 1000),
    "WRITER_REBROADCAST_SECONDS": Number(float, 0.01, DAY),
    "WRITER_BUMP_SECONDS": Number(float, 0.01, DAY),
    "WRITER_LEASE_SECONDS": Number(float, 0.01, DAY),
    "WRITER_GAS_MARGIN_PERCENT": Number(int, 0, 1000),
    "WRITER_FALLBACK_GAS": Number(int, 21_000, 2**63 - 1),
    "WRITER_MAX_FEE_PER_GAS_WEI": Number(int, 0, 2**256 - 1),
    "WRITER_MAX_FEE_PER_WRITE_WEI": Number(int, 0, 2**256 - 1),
    "WRITER_WINDOW": Number(int, 1, 100_000),
    "DEV_FUND_WEI": Number(int, 0, 2**256 - 1),
    "MAX_CONTENT_LENGTH": Number(int, 1, 2**30),
    "EVENT_MAX_SKEW_SECONDS": Number(int, 0, DAY),
    "ANCHOR_BATCH_MAX": Number(int, 1, 65_536),
    "CAPTURE_MAX_EVENTS": Number(int, 1, 1_000_000),
    "ANCHOR_MAX_AGE_SECONDS": Number(float, 0, DAY),
    "ANOMALY_MAX_SPEED_KMH": Number(float, 1, 100_000),
    "ANOMALY_TRAVEL_SLACK_KM": Number(float, 0, 20_000),
    "ANOMALY_RESALE_SCANNERS": Number(int, 1, 1_000_000),
    "ANOMALY_RESALE_SCANS": Number(int, 1, 1_000_000),
    "ANOMALY_SCAN_WINDOW_DAYS": Number(int, 1, 3650),
    "CLAIM_CODE_DAYS": Number(int, 1, 3650),
    "CLAIM_ATTEMPTS": Number(int, 1, 1000),
    "CLAIM_WINDOW_SECONDS": Number(int, 1, 30 * DAY),
    "TRADE_SWEEP_SECONDS": Number(float, 0, DAY),
    "TRADE_SWEEP_GRACE_SECONDS": Number(int, 0, 3600),
    "TRADE_SWEEP_BATCH": Number(int, 1, 10_000),
}

# The databases we ship a driver for: backend -> the one accepted SQLAlchemy driver.
DATABASE_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
DATABASE_HINT = "use sqlite:///path/to/file.sqlite3 or postgresql+psycopg://user@host/dbname"

# Processes creating secrets.json take turns holding an flock on this file in DATA_DIR.
SECRETS_LOCK = "secrets.lock"


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
    """Check every value and fill those derived from others; ConfigError names what is wrong."""
    data_dir = Path(str(config["DATA_DIR"])).expanduser().resolve()
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise ConfigError(
            f"PROVENANCE_DATA_DIR {data_dir} is a file, not a directory; point it at a "
            "directory (it is created when missing)"
        )
    config["DATA_DIR"] = str(data_dir)
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{data_dir / 'provenance.sqlite3'}"
    config["DATABASE_URL"] = check_database_url(str(config["DATABASE_URL"]))
    if config.get("CONFIRMATIONS") in (None, ""):
        config["CONFIRMATIONS"] = 2 if config.get("CHAIN_URL") else 0
    for name, rule in NUMBERS.items():
        config[name] = check_number(name, config[name], rule)
    config["EXPLORER_TX_URL"] = check_web_url(
        "EXPLORER_TX_URL", config.get("EXPLORER_TX_URL"), "{tx}"
    )
    config["PUBLIC_RPC_URL"] = check_web_url("PUBLIC_RPC_URL", config.get("PUBLIC_RPC_URL"))
    stored = read_secrets(data_dir)
    for name in SECRET_SETTINGS:
        if not config.get(name) and stored.get(name):
            config[name] = stored[name]


def check_number(name: str, value: Any, rule: Number) -> int | float:
    """`value` as the setting's type within its range, or ConfigError naming the variable."""
    number = _as_number(value, rule.kind)
    too_big = rule.maximum is not None and number is not None and number > rule.maximum
    if number is None or number < rule.minimum or too_big:
        raise ConfigError(f"PROVENANCE_{name} must be {rule.describe()}, not {value!r}")
    return number


def check_web_url(name: str, value: Any, placeholder: str | None = None) -> str:
    """`value` as an http(s) URL (holding `placeholder`), "" when unset; or ConfigError."""
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"PROVENANCE_{name} must be an http(s) URL, not {text!r}")
    if placeholder is not None and placeholder not in text:
        raise ConfigError(
            f"PROVENANCE_{name} must hold {placeholder} where the transaction hash goes,"
            f" e.g. https://explorer.example/tx/{placeholder}; got {text!r}"
        )
    return text


def _as_number(value: Any, kind: type[int] | type[float]) -> int | float | None:
    # from_prefixed_env has already JSON-decoded what it could: "5" is 5, "abc" stays text.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            return None
    if isinstance(value, float) and (
        not math.isfinite(value) or (kind is int and not value.is_integer())
    ):
        return None
    return kind(value)


def check_database_url(url: str) -> str:
    """`url` if it names a database we support (`postgresql://` spelled out), or ConfigError."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"PROVENANCE_DATABASE_URL is not a database URL; {DATABASE_HINT}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    shown = parsed.render_as_string(hide_password=True)
    if backend not in DATABASE_DRIVERS:
        raise ConfigError(
            f"PROVENANCE_DATABASE_URL {shown}: {backend} is not supported; {DATABASE_HINT}"
        )
    if driver and driver != DATABASE_DRIVERS[backend]:
        raise ConfigError(
            f"PROVENANCE_DATABASE_URL {shown}: the driver {driver} is not installed; "
            f"{DATABASE_HINT}"
        )
    if backend == "postgresql" and not driver:
        # SQLAlchemy's default for postgresql:// is psycopg2, which we do not ship.
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


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
    """The secrets file in `data_dir`, or {} when there is none.

    Refused (ConfigError) when it is a link, not a regular file, or open to other users.
    """
    path = data_dir / SECRETS_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(
                f"{path} is a symbolic link; replace it with the file itself (mode 0600)"
            ) from None
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd) as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if status.st_mode & 0o077:
            raise ConfigError(
                f"{path} is open to other users (mode {stat.S_IMODE(status.st_mode):04o}); "
                f"run `chmod 600 {path}`, and replace the secrets if others may have read them"
            )
        text = handle.read()
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return {str(key): str(value) for key, value in loaded.items()}


def ensure_data_dir(data_dir: Path) -> None:
    """Create DATA_DIR (mode 0700) unless present; ConfigError when this user cannot write it."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"PROVENANCE_DATA_DIR {data_dir} is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot create PROVENANCE_DATA_DIR {data_dir}: {exc.strerror}") from None
    # access(2) also says no on a read-only file system, even to root.
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise ConfigError(
            f"PROVENANCE_DATA_DIR {data_dir} is not writable by this user; make it writable "
            "or set PROVENANCE_DATA_DIR to a directory that is"
        )


def ensure_secrets(data_dir: Path) -> tuple[Path, bool]:
    """Create DATA_DIR and its secrets file (mode 0600) unless complete; (path, created).

    Processes starting together take turns under a lock on DATA_DIR/secrets.lock, so the
    first one writes the file and every one ends up with the secrets on disk.
    """
    path = data_dir / SECRETS_FILE
    if path.is_file() and not missing_secrets(read_secrets(data_dir)):
        return path, False
    ensure_data_dir(data_dir)
    try:
        lock = os.open(
            data_dir / SECRETS_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise ConfigError(f"cannot lock {data_dir / SECRETS_LOCK}: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = read_secrets(data_dir)
        missing = {k: v for k, v in new_secrets().items() if not stored.get(k)}
        if not missing:
            return path, False
        _write_private(path, json.dumps({**stored, **missing}, indent=2))
        return path, True
    finally:
        os.close(lock)  # releases the flock


def _write_private(path: Path, text: str) -> None:
    # A fresh name created exclusively (O_EXCL, O_NOFOLLOW) with mode 0600: no stale file's
    # mode and no planted link can be reused. Renamed into place, so never half-written.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
