"""`firmware-tools ntag424`: personalize NTAG 424 DNA chips for SUN."""

from __future__ import annotations

import json
from pathlib import Path

import click

from firmware_tools.cli.options import label_fields, passphrase, tag_in_field, tag_writing_options
from firmware_tools.errors import FormatError, KeyStoreError


@click.group()
def ntag424() -> None:
    """NTAG 424 DNA chips (SUN)."""


@ntag424.command("personalize")
@tag_writing_options
def ntag424_personalize(
    connstring: str | None,
    timeout: float,
    key_file: Path,
    host: str,
    gtin: str,
    serial: str | None,
    passphrase_file: Path | None,
) -> None:
    """Turn the blank NTAG 424 DNA in the field into a SUN tag keyed from the key file.

    Writes the URL with SUN placeholders, enables SDM, and replaces the factory keys with
    keys diversified from the key file's SUN master key (key 1, meta-read, shared by the
    supplier's tags). Prints one JSON object.

    \b
    Example:
      firmware-tools ntag424 personalize --device pn532_uart:/dev/ttyUSB0 \\
          --key-file supplier.key --host id.example.com --gtin 4006381333931
    """
    from firmware_tools.chips.ntag424.diversify import sun_meta_read_key
    from firmware_tools.chips.ntag424.personalize import personalize, tag_keys
    from firmware_tools.formats.gs1 import build_digital_link
    from firmware_tools.keys import load_key_file
    from firmware_tools.nfc import Ntag424

    gtin14, serial = label_fields(gtin, serial)
    try:
        base = build_digital_link(host, gtin14, serial)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    keyfile = load_key_file(key_file, passphrase(passphrase_file))
    if keyfile.sun_master_key is None:
        raise KeyStoreError(f"{key_file} is a {keyfile.kind} key file without a SUN master key")
    master = keyfile.sun_master_key
    meta = sun_meta_read_key(master)
    # Braces never occur in a built link (GS1 character set 82 has none), so the only
    # placeholders are the two SDM ones.
    template = base + "?picc_data={picc_data}&cmac={cmac}"
    with tag_in_field(connstring, timeout, Ntag424, "is not an NTAG 424 DNA") as found:
        summary = personalize(found.exchange, template, {}, lambda uid: tag_keys(master, meta, uid))
    click.echo(
        json.dumps(
            {
                "uid": summary.uid.hex().upper(),
                "gtin": gtin14,
                "serial": serial,
                "url": summary.url,
                "picc_data_offset": summary.picc_data_offset,
                "mac_offset": summary.mac_offset,
            }
        )
    )
