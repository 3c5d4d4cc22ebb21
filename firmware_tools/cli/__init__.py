"""The `firmware-tools` command line: key files, QR labels, tag verification and NFC tags.

Thin commands, one module per command group: each parses its options, calls one library
function, prints, and exits 0 (ok), 1 (verification or operation failed) or 2 (usage error,
click's default).
"""

from __future__ import annotations

import click

from firmware_tools.cli import device, doctor, keys, ntag21x, ntag424, qr, tag
from firmware_tools.cli.options import ExpectedErrorsGroup


@click.group(cls=ExpectedErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="provenance", prog_name="firmware-tools")
def main() -> None:
    """Tags for Provenance: key files, signed QR labels, NFC tags, offline verification.

    \b
    Example:
      firmware-tools keys new supplier.key
      firmware-tools qr issue items.csv --key-file supplier.key --host id.example.com --out labels/
      firmware-tools tag verify 'https://id.example.com/01/...?sig=...' --supplier 0xAbC...
    """


for command in (
    keys.keys,
    qr.qr,
    tag.tag,
    device.device,
    doctor.doctor_command,
    ntag21x.ntag21x,
    ntag424.ntag424,
):
    main.add_command(command)
