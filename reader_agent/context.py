"""The operator's context: business step, disposition, read point and counterparties.

The config gives the defaults; `reader-agent context set ...` writes what the operator
changes to a small JSON file beside the outbox, and the daemon rereads that file at the next
scan once it changed (`ContextWatcher`), without a restart.

`check_context` and `merge` are pure; `read_overrides`, `write_overrides`, `update_context`
and `ContextWatcher` are the file edge. The file holds only what the operator changed, e.g.
``{"biz_step": "shipping", "to_party": "0x..."}``; a party given as null means "none".
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contracts_abi.cbv import BIZ_STEPS, DISPOSITIONS
from firmware_tools.errors import FormatError
from firmware_tools.formats.qr import address_bytes, checksummed
from reader_agent import jsonfile
from reader_agent.errors import ConfigError
from reader_agent.files import replace_file

FIELDS = ("biz_step", "disposition", "read_point", "from_party", "to_party")
READ_POINT_MAX = 512  # the API's limit on signed text
# What a business step leaves the goods as, when the operator names no disposition (CBV 2.0
# §7.2 pairs): goods shipped are in transit; most other steps leave work in progress.
_DISPOSITION_AFTER = {
    "shipping": "in_transit",
    "departing": "in_transit",
    "transporting": "in_transit",
    "retail_selling": "retail_sold",
    "destroying": "destroyed",
}


@dataclass(frozen=True, slots=True)
class Context:
    """What every event states besides the read: the step, where, and who gives or takes."""

    biz_step: str
    disposition: str
    read_point: str
    from_party: str | None = None
    to_party: str | None = None


def default_disposition(biz_step: str) -> str:
    """The disposition a business step implies when none is given."""
    return _DISPOSITION_AFTER.get(biz_step, "in_progress")


def check_context(document: jsonfile.Document, values: Mapping[str, Any], at: jsonfile.Path = ()):
    """The context fields present in `values`, checked and normalized; ConfigError otherwise.

    Addresses come back EIP-55 checksummed. Pure.
    """
    checked: dict[str, Any] = {}
    if "biz_step" in values:
        checked["biz_step"] = _one_of(document, (*at, "biz_step"), values["biz_step"], BIZ_STEPS)
    if "disposition" in values:
        path = (*at, "disposition")
        checked["disposition"] = _one_of(document, path, values["disposition"], DISPOSITIONS)
    if "read_point" in values:
        checked["read_point"] = check_read_point(
            document, (*at, "read_point"), values["read_point"]
        )
    for name in ("from_party", "to_party"):
        if name in values:
            checked[name] = check_party(document, (*at, name), values[name])
    return checked


def merge(defaults: Context, overrides: Mapping[str, Any]) -> Context:
    """The context in force: the config's defaults with the operator's checked overrides.

    A new business step without a disposition brings its own default disposition. Pure.
    """
    changes = {name: overrides[name] for name in FIELDS if name in overrides}
    if "biz_step" in changes and "disposition" not in changes:
        changes["disposition"] = default_disposition(changes["biz_step"])
    return replace(defaults, **changes)


def check_read_point(document: jsonfile.Document, path: jsonfile.Path, value: Any) -> str:
    """One line of printable text, 1 to 512 characters (the API refuses anything else)."""
    if not isinstance(value, str) or not value:
        raise document.error(path, "must be a non-empty string (an SGLN URI or your own id)")
    if len(value) > READ_POINT_MAX:
        raise document.error(path, f"has {len(value)} characters; at most {READ_POINT_MAX}")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in value):
        raise document.error(path, "must be one line without control characters")
    return value


def check_party(document: jsonfile.Document, path: jsonfile.Path, value: Any) -> str | None:
    """Null, or a 0x address (EIP-55 or one case) returned checksummed; never the zero address."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise document.error(path, "must be a 0x address or null")
    try:
        raw = address_bytes(value)
    except FormatError as exc:
        raise document.error(path, str(exc)) from None
    if not any(raw):
        raise document.error(path, "is the zero address; use null for no party")
    return checksummed(raw)


def _one_of(document: jsonfile.Document, path: jsonfile.Path, value: Any, names) -> str:
    if isinstance(value, str) and value in names:
        return value
    what = "business step" if names is BIZ_STEPS else "disposition"
    close = difflib.get_close_matches(value, names, n=1) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise document.error(
        path, f"must be one of the CBV {what}s{hint} ({', '.join(names)}); got {value!r}"
    )


def parse_overrides(text: str, name: str) -> dict[str, Any]:
    """The checked overrides in a context file's text. Pure."""
    document = jsonfile.parse(text, name)
    if not isinstance(document.data, dict):
        raise document.error((), "must be a JSON object")
    for key in document.data:
        if key not in FIELDS and key != "set_at":
            raise document.error((key,), f"is not a context key ({', '.join(FIELDS)})")
    return check_context(document, document.data)


def read_overrides(path: str | os.PathLike) -> dict[str, Any]:
    """The overrides in the context file at `path`; none if there is no file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_overrides(text, path.name)


def write_overrides(path: str | os.PathLike, overrides: Mapping[str, Any], set_at: str) -> None:
    """Replace the context file atomically: a temporary file, fsync, rename, fsync the folder.

    A reader sees the old file or the new one, never a part; a power cut keeps one of them.
    """
    path = Path(path)
    body = {name: overrides[name] for name in FIELDS if name in overrides}
    text = json.dumps({**body, "set_at": set_at}, indent=2) + "\n"
    parse_overrides(text, path.name)  # never write what the daemon would refuse
    replace_file(path, text, durable=True)


def update_context(
    path: str | os.PathLike, changes: Mapping[str, Any], set_at: str
) -> dict[str, Any]:
    """Apply the operator's `changes` to the context file; the overrides now in force.

    `changes` are checked like the file (ConfigError naming the option); a None for
    biz_step, disposition or read_point drops that override (back to the config's value).
    A context file that is refused (a bad hand edit) is replaced.
    """
    document = jsonfile.Document("context", "", dict(changes), {})
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown context keys: {', '.join(unknown)}")
    kept = {k: v for k, v in changes.items() if v is not None or k in ("from_party", "to_party")}
    checked = check_context(document, kept)
    try:
        overrides = read_overrides(path)
    except (ConfigError, UnicodeDecodeError):
        overrides = {}  # a file the daemon refuses is replaced by what the operator says now
    for name in changes:
        overrides.pop(name, None)
    if "biz_step" in checked and "disposition" not in changes:
        overrides.pop("disposition", None)  # the new step brings its own default
    overrides.update(checked)
    write_overrides(path, overrides, set_at)
    return overrides


class ContextWatcher:
    """The context in force, reread when the context file changes (checked at every scan).

    A file that cannot be read or is refused keeps the last good context and sets `error`,
    so that a bad edit never stops the dock door; `status` shows the error.
    """

    def __init__(self, path: str | os.PathLike, defaults: Context) -> None:
        self.path = Path(path)
        self.defaults = defaults
        self.error: str | None = None
        self._seen: tuple[int, int, int] | None = None
        self._context = defaults

    def current(self) -> Context:
        """The context in force now; one stat() unless the file changed."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._context, self.error = None, self.defaults, None
            return self._context
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror}"
            return self._context
        # The inode changes with every atomic replace, even within one mtime tick.
        seen = (info.st_mtime_ns, info.st_size, info.st_ino)
        if seen != self._seen:
            self._seen = seen
            try:
                self._context = merge(self.defaults, read_overrides(self.path))
                self.error = None
            except (ConfigError, OSError, UnicodeDecodeError) as exc:
                self.error = str(exc)
        return self._context
