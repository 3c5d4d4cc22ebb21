"""`firmware-tools ntag424`: personalize NTAG 424 DNA chips for SUN, resume, show their records."""

from __future__ import annotations

import json
from pathlib import Path

import click

from firmware_tools.cli.options import (
    device_option,
    label_fields,
    passphrase,
    passphrase_option,
    tag_in_field,
    timeout_option,
)
from firmware_tools.errors import (
    FormatError,
    FrameError,
    KeyStoreError,
    ReaderTimeout,
    TagNotFound,
)

RESUME_HINT = "firmware-tools ntag424 personalize --resume"


@click.group()
def ntag424() -> None:
    """NTAG 424 DNA chips (SUN)."""


records_option = click.option(
    "--records",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Provisioning records (SQLite) [default: beside the key file, KEY_FILE.ntag424.sqlite3].",
)


def _records_path(records: Path | None, key_file: Path | None) -> Path:
    from firmware_tools.provisioning import default_records_path

    if records is not None:
        return records
    if key_file is None:
        raise click.UsageError("give --records, or --key-file to use the records beside it")
    return default_records_path(key_file)


@ntag424.command("personalize")
@device_option
@timeout_option
@click.option(
    "--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option("--host", help="Resolver host of the URL, e.g. id.example.com")
@click.option("--gtin")
@click.option("--serial", help="Serial number (default: a random one).")
@passphrase_option
@records_option
@click.option(
    "--resume",
    is_flag=True,
    help="Finish a tag an earlier run left half-personalized, with the URL of its record.",
)
def ntag424_personalize(
    connstring: str | None,
    timeout: float,
    key_file: Path,
    host: str | None,
    gtin: str | None,
    serial: str | None,
    passphrase_file: Path | None,
    records: Path | None,
    resume: bool,
) -> None:
    """Turn the blank NTAG 424 DNA in the field into a SUN tag keyed from the key file.

    Writes the URL with SUN placeholders, enables SDM (the MAC covers the URL from its GS1
    path), and replaces the factory keys with keys diversified from the key file's SUN
    master key, key 0 last. Each key change is noted in the provisioning records first,
    so a tag pulled away halfway is finished with --resume. Prints one JSON object.

    \b
    Example:
      firmware-tools ntag424 personalize --device pn532_uart:/dev/ttyUSB0 \\
          --key-file supplier.key --host id.example.com --gtin 4006381333931
      firmware-tools ntag424 personalize --resume --key-file supplier.key
    """
    from firmware_tools.chips.ntag424.diversify import sun_meta_read_key
    from firmware_tools.chips.ntag424.personalize import personalize, tag_keys
    from firmware_tools.formats.gs1 import build_digital_link
    from firmware_tools.keys import load_key_file
    from firmware_tools.nfc import Ntag424
    from firmware_tools.provisioning import RecordStore

    if resume:
        given = [
            name
            for name, value in (("--host", host), ("--gtin", gtin), ("--serial", serial))
            if value
        ]
        if given:
            raise click.UsageError(
                f"--resume takes the URL from the tag's record: drop {', '.join(given)}"
            )
        template = gtin14 = None
    else:
        if host is None or gtin is None:
            raise click.UsageError("--host and --gtin are needed (or --resume)")
        gtin14, serial = label_fields(gtin, serial)
        try:
            base = build_digital_link(host, gtin14, serial)
        except FormatError as exc:
            raise click.BadParameter(str(exc), param_hint="--host") from None
        # Braces never occur in a built link (GS1 character set 82 has none), so the only
        # placeholders are the two SDM ones.
        template = base + "?picc_data={picc_data}&cmac={cmac}"
    keyfile = load_key_file(key_file, passphrase(passphrase_file))
    if keyfile.sun_master_key is None:
        raise KeyStoreError(f"{key_file} is a {keyfile.kind} key file without a SUN master key")
    master = keyfile.sun_master_key
    meta = sun_meta_read_key(master)
    records_path = _records_path(records, key_file)
    # The records are opened (and proven writable) before the reader: a tag is never
    # touched when its key changes could not be noted.
    with (
        RecordStore.open(records_path) as store,
        tag_in_field(connstring, timeout, Ntag424, "is not an NTAG 424 DNA") as found,
    ):
        uid_hex = found.uid.hex().upper()
        record = store.tag(found.uid)
        if resume:
            if record is None:
                raise click.ClickException(
                    f"tag {uid_hex} has no record in {records_path}: nothing to resume"
                    " (personalize it without --resume)"
                )
            if record.supplier != keyfile.address:
                raise click.ClickException(
                    f"tag {uid_hex} was personalized with the key file of {record.supplier},"
                    f" not {keyfile.address} ({key_file})"
                )
        elif record is not None:
            status = f"see `firmware-tools ntag424 status {uid_hex}`"
            if record.complete:
                raise click.ClickException(f"tag {uid_hex} is already personalized ({status})")
            raise click.ClickException(
                f"tag {uid_hex} is half-personalized ({status}); to finish it run `{RESUME_HINT}`"
            )
        else:
            assert template is not None and gtin14 is not None and serial is not None
            record = store.begin(
                found.uid, template, gtin14, serial, keyfile.address, key_version=1
            )
        try:
            summary = personalize(
                found.exchange,
                record.url_template,
                {},
                lambda uid: tag_keys(master, meta, uid),
                uid=found.uid,
                log=store,
                key_version=record.key_version,
            )
        except (TagNotFound, ReaderTimeout, FrameError) as exc:
            # The tag left, or the link lost answers: whatever ran is noted.
            raise click.ClickException(
                f"{exc}; tag {uid_hex} may be half-personalized: its key changes are"
                f" noted in {records_path}; put it back on the reader and run"
                f" `{RESUME_HINT}`"
            ) from None
        store.completed(summary.uid)
    click.echo(
        json.dumps(
            {
                "uid": summary.uid.hex().upper(),
                "gtin": record.gtin,
                "serial": record.serial,
                "url": summary.url,
                "picc_data_offset": summary.picc_data_offset,
                "mac_input_offset": summary.mac_input_offset,
                "mac_offset": summary.mac_offset,
                "changed": list(summary.changed),
                "records": str(records_path),
            }
        )
    )


def _parse_uid(ctx: click.Context, param: click.Parameter, value: str) -> bytes:
    try:
        uid = bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not hex") from None
    if len(uid) != 7:
        raise click.BadParameter(f"an NTAG 424 DNA UID is 7 bytes (14 hex digits), got {len(uid)}")
    return uid


@ntag424.command("status")
@click.argument("uid", callback=_parse_uid)
@records_option
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Look for the records beside this key file (no passphrase needed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ntag424_status(uid: bytes, records: Path | None, key_file: Path | None, as_json: bool) -> None:
    """What the provisioning records say about one tag: its URL and each key's state.

    A key noted pending holds either the factory key or the derived one; `personalize
    --resume` finds out which and finishes. No key is stored in the records: the keys
    are derived from the key file's SUN master key and the UID.

    \b
    Example:
      firmware-tools ntag424 status 04C1D2E3F40580 --key-file supplier.key
      firmware-tools ntag424 status 04C1D2E3F40580 --records tags.sqlite3 --json
    """
    from firmware_tools.provisioning import RecordStore

    records_path = _records_path(records, key_file)
    with RecordStore.open_read_only(records_path) as store:
        record = store.tag(uid)
    if record is None:
        raise click.ClickException(f"tag {uid.hex().upper()} has no record in {records_path}")
    report = record.as_dict()
    if as_json:
        click.echo(json.dumps(report))
        return
    pending = [f"key {k['key_no']}" for k in report["keys"] if k["state"] != "confirmed"]
    state = report["state"] + (f" ({', '.join(pending)} not confirmed)" if pending else "")
    lines = [
        f"NTAG 424 DNA {report['uid']}: {state}",
        f"  url       {report['url_template']}",
        f"  item      GTIN {report['gtin']}, serial {report['serial']}",
        f"  supplier  {report['supplier']} (keys derived from its SUN master key and the UID)",
        f"  started   {report['started_at']}",
        f"  finished  {report['completed_at'] or '-'}",
    ]
    for key in report["keys"]:
        at = f"  {key['at']}" if key["at"] else ""
        lines.append(f"  key {key['key_no']}     version {key['version']}  {key['state']}{at}")
    if pending:
        lines.append(f"  to finish: put the tag on the reader and run `{RESUME_HINT}`")
    click.echo("\n".join(lines))
