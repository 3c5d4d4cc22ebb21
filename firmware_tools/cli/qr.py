"""`firmware-tools qr`: sign and render QR labels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from firmware_tools.cli.options import EXIT_FAILED, EXIT_OK, passphrase_option, supplier_keys
from firmware_tools.errors import FormatError


@click.group()
def qr() -> None:
    """Signed QR labels."""


@qr.command("issue")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The supplier's key file (firmware-tools keys new), not a device key.",
)
@click.option("--host", required=True, help="Resolver host of the label URLs, e.g. id.example.com")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the SVG/PNG labels, labels.pdf and labels.csv.",
)
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def qr_issue(
    csv_file: Path,
    key_file: Path,
    host: str,
    out_dir: Path,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Sign and render one label per CSV row; the signature covers every column.

    \b
    Columns (a header row names them, in any order; only gtin is required):
      gtin     GTIN-8, -12, -13 or -14 with its check digit
      serial   AI 21, up to 20 characters; empty: a random one
      lot      AI 10, up to 20 characters
      expiry   AI 17, YYMMDD (DD 00: the end of the month), e.g. 271231
      variant  AI 22, up to 20 characters

    Bad rows are reported by line number and skipped; the exit code is then 1.

    \b
    Example:
      printf 'gtin,serial,lot,expiry\\n4006381333931,,L7,271231\\n' > items.csv
      firmware-tools qr issue items.csv --key-file supplier.key --host id.example.com --out labels
    """
    from firmware_tools.formats.gs1 import check_host
    from firmware_tools.formats.labels import check_renderers, issue_labels, read_items_csv

    try:
        check_host(host)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    check_renderers()  # a missing extra stops here, before a passphrase or a file
    keyfile = supplier_keys(key_file, passphrase_file)
    # Count rows first so that the progress bar has a length; parsing is cheap.
    items, _ = read_items_csv(csv_file)
    show_progress = not as_json and len(items) > 1
    with click.progressbar(
        length=len(items), label="labels", file=sys.stderr, hidden=not show_progress
    ) as bar:
        result = issue_labels(
            csv_file, keyfile.signing_key, host, out_dir, on_label=lambda: bar.update(1)
        )
    summary = {
        "issued": len(result.labels),
        "errors": [{"line": e.line, "reason": e.reason} for e in result.errors],
        "manifest": str(result.manifest),
        "sheet": None if result.sheet is None else str(result.sheet),
        "pages": result.pages,
        "signer": keyfile.address,
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"issued {len(result.labels)} label(s) into {out_dir}")
        if result.sheet is not None:
            click.echo(
                f"sheet: {result.sheet} ({result.pages} page(s)); manifest: {result.manifest}"
            )
    for error in result.errors:
        click.echo(f"line {error.line}: {error.reason}", err=True)
    sys.exit(EXIT_FAILED if result.errors else EXIT_OK)
