"""`firmware-tools ntag21x`: write signed, UID-bound URLs to NTAG 213/215/216 stickers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from firmware_tools.cli.options import (
    label_fields,
    supplier_keys,
    tag_in_field,
    tag_writing_options,
)
from firmware_tools.errors import FormatError


@click.group()
def ntag21x() -> None:
    """NTAG 213/215/216 stickers."""


@ntag21x.command("write")
@tag_writing_options
def ntag21x_write(
    connstring: str | None,
    timeout: float,
    key_file: Path,
    host: str,
    gtin: str,
    serial: str | None,
    passphrase_file: Path | None,
) -> None:
    """Write the signed, UID-bound label URL to the NTAG 21x in the field; print one JSON object.

    \b
    Example:
      firmware-tools ntag21x write --device pn532_uart:/dev/ttyUSB0 --key-file supplier.key \\
          --host id.example.com --gtin 4006381333931
    """
    from firmware_tools.chips.ntag21x import image_pages, sign_ntag21x_url
    from firmware_tools.formats.gs1 import check_host
    from firmware_tools.nfc import Ntag21x

    try:
        check_host(host)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    gtin14, serial = label_fields(gtin, serial)
    keyfile = supplier_keys(key_file, passphrase_file)
    with tag_in_field(connstring, timeout, Ntag21x, "is not an NTAG 213/215/216") as found:
        url = sign_ntag21x_url(keyfile.signing_key, host, gtin14, serial, found.uid)
        found.write_ndef_image(image_pages(url, found.layout))
        written = found.read_ndef_url()
    if written != url:
        raise click.ClickException(f"read back {written!r} after writing {url!r}")
    click.echo(
        json.dumps(
            {
                "uid": found.uid.hex().upper(),
                "chip": found.layout.name,
                "gtin": gtin14,
                "serial": serial,
                "url": url,
                "signer": keyfile.address,
            }
        )
    )
