"""Options, parsers and reader handling shared by the `firmware-tools` commands."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from firmware_tools.errors import FirmwareToolsError, FormatError, KeyStoreError

PASSPHRASE_ENV = "FIRMWARE_TOOLS_PASSPHRASE"
EXIT_OK, EXIT_FAILED = 0, 1  # and 2 for usage errors, click's own
# Modules that only an extra installs (setup.cfg), by the top-level name they import as.
OPTIONAL_MODULES = {"segno": "tools", "PIL": "tools", "fpdf": "tools"}


class ExpectedErrorsGroup(click.Group):
    """A group whose commands report expected errors as one line on stderr, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            extra = OPTIONAL_MODULES.get((exc.name or "").partition(".")[0])
            if extra is None:
                raise  # not an optional package: a broken install, worth its traceback
            raise click.ClickException(
                f"this command needs {exc.name}, which comes with the {extra!r} extra:"
                f" pip install 'provenance[{extra}]' (or '.[{extra}]' in a checkout)"
            ) from None
        except UnicodeDecodeError as exc:
            raise click.ClickException(f"a file is not UTF-8 text: {exc.reason}") from None
        except (FirmwareToolsError, OSError) as exc:
            message = (
                str(exc)
                if not isinstance(exc, OSError) or not exc.strerror
                else (f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror)
            )
            raise click.ClickException(message) from None


def passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
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


def new_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A path for a file the command creates (use with click.Path(dir_okay=False), no path_type).

    click would turn '' into '.', so the text is checked before it becomes a Path.
    """
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("is empty: give the name of the file to create")
    if value.endswith(("/", os.sep)):
        raise click.BadParameter(f"{value!r} ends with a slash: give the name of a file")
    return Path(value)


def supplier_keys(key_file: Path, passphrase_file: Path | None) -> Any:
    """The supplier key file at `key_file`; a device key signs events, never labels."""
    from firmware_tools.keys import SUPPLIER, load_key_file

    keyfile = load_key_file(key_file, passphrase(passphrase_file))
    if keyfile.kind != SUPPLIER:
        raise KeyStoreError(
            f"{key_file} is a {keyfile.kind} key file; labels are signed with the supplier's"
            " key file (firmware-tools keys new)"
        )
    return keyfile


def hex_bytes(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter("must be hex digits") from None


def hex_key(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    key = hex_bytes(ctx, param, value)
    if key is not None and len(key) != 16:
        raise click.BadParameter(f"must be 16 bytes (32 hex digits), got {len(key)} bytes")
    return key


def address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from firmware_tools.formats.qr import address_bytes

    try:
        address_bytes(value)
    except FormatError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def emit(data: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


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


def tag_writing_options(command: Callable[..., Any]) -> Callable[..., Any]:
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
def tag_in_field(
    connstring: str | None, timeout: float, kind: type[_Tag] | tuple[type, ...], refusal: str
) -> Iterator[_Tag]:
    """Open the reader and wait for a tag; one that is not a `kind` ends the command."""
    from firmware_tools.nfc import open_reader

    with open_reader(connstring) as reader:
        found = reader.wait_for_tag(timeout_s=timeout)
        if not isinstance(found, kind):
            raise click.ClickException(f"{found!r} {refusal}")
        yield found


def label_fields(gtin: str, serial: str | None) -> tuple[str, str]:
    from firmware_tools.formats.gs1 import check_ai_value, normalize_gtin
    from firmware_tools.formats.qr import new_serial

    try:
        gtin14 = normalize_gtin(gtin)
        serial = new_serial() if serial is None else check_ai_value("21", serial)
    except FormatError as exc:
        raise click.UsageError(str(exc)) from None
    return gtin14, serial


def sun_keys(
    meta_key: bytes | None,
    file_key: bytes | None,
    key_file: Path | None,
    passphrase_file: Path | None,
) -> tuple[bytes, Any]:
    if key_file is not None:
        if meta_key is not None or file_key is not None:
            raise click.UsageError("give either --key-file or --sun-meta-key/--sun-file-key")
        from firmware_tools.chips.ntag424.diversify import sun_file_read_key, sun_meta_read_key
        from firmware_tools.keys import load_key_file

        keyfile = load_key_file(key_file, passphrase(passphrase_file))
        if keyfile.sun_master_key is None:
            raise KeyStoreError(f"{key_file} is a {keyfile.kind} key file without a SUN master key")
        master = keyfile.sun_master_key
        return sun_meta_read_key(master), lambda uid: sun_file_read_key(master, uid)
    if meta_key is None or file_key is None:
        raise click.UsageError("a SUN URL needs --sun-meta-key and --sun-file-key, or --key-file")
    return meta_key, file_key
