"""The `firmware-tools` command line: key files, QR labels, tag verification and NFC tags.

Thin commands: each parses its options, calls one library function, prints, and exits
0 (ok), 1 (verification or operation failed) or 2 (usage error, click's default).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from firmware_tools.errors import (
    FirmwareToolsError,
    FormatError,
    InvalidTag,
    KeyStoreError,
)

PASSPHRASE_ENV = "FIRMWARE_TOOLS_PASSPHRASE"
EXIT_OK, EXIT_FAILED = 0, 1  # and 2 for usage errors, click's own


class _Group(click.Group):
    """A group whose commands report expected errors as one line on stderr, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UnicodeDecodeError as exc:
            raise click.ClickException(f"a file is not UTF-8 text: {exc.reason}") from None
        except (FirmwareToolsError, OSError) as exc:
            message = (
                str(exc)
                if not isinstance(exc, OSError) or not exc.strerror
                else (f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror)
            )
            raise click.ClickException(message) from None


def _passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    """From --passphrase-file, else $FIRMWARE_TOOLS_PASSPHRASE, else an interactive prompt."""
    if passphrase_file is not None:
        text = passphrase_file.read_text(encoding="utf-8")
        # Only line breaks are dropped: spaces may be part of a passphrase.
        return text.rstrip("\r\n")
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    try:
        return click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    except click.Abort:  # end of input: nobody at a terminal to ask
        raise click.UsageError(
            f"no passphrase: use --passphrase-file or set {PASSPHRASE_ENV}"
        ) from None


passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding the key file passphrase (else ${PASSPHRASE_ENV}, else a prompt).",
)


def _hex_bytes(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter("must be hex digits") from None


def _hex_key(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    key = _hex_bytes(ctx, param, value)
    if key is not None and len(key) != 16:
        raise click.BadParameter(f"must be 16 bytes (32 hex digits), got {len(key)} bytes")
    return key


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from firmware_tools.qr import address_bytes

    try:
        address_bytes(value)
    except FormatError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _emit(data: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="provenance", prog_name="firmware-tools")
def main() -> None:
    """Tags for Provenance: key files, signed QR labels, NFC tags, offline verification.

    \b
    Example:
      firmware-tools keys new supplier.key
      firmware-tools qr issue items.csv --key-file supplier.key --host id.example.com --out labels/
      firmware-tools tag verify 'https://id.example.com/01/...?sig=...' --supplier 0xAbC...
    """


# --- keys -----------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Supplier key files (signing key + SUN master key), encrypted with a passphrase."""


@keys.command("new")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
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
    keyfile = new_key_file(path, _passphrase(passphrase_file, confirm=True))
    _emit(
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

    keyfile = load_key_file(path, _passphrase(passphrase_file))
    _emit(
        {"path": str(path), "address": keyfile.address, "kind": keyfile.kind},
        as_json,
        f"{path}: {keyfile.kind} key, address {keyfile.address}",
    )


# --- qr ---------------------------------------------------------------------------------


@main.group()
def qr() -> None:
    """Signed QR labels."""


@qr.command("issue")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
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
    """Sign and render one label per CSV row (columns gtin, serial, lot, expiry).

    An empty serial gets a random one. Bad rows are reported by line number and skipped;
    the exit code is then 1.

    \b
    Example:
      printf 'gtin,serial\\n4006381333931,\\n' > items.csv
      firmware-tools qr issue items.csv --key-file supplier.key --host id.example.com --out labels
    """
    from firmware_tools.gs1 import check_host
    from firmware_tools.keys import load_key_file
    from firmware_tools.labels import issue_labels, read_items_csv

    try:
        check_host(host)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    keyfile = load_key_file(key_file, _passphrase(passphrase_file))
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


# --- tag verify -----------------------------------------------------------------------


@main.group()
def tag() -> None:
    """Check what a tag says."""


def _is_sun_url(url: str) -> bool:
    """Whether the query string names the SUN parameters picc_data and cmac."""
    names = {pair.partition("=")[0] for pair in url.partition("?")[2].split("#")[0].split("&")}
    return {"picc_data", "cmac"} <= names


def _sun_keys(
    meta_key: bytes | None,
    file_key: bytes | None,
    key_file: Path | None,
    passphrase_file: Path | None,
) -> tuple[bytes, Any]:
    if key_file is not None:
        if meta_key is not None or file_key is not None:
            raise click.UsageError("give either --key-file or --sun-meta-key/--sun-file-key")
        from firmware_tools.diversify import sun_file_read_key, sun_meta_read_key
        from firmware_tools.keys import load_key_file

        keyfile = load_key_file(key_file, _passphrase(passphrase_file))
        if keyfile.sun_master_key is None:
            raise KeyStoreError(f"{key_file} is a {keyfile.kind} key file without a SUN master key")
        master = keyfile.sun_master_key
        return sun_meta_read_key(master), lambda uid: sun_file_read_key(master, uid)
    if meta_key is None or file_key is None:
        raise click.UsageError("a SUN URL needs --sun-meta-key and --sun-file-key, or --key-file")
    return meta_key, file_key


def _sun_verdict(url: str, meta_key: bytes, file_key: Any, last_counter: int | None) -> dict:
    from firmware_tools.gs1 import parse_digital_link
    from firmware_tools.ntag424 import verify_sun_url

    report: dict[str, Any] = {"kind": "ntag424_sun", "gtin": None, "serial": None}
    try:
        link = parse_digital_link(url)
        report.update(gtin=link.gtin, serial=link.serial)
    except FormatError as exc:
        report["url_problem"] = str(exc)
    try:
        result = verify_sun_url(url, [meta_key], file_key, last_counter=last_counter)
    except InvalidTag as exc:
        return {
            "verdict": "counterfeit",
            "reasons": [str(exc)],
            "codes": [exc.reason],
            **report,
            "uid": None,
            "counter": None,
        }
    return {
        "verdict": "authentic",
        "reasons": [],
        "codes": [],
        **report,
        "uid": result.uid.hex().upper(),
        "counter": result.counter,
    }


def _label_verdict(url: str, supplier: str) -> dict:
    from firmware_tools.gs1 import parse_digital_link
    from firmware_tools.qr import check_label, verify_label_url

    try:
        link = parse_digital_link(url)
    except FormatError:
        link = None
    if link is not None and link.param("uid") is not None:
        return _chip_label_verdict(link, supplier)
    check = verify_label_url(url, supplier) if link is None else check_label(link, supplier)
    return {
        "verdict": "authentic" if check.ok else "counterfeit",
        "reasons": list(check.reasons),
        "codes": list(check.codes),
        "kind": "qr_label",
        "gtin": check.gtin,
        "serial": check.serial,
        "signer": check.signer,
    }


def _chip_label_verdict(link: Any, supplier: str) -> dict:
    """An NTAG 21x URL seen without its chip: only the supplier's UID-bound signature."""
    from contracts_abi.eip712 import label_digest
    from firmware_tools.qr import address_bytes, checksummed, decode_signature, recover_signer_bytes

    report = {"kind": "ntag21x_url", "gtin": link.gtin, "serial": link.serial, "signer": None}
    note = "the NXP originality signature needs the chip itself: use `tag read`"
    try:
        uid = bytes.fromhex(link.param("uid"))
    except ValueError:
        return {
            "verdict": "counterfeit",
            "reasons": ["uid is not hex"],
            "codes": ["malformed_url"],
            **report,
        }
    try:
        sig = link.param("sig")
        if sig is None:
            raise InvalidTag("the URL has no sig parameter", "missing_signature")
        raw = recover_signer_bytes(label_digest(link.gtin, link.serial, uid), decode_signature(sig))
    except (InvalidTag, FormatError) as exc:
        code = getattr(exc, "reason", "bad_signature")
        return {
            "verdict": "counterfeit",
            "reasons": [f"bad signature: {exc}"],
            "codes": [code],
            **report,
        }
    report["signer"] = checksummed(raw)
    report["uid"] = uid.hex().upper()
    expected = address_bytes(supplier)
    if raw != expected:
        reason = f"signed by {report['signer']}, not by the supplier {checksummed(expected)}"
        return {"verdict": "counterfeit", "reasons": [reason], "codes": ["bad_signature"], **report}
    return {"verdict": "authentic", "reasons": [], "codes": [], "note": note, **report}


@tag.command("verify")
@click.argument("url")
@click.option("--supplier", callback=_address, help="Supplier address, for signed labels.")
@click.option("--sun-meta-key", callback=_hex_key, help="SDM meta-read key (32 hex), for SUN URLs.")
@click.option("--sun-file-key", callback=_hex_key, help="SDM file-read key (32 hex), for SUN URLs.")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Supplier key file: SUN keys derived from its master key (per tag for the file key).",
)
@click.option(
    "--last-counter",
    type=click.IntRange(0, 0xFFFFFF),
    help="Last accepted SUN counter of this tag: a counter not above it is a replay.",
)
@passphrase_option
def tag_verify(
    url: str,
    supplier: str | None,
    sun_meta_key: bytes | None,
    sun_file_key: bytes | None,
    key_file: Path | None,
    last_counter: int | None,
    passphrase_file: Path | None,
) -> None:
    """Check a scanned tag URL offline; print one JSON object; exit 0 if authentic, else 1.

    A URL with picc_data and cmac is an NTAG 424 SUN message; any other is a signed label.

    \b
    Examples:
      firmware-tools tag verify 'https://id.example.com/01/04006381333931/21/X?sig=...' \\
          --supplier 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23
      firmware-tools tag verify 'https://id.example.com/01/...?picc_data=...&cmac=...' \\
          --sun-meta-key 00112233445566778899aabbccddeeff --sun-file-key ...
    """
    if _is_sun_url(url):
        meta, file_key = _sun_keys(sun_meta_key, sun_file_key, key_file, passphrase_file)
        report = _sun_verdict(url, meta, file_key, last_counter)
    else:
        if supplier is None:
            raise click.UsageError("a signed label needs --supplier ADDRESS")
        report = _label_verdict(url, supplier)
    click.echo(json.dumps(report))
    sys.exit(EXIT_OK if report["verdict"] == "authentic" else EXIT_FAILED)


# --- device provisioning ----------------------------------------------------------------


@main.group()
def device() -> None:
    """Reader devices."""


@device.command("provision")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Agent config file to write (JSON).",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Device key file to create (encrypted, mode 0600).",
)
@click.option("--api-url", required=True, help="Base URL of the Provenance API.")
@click.option(
    "--device",
    "connstring",
    default="",
    show_default=False,
    help="libnfc connstring of the reader, e.g. pn532_uart:/dev/ttyUSB0 (empty: first found).",
)
@click.option(
    "--outbox",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Path of the agent's durable outbox (SQLite file).",
)
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def device_provision(
    config_path: Path,
    key_file: Path,
    api_url: str,
    connstring: str,
    outbox: Path,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Create a device key and the reader agent's config; print the address to register.

    \b
    Example:
      firmware-tools device provision --config agent.json --key-file device.key \\
          --api-url https://api.example.com --device pn532_uart:/dev/ttyUSB0 --outbox outbox.db
    """
    from firmware_tools.keys import DEVICE, new_key_file

    if not api_url.lower().startswith(("https://", "http://")):
        raise click.BadParameter("must start with https:// or http://", param_hint="--api-url")
    for path in (config_path, key_file):
        if path.exists():
            raise KeyStoreError(f"{path} already exists; refusing to overwrite it")
    keyfile = new_key_file(key_file, _passphrase(passphrase_file, confirm=True), kind=DEVICE)
    config = {
        "api_url": api_url.rstrip("/"),
        "device_key_file": str(key_file.resolve()),
        "reader": connstring,
        "outbox": str(outbox.resolve()),
        "device_address": keyfile.address,
    }
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
        handle.write("\n")
    _emit(
        {"config": str(config_path), "key_file": str(key_file), "address": keyfile.address},
        as_json,
        f"wrote {config_path} and {key_file}\n"
        f"device address (register it with the API): {keyfile.address}",
    )


# --- NFC: doctor, tag read, ntag21x write, ntag424 personalize --------------------------

device_option = click.option(
    "--device",
    "connstring",
    default=None,
    help="libnfc connstring, e.g. pn532_uart:/dev/ttyUSB0 (default: libnfc's first reader).",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a tag in the field.",
)


def _tag_writing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `ntag21x write` and `ntag424 personalize`: reader, key file, label."""
    for option in reversed(
        (
            device_option,
            timeout_option,
            click.option(
                "--key-file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                required=True,
            ),
            click.option(
                "--host", required=True, help="Resolver host of the URL, e.g. id.example.com"
            ),
            click.option("--gtin", required=True),
            click.option("--serial", help="Serial number (default: a random one)."),
            passphrase_option,
        )
    ):
        command = option(command)  # bottom-up, as stacked decorators apply
    return command


_Tag = TypeVar("_Tag")


@contextmanager
def _tag_in_field(
    connstring: str | None, timeout: float, kind: type[_Tag] | tuple[type, ...], refusal: str
) -> Iterator[_Tag]:
    """Open the reader and wait for a tag; one that is not a `kind` ends the command."""
    from firmware_tools.nfc import open_reader

    with open_reader(connstring) as reader:
        found = reader.wait_for_tag(timeout_s=timeout)
        if not isinstance(found, kind):
            raise click.ClickException(f"{found!r} {refusal}")
        yield found


@main.command("doctor")
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


@tag.command("read")
@device_option
@timeout_option
@click.option("--supplier", callback=_address, help="Supplier address, for NTAG 21x labels.")
@click.option("--sun-meta-key", callback=_hex_key, help="SDM meta-read key (32 hex), NTAG 424.")
@click.option("--sun-file-key", callback=_hex_key, help="SDM file-read key (32 hex), NTAG 424.")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Supplier key file: NTAG 424 SUN keys derived from its master key.",
)
@click.option(
    "--originality-public-key",
    callback=_hex_bytes,
    help="Originality key (hex) instead of NXP's (for test chips).",
)
@passphrase_option
def tag_read(
    connstring: str | None,
    timeout: float,
    supplier: str | None,
    sun_meta_key: bytes | None,
    sun_file_key: bytes | None,
    key_file: Path | None,
    originality_public_key: bytes | None,
    passphrase_file: Path | None,
) -> None:
    """Read the tag in the field; print what it says and whether it verifies (one JSON object).

    An NTAG 21x is checked with --supplier, an NTAG 424 DNA with its SUN keys (--key-file or
    --sun-meta-key/--sun-file-key). Without them the tag is only read. Exit 0 when it
    verifies (or was only read), 1 when it does not.

    \b
    Examples:
      firmware-tools tag read --device pn532_uart:/dev/ttyUSB0 --supplier 0x2c75...5c23
      firmware-tools tag read --device pn532_uart:/dev/ttyUSB0 --key-file supplier.key
    """
    from firmware_tools.nfc import Ntag21x, Ntag424

    with _tag_in_field(connstring, timeout, (Ntag21x, Ntag424), "is not a supported tag") as found:
        url = found.read_ndef_url()
        originality = found.read_signature()
    if isinstance(found, Ntag424):
        keys_given = key_file is not None or sun_meta_key is not None or sun_file_key is not None
        sun_keys = (
            _sun_keys(sun_meta_key, sun_file_key, key_file, passphrase_file) if keys_given else None
        )
        report = _ntag424_read_report(found.uid, url, originality, sun_keys, originality_public_key)
    else:
        report = _ntag21x_read_report(found, url, originality, supplier, originality_public_key)
    click.echo(json.dumps(report))
    sys.exit(EXIT_OK if report["verdict"] in ("authentic", None) else EXIT_FAILED)


def _ntag21x_read_report(
    found: Any, url: str, originality: bytes, supplier: str | None, public_key: bytes | None
) -> dict:
    from firmware_tools.ntag21x import verify_ntag21x

    report: dict[str, Any] = {
        "kind": "ntag21x",
        "chip": found.layout.name,
        "uid": found.uid.hex().upper(),
        "url": url,
        "originality_signature": originality.hex().upper(),
    }
    if supplier is None:
        return {"verdict": None, "reasons": [], **report}
    extra = {} if public_key is None else {"nxp_public_key": public_key}
    check = verify_ntag21x(found.uid, url, originality, supplier, **extra)
    return {
        "verdict": "authentic" if check.ok else "counterfeit",
        "reasons": [] if check.ok else list(check.findings),
        "codes": list(check.codes),
        "findings": list(check.findings),
        **report,
        "gtin": check.gtin,
        "serial": check.serial,
        "signer": check.signer,
    }


def _ntag424_read_report(
    uid: bytes,
    url: str,
    originality: bytes,
    sun_keys: tuple[bytes, Any] | None,
    public_key: bytes | None,
) -> dict:
    from firmware_tools.originality import verify_originality_424

    extra = {} if public_key is None else {"public_key": public_key}
    try:
        genuine_uid = verify_originality_424(uid, originality, **extra)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--originality-public-key") from None
    # The signature proves NXP issued this UID, not that this chip is the original: a SUN
    # MAC under the supplier's keys and a rising counter are what a clone cannot produce.
    finding = (
        "genuine NXP chip UID (originality signature valid)"
        if genuine_uid
        else "the originality signature is not NXP's for this UID"
    )
    read = {
        "kind": "ntag424_sun",
        "chip": "NTAG 424 DNA",
        "url": url,
        "originality_signature": originality.hex().upper(),
        "findings": [finding],
    }
    if sun_keys is None:
        return {"verdict": None, "reasons": [], **read, "uid": uid.hex().upper()}
    report = {**read, **_sun_verdict(url, *sun_keys, None)}
    if report["uid"] is not None and report["uid"] != uid.hex().upper():
        report.update(verdict="counterfeit")
        report["reasons"].append("the SUN message names another UID than the chip in the field")
        report["codes"].append("uid_mismatch")
    if not genuine_uid:
        report.update(verdict="counterfeit")
        report["reasons"].append(finding)
        report["codes"].append("bad_originality_signature")
    return report


def _label_fields(gtin: str, serial: str | None) -> tuple[str, str]:
    from firmware_tools.gs1 import check_ai_value, normalize_gtin
    from firmware_tools.qr import new_serial

    try:
        gtin14 = normalize_gtin(gtin)
        serial = new_serial() if serial is None else check_ai_value("21", serial)
    except FormatError as exc:
        raise click.UsageError(str(exc)) from None
    return gtin14, serial


@main.group()
def ntag21x() -> None:
    """NTAG 213/215/216 stickers."""


@ntag21x.command("write")
@_tag_writing_options
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
    from firmware_tools.gs1 import check_host
    from firmware_tools.keys import load_key_file
    from firmware_tools.nfc import Ntag21x
    from firmware_tools.ntag21x import image_pages, sign_ntag21x_url

    try:
        check_host(host)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    gtin14, serial = _label_fields(gtin, serial)
    keyfile = load_key_file(key_file, _passphrase(passphrase_file))
    with _tag_in_field(connstring, timeout, Ntag21x, "is not an NTAG 213/215/216") as found:
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


@main.group()
def ntag424() -> None:
    """NTAG 424 DNA chips (SUN)."""


@ntag424.command("personalize")
@_tag_writing_options
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
    from firmware_tools.diversify import sun_meta_read_key
    from firmware_tools.gs1 import build_digital_link
    from firmware_tools.keys import load_key_file
    from firmware_tools.nfc import Ntag424
    from firmware_tools.ntag424_personalize import personalize, tag_keys

    gtin14, serial = _label_fields(gtin, serial)
    try:
        base = build_digital_link(host, gtin14, serial)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    keyfile = load_key_file(key_file, _passphrase(passphrase_file))
    if keyfile.sun_master_key is None:
        raise KeyStoreError(f"{key_file} is a {keyfile.kind} key file without a SUN master key")
    master = keyfile.sun_master_key
    meta = sun_meta_read_key(master)
    # Braces never occur in a built link (GS1 character set 82 has none), so the only
    # placeholders are the two SDM ones.
    template = base + "?picc_data={picc_data}&cmac={cmac}"
    with _tag_in_field(connstring, timeout, Ntag424, "is not an NTAG 424 DNA") as found:
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
