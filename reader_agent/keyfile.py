"""The device key for the daemon: its passphrase from a file, a systemd credential or the
environment, then the key file opened.

`open_device_key` runs before the daemon's other modules are imported: scrypt takes 32 MiB
for a moment, and on top of a small interpreter that peak stays within the 60 MB budget.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from reader_agent.config import AgentConfig, load_device_key
from reader_agent.errors import ConfigError

PASSPHRASE_ENV = "FIRMWARE_TOOLS_PASSPHRASE"  # the same variable as firmware-tools reads


def passphrase_for(config: AgentConfig, environ: Mapping[str, str] | None = None) -> str:
    """The device key's passphrase: `passphrase_file`, else systemd's credential
    `passphrase` (LoadCredential=), else $FIRMWARE_TOOLS_PASSPHRASE."""
    environ = os.environ if environ is None else environ
    path = config.passphrase_file
    if path is None and environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(environ["CREDENTIALS_DIRECTORY"]) / "passphrase"
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    if environ.get(PASSPHRASE_ENV):
        return environ[PASSPHRASE_ENV]
    raise ConfigError(
        f"no passphrase for the device key: set `passphrase_file` in the config or {PASSPHRASE_ENV}"
    )


def open_device_key(config: AgentConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The device's signing key (ConfigError or firmware_tools' KeyStoreError if refused)."""
    return load_device_key(config, passphrase_for(config, environ))
