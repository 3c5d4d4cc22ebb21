"""`firmware-tools device`: provision a reader device (key file and agent config)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from firmware_tools.cli.options import emit, new_file, passphrase, passphrase_option
from firmware_tools.errors import FormatError, KeyStoreError


def _api_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from firmware_tools.formats.gs1 import check_host

    if not value.lower().startswith(("https://", "http://")):
        raise click.BadParameter("must start with https:// or http://")
    try:
        return check_host(value)
    except FormatError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def device() -> None:
    """Reader devices."""


@device.command("provision")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    callback=new_file,
    required=True,
    help="Agent config file to write (JSON).",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    callback=new_file,
    required=True,
    help="Device key file to create (encrypted, mode 0600).",
)
@click.option("--api-url", required=True, callback=_api_url, help="Base URL of the Provenance API.")
@click.option(
    "--device",
    "connstring",
    default="",
    show_default=False,
    help="libnfc connstring of the reader, e.g. pn532_uart:/dev/ttyUSB0 (empty: first found).",
)
@click.option(
    "--outbox",
    type=click.Path(dir_okay=False),
    callback=new_file,
    required=True,
    help="Path of the agent's durable outbox (SQLite file).",
)
@click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the organization's API key the agent posts with (one line).",
)
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def device_provision(
    config_path: Path,
    key_file: Path,
    api_url: str,
    connstring: str,
    outbox: Path,
    api_key_file: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Create a device key and the reader agent's config; print the address to register.

    Both files are new: neither is overwritten, and if the config cannot be written the
    key file is removed again, so that the command can simply be run once more. The config
    names the API key file when it is given (keep it readable by the agent's user only). The
    passphrase file is not named: the agent reads the passphrase as a systemd credential.

    \b
    Example:
      firmware-tools device provision --config agent.json --key-file device.key \\
          --api-url https://api.example.com --device pn532_uart:/dev/ttyUSB0 --outbox outbox.db \\
          --api-key-file api.key
    """
    from firmware_tools.keys import DEVICE, new_key_file, write_new_file

    if config_path.resolve() == key_file.resolve():
        raise click.UsageError("--config and --key-file name the same file")
    for path in (config_path, key_file):
        if path.exists():
            raise KeyStoreError(f"{path} already exists; refusing to overwrite it")
    keyfile = new_key_file(key_file, passphrase(passphrase_file, confirm=True), kind=DEVICE)
    config = {
        "api_url": api_url,
        "device_key_file": str(key_file.resolve()),
        "reader": connstring,
        "outbox": str(outbox.resolve()),
        "device_address": keyfile.address,
    }
    if api_key_file is not None:
        config["api_key_file"] = str(api_key_file.resolve())
    try:
        write_new_file(config_path, (json.dumps(config, indent=2) + "\n").encode(), 0o644)
    except BaseException:
        # A key without its config is of no use, and would make every retry fail.
        key_file.unlink(missing_ok=True)
        raise
    emit(
        {"config": str(config_path), "key_file": str(key_file), "address": keyfile.address},
        as_json,
        f"wrote {config_path} and {key_file}\n"
        f"device address (register it with the API): {keyfile.address}",
    )
