"""`firmware-tools doctor`: find the NFC reader and say what is wrong."""

from __future__ import annotations

import json
import sys

import click

from firmware_tools.cli.options import EXIT_FAILED, EXIT_OK, device_option


@click.command("doctor")
@device_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def doctor_command(connstring: str | None, as_json: bool) -> None:
    """Find the NFC reader and say in words what is wrong (libnfc, device, permissions).

    \b
    Example:
      firmware-tools doctor --device pn532_uart:/dev/ttyUSB0
    """
    from firmware_tools.nfc.doctor import doctor, has_errors

    findings = doctor(connstring)
    failed = has_errors(findings)
    if as_json:
        items = [finding.as_dict() for finding in findings]
        click.echo(json.dumps({"ok": not failed, "findings": items}))
    else:
        for finding in findings:
            click.echo(str(finding))
    sys.exit(EXIT_FAILED if failed else EXIT_OK)
