"""JSON documents whose errors name the key and the line it is on.

Pure: no I/O; the text and the file's name (for messages) are arguments. Python's json
module gives no positions for a valid document, so a small second pass over the (already
valid) text notes where every key and array element starts; it also refuses a key that
appears twice in one object, which json.loads would silently resolve to the last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring
from typing import Any

from reader_agent.errors import ConfigError

Path = tuple[str | int, ...]
_WHITESPACE = " \t\n\r"
_SCALAR = re.compile(r"-?[0-9][0-9.eE+-]*|true|false|null|NaN|-?Infinity")


@dataclass(frozen=True)
class Document:
    """A parsed JSON document and where each key and element starts in its text."""

    name: str
    text: str
    data: Any
    positions: dict[Path, int]

    def line(self, path: Path) -> int:
        """The line (from 1) of the key or element at `path`; its object's line if absent."""
        while path and path not in self.positions:
            path = path[:-1]
        offset = self.positions.get(path, _start(self.text))
        return self.text.count("\n", 0, offset) + 1

    def error(self, path: Path, message: str) -> ConfigError:
        """`agent.json line 7: `biz_step` must be ...` for the key at `path`."""
        where = f"`{dotted(path)}` " if path else ""
        if not self.text:  # values from a command line, not a file
            return ConfigError(f"{self.name}: {where}{message}")
        return ConfigError(f"{self.name} line {self.line(path)}: {where}{message}")


def dotted(path: Path) -> str:
    """`sources[1].kind` for ("sources", 1, "kind")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def parse(text: str, name: str) -> Document:
    """Parse `text`; a ConfigError names the line of a syntax error or a repeated key."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} line {exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    positions: dict[Path, int] = {}
    repeated: list[Path] = []
    _value(text, _start(text), (), positions, repeated)
    document = Document(name, text, data, positions)
    if repeated:
        raise document.error(repeated[0], "appears twice; give each key once")
    return document


def _start(text: str) -> int:
    return len(text) - len(text.lstrip(_WHITESPACE))


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _value(text: str, i: int, path: Path, out: dict[Path, int], repeated: list[Path]) -> int:
    """Note the positions inside the valid JSON value at `i`; the offset just after it."""
    i = _skip(text, i)
    char = text[i]
    if char == '"':
        return scanstring(text, i + 1)[1]
    if char not in "{[":
        match = _SCALAR.match(text, i)
        assert match is not None, "json.loads accepted the text"
        return match.end()
    close = "}" if char == "{" else "]"
    i = _skip(text, i + 1)
    if text[i] == close:
        return i + 1
    index = 0
    while True:
        i = _skip(text, i)
        if char == "{":
            key, end = scanstring(text, i + 1)
            inner = (*path, key)
            if inner in out:
                repeated.append(inner)
            out[inner] = i
            i = _skip(text, end) + 1  # past the colon
        else:
            inner = (*path, index)
            out[inner] = i
            index += 1
        i = _skip(text, _value(text, i, inner, out, repeated))
        if text[i] == close:
            return i + 1
        i += 1  # past the comma
