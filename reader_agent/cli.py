"""The `reader-agent` command: the dock-door daemon's entry point."""

from __future__ import annotations

import json
import sys

import click


@click.group()
@click.version_option(package_name="provenance")
def main() -> None:
    """Read tags at a dock door and upload signed custody handoffs.

    \b
    Example:
      reader-agent doctor --device pn532_uart:/dev/ttyUSB0
    """


@main.command()
@click.option("--device", "connstring", default=None, help="libnfc connstring; default: any.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(connstring: str | None, as_json: bool) -> None:
    """Find the NFC reader and say in words what stops it from working."""
    from firmware_tools.nfc.doctor import doctor as run_doctor
    from firmware_tools.nfc.doctor import has_errors

    findings = run_doctor(connstring)
    if as_json:
        click.echo(json.dumps([finding.as_dict() for finding in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
    sys.exit(1 if has_errors(findings) else 0)
