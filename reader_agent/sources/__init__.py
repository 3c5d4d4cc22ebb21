"""Where reads come from: NFC readers, serial scanners and cameras behind one interface.

A source is opened, read with a timeout (a `Read`, or None when nothing was read in time)
and closed. `Supervisor` (reader_agent.sources.supervisor) reopens one that fails, with
backoff; `RepeatWindow` (reader_agent.sources.window) counts a tag read again at once only
once. `build_source` turns one entry of the agent's config into a source; each adapter
imports its hardware library (pyserial, libnfc, zxing-cpp) only when it is built.

    {"kind": "serial", "port": "/dev/serial/by-id/usb-Scanner-if00", "baud": 9600}
    {"kind": "nfc", "device": "pn532_uart:/dev/ttyUSB0"}   # "" or absent: libnfc's default
    {"kind": "camera", "device": "/dev/video0", "formats": "QRCode,DataMatrix"}

SourceError
├── SourceGone      the reader does not open, was unplugged or stopped answering: reopen it
└── UnreadableTag   one read failed (bad UTF-8, an over-long line, a tag without a URL);
                    the reader itself is fine
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from reader_agent.reads import Read

__all__ = [
    "Read",
    "Source",
    "SourceError",
    "SourceGone",
    "UnreadableTag",
    "build_source",
]


class SourceError(Exception):
    """Base of the errors a source raises on purpose; the message says what to do."""


class SourceGone(SourceError):
    """The reader is not there or stopped answering; close it and open it again later."""


class UnreadableTag(SourceError):
    """Something was read but is not a usable tag read; the reader stays open."""


class Source(Protocol):
    """One reader: open it, read with a timeout, close it."""

    name: str  # what `Read.source` says, e.g. "serial:/dev/ttyACM0"

    def open(self) -> None:
        """Open the reader; SourceGone if it is not there or does not answer."""
        ...

    def read(self, timeout: float) -> Read | None:
        """The next read within `timeout` seconds, else None.

        Raises SourceGone (reopen the source) or UnreadableTag (report it, read on).
        """
        ...

    def close(self) -> None:
        """Release the reader; safe to call twice and after a failure."""
        ...


# The keys each kind takes besides "kind", with their defaults (None: required).
KINDS: dict[str, dict[str, Any]] = {
    "serial": {"port": None, "baud": 9600, "max_line": 2048},
    "nfc": {"device": "", "timeout_ms": 500},
    "camera": {"device": "/dev/video0", "width": 640, "height": 480, "formats": "QRCode"},
}


def source_options(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The kind and its complete options from one config entry; ValueError names the key.

    >>> source_options({"kind": "serial", "port": "/dev/ttyACM0"})
    ('serial', {'port': '/dev/ttyACM0', 'baud': 9600, 'max_line': 2048})
    """
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not a source kind ({', '.join(KINDS)})")
    defaults = KINDS[kind]
    unknown = sorted(set(spec) - set(defaults) - {"kind"})
    if unknown:
        raise ValueError(f"{unknown[0]}: not an option of a {kind} source ({', '.join(defaults)})")
    options = {**defaults, **{k: v for k, v in spec.items() if k in defaults}}
    for key, default in defaults.items():
        value = options[key]
        if default is None and not value:
            raise ValueError(f"{key}: a {kind} source needs it")
        wrong_type = isinstance(value, bool) or not isinstance(value, type(default))
        if default is not None and wrong_type:
            raise ValueError(f"{key}: expected {type(default).__name__}, got {value!r}")
        if isinstance(value, int) and value <= 0:
            raise ValueError(f"{key}: must be positive, got {value!r}")
    return kind, options


def build_source(spec: Mapping[str, Any], *, window: float = 2.0) -> Source:
    """A closed source from one config entry (`{"kind": "serial", "port": ...}`).

    `window` is the agent's repeat window: an NFC reader does not read again a tag that
    rests in its field (an NTAG 424 DNA would count up its SUN counter at every poll).
    """
    kind, options = source_options(spec)
    if kind == "serial":
        from reader_agent.sources.serial_scanner import SerialScanner

        return SerialScanner(options["port"], baud=options["baud"], max_line=options["max_line"])
    if kind == "nfc":
        from reader_agent.sources.nfc import NfcSource

        return NfcSource(options["device"] or None, timeout_ms=options["timeout_ms"], hold=window)
    from reader_agent.sources.camera import CameraSource

    return CameraSource.from_device(
        options["device"],
        width=options["width"],
        height=options["height"],
        formats=options["formats"],
    )
