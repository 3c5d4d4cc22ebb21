"""`firmware-tools tag`: check a scanned URL offline, or read the tag in the field."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from firmware_tools.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    address,
    device_option,
    hex_bytes,
    hex_key,
    passphrase_option,
    sun_keys,
    tag_in_field,
    timeout_option,
)
from firmware_tools.errors import FormatError, InvalidTag


@click.group()
def tag() -> None:
    """Check what a tag says."""


def _is_sun_url(url: str) -> bool:
    """Whether the query string names the SUN parameters picc_data and cmac."""
    names = {pair.partition("=")[0] for pair in url.partition("?")[2].split("#")[0].split("&")}
    return {"picc_data", "cmac"} <= names


def _sun_verdict(url: str, meta_key: bytes, file_key: Any, last_counter: int | None) -> dict:
    from firmware_tools.chips.ntag424.sun import verify_sun_url
    from firmware_tools.formats.gs1 import parse_digital_link

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
    from firmware_tools.formats.gs1 import parse_digital_link
    from firmware_tools.formats.qr import check_label, verify_label_url

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
    from firmware_tools.formats.qr import (
        address_bytes,
        checksummed,
        decode_signature,
        recover_signer_bytes,
    )

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
@click.option("--supplier", callback=address, help="Supplier address, for signed labels.")
@click.option("--sun-meta-key", callback=hex_key, help="SDM meta-read key (32 hex), for SUN URLs.")
@click.option("--sun-file-key", callback=hex_key, help="SDM file-read key (32 hex), for SUN URLs.")
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
        meta, file_key = sun_keys(sun_meta_key, sun_file_key, key_file, passphrase_file)
        report = _sun_verdict(url, meta, file_key, last_counter)
    else:
        if supplier is None:
            raise click.UsageError("a signed label needs --supplier ADDRESS")
        report = _label_verdict(url, supplier)
    click.echo(json.dumps(report))
    sys.exit(EXIT_OK if report["verdict"] == "authentic" else EXIT_FAILED)


@tag.command("read")
@device_option
@timeout_option
@click.option("--supplier", callback=address, help="Supplier address, for NTAG 21x labels.")
@click.option("--sun-meta-key", callback=hex_key, help="SDM meta-read key (32 hex), NTAG 424.")
@click.option("--sun-file-key", callback=hex_key, help="SDM file-read key (32 hex), NTAG 424.")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Supplier key file: NTAG 424 SUN keys derived from its master key.",
)
@click.option(
    "--originality-public-key",
    callback=hex_bytes,
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

    with tag_in_field(connstring, timeout, (Ntag21x, Ntag424), "is not a supported tag") as found:
        url = found.read_ndef_url()
        originality = found.read_signature()
    if isinstance(found, Ntag424):
        keys_given = key_file is not None or sun_meta_key is not None or sun_file_key is not None
        keys = (
            sun_keys(sun_meta_key, sun_file_key, key_file, passphrase_file) if keys_given else None
        )
        report = _ntag424_read_report(found.uid, url, originality, keys, originality_public_key)
    else:
        report = _ntag21x_read_report(found, url, originality, supplier, originality_public_key)
    click.echo(json.dumps(report))
    sys.exit(EXIT_OK if report["verdict"] in ("authentic", None) else EXIT_FAILED)


def _ntag21x_read_report(
    found: Any, url: str, originality: bytes, supplier: str | None, public_key: bytes | None
) -> dict:
    from firmware_tools.chips.ntag21x import verify_ntag21x

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
    from firmware_tools.chips.originality import verify_originality_424

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
