"""`firmware-tools tag`: check a scanned URL offline, or read the tag in the field.

Thin: the verdict rules are `firmware_tools.verify.check_tag`'s.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

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

# Exit 0 for these verdicts: nothing that could be checked failed.
_PASSING = ("authentic", "signature_valid", None)


@click.group()
def tag() -> None:
    """Check what a tag says."""


def _key_epochs(
    meta_key: bytes | None,
    file_key: bytes | None,
    key_file: Path | None,
    passphrase_file: Path | None,
) -> tuple:
    from firmware_tools.verify import KeyEpoch

    meta, rule = sun_keys(meta_key, file_key, key_file, passphrase_file)
    if not callable(rule):
        fixed = rule

        def rule(uid: bytes) -> bytes:
            return fixed

    return (KeyEpoch(meta, rule, 0),)


def _print_and_exit(check) -> None:
    click.echo(json.dumps(check.as_dict()))
    sys.exit(EXIT_OK if check.verdict in _PASSING else EXIT_FAILED)


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
    """Check a scanned tag URL offline; print one JSON object.

    A URL with picc_data or cmac is an NTAG 424 SUN message; any other is a signed label
    (with uid=: an NTAG 21x URL). Exit 0 when the verdict is authentic, or signature_valid
    (an NTAG 21x URL checked without its chip: the signature is good, but a URL can be
    copied; `tag read` checks the chip); 1 for suspicious or counterfeit; 2 for usage.

    \b
    Examples:
      firmware-tools tag verify 'https://id.example.com/01/04006381333931/21/X?sig=...' \\
          --supplier 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23
      firmware-tools tag verify 'https://id.example.com/01/...?picc_data=...&cmac=...' \\
          --sun-meta-key 00112233445566778899aabbccddeeff --sun-file-key ...
    """
    from firmware_tools.verify import InMemoryCounterStore, ScannedUrl, Trust, check_tag, is_sun_url

    if is_sun_url(url):
        epochs = _key_epochs(sun_meta_key, sun_file_key, key_file, passphrase_file)
        trust = Trust(supplier=supplier, key_epochs=epochs)
    elif supplier is None:
        raise click.UsageError("a signed label needs --supplier ADDRESS")
    else:
        trust = Trust(supplier=supplier)
    counters = None if last_counter is None else InMemoryCounterStore(last_counter)
    _print_and_exit(check_tag(ScannedUrl(url), trust, counters))


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
    --sun-meta-key/--sun-file-key). Without them only the NXP originality signature is
    checked. Exit 0 when it verifies (or was only read), 1 when it does not.

    \b
    Examples:
      firmware-tools tag read --device pn532_uart:/dev/ttyUSB0 --supplier 0x2c75...5c23
      firmware-tools tag read --device pn532_uart:/dev/ttyUSB0 --key-file supplier.key
    """
    from firmware_tools.nfc import Ntag21x, Ntag424
    from firmware_tools.verify import NTAG21X, NTAG424, ChipRead, Trust, check_tag

    with tag_in_field(connstring, timeout, (Ntag21x, Ntag424), "is not a supported tag") as found:
        url = found.read_ndef_url()
        originality = found.read_signature()
    keys_given = key_file is not None or sun_meta_key is not None or sun_file_key is not None
    trust = Trust(
        supplier=supplier,
        key_epochs=(
            _key_epochs(sun_meta_key, sun_file_key, key_file, passphrase_file)
            if keys_given and isinstance(found, Ntag424)
            else ()
        ),
    )
    if isinstance(found, Ntag424):
        evidence = ChipRead(NTAG424, found.uid, url, originality)
        if originality_public_key is not None:
            trust = replace(trust, ntag424_public_key=originality_public_key)
    else:
        evidence = ChipRead(NTAG21X, found.uid, url, originality, found.layout.name)
        if originality_public_key is not None:
            trust = replace(trust, ntag21x_public_key=originality_public_key)
    try:
        check = check_tag(evidence, trust)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--originality-public-key") from None
    _print_and_exit(check)
