"""`firmware-tools keys`: supplier and device key files."""

from __future__ import annotations

from pathlib import Path

import click

from firmware_tools.cli.options import emit, new_file, passphrase, passphrase_option
from firmware_tools.errors import KeyStoreError


@click.group()
def keys() -> None:
    """Supplier key files (signing key + SUN master key), encrypted with a passphrase."""


@keys.command("new")
@click.argument("path", type=click.Path(dir_okay=False), callback=new_file)
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def keys_new(path: Path, passphrase_file: Path | None, as_json: bool) -> None:
    """Create a key file with a new secp256k1 signing key and AES-128 SUN master key.

    The file is written with mode 0600 and never overwritten. Register the printed
    address as the supplier's.

    \b
    Example:
      FIRMWARE_TOOLS_PASSPHRASE=... firmware-tools keys new supplier.key
    """
    from firmware_tools.keys import new_key_file

    if path.exists():
        raise KeyStoreError(f"{path} already exists; refusing to overwrite a key file")
    keyfile = new_key_file(path, passphrase(passphrase_file, confirm=True))
    emit(
        {"path": str(path), "address": keyfile.address, "kind": keyfile.kind},
        as_json,
        f"created {path}\naddress: {keyfile.address}",
    )


@keys.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def keys_show(path: Path, passphrase_file: Path | None, as_json: bool) -> None:
    """Open a key file (checks the passphrase) and print its address; never the keys.

    \b
    Example:
      firmware-tools keys show supplier.key --passphrase-file pass.txt
    """
    from firmware_tools.keys import load_key_file

    keyfile = load_key_file(path, passphrase(passphrase_file))
    emit(
        {"path": str(path), "address": keyfile.address, "kind": keyfile.kind},
        as_json,
        f"{path}: {keyfile.kind} key, address {keyfile.address}",
    )
