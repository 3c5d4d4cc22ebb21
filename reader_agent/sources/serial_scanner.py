"""A QR/barcode scanner on a serial port (USB CDC-ACM or a UART): one text line per scan.

Scanners in serial mode send the decoded text followed by CR, LF or CR LF. Each non-empty
line is a read. A line longer than `max_line` bytes is dropped and reported (a scanner in
the wrong mode, or line noise, must not grow the buffer without bound); a line that is not
UTF-8 is reported, not guessed at. pyserial is imported when the port is opened.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from reader_agent.reads import Read
from reader_agent.sources import SourceGone, UnreadableTag

POLL = 0.1  # seconds per blocking read: how late a read(timeout) may return past its timeout


class SerialScanner:
    """A serial scanner at `port` (a /dev/serial/by-id/ link survives a re-plug)."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = 9600,
        max_line: int = 2048,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.port = port
        self.baud = baud
        self.max_line = max_line
        self.name = f"serial:{port}"
        self._clock = clock
        self._serial: Any = None
        self._buffer = bytearray()
        self._dropping = False  # inside an over-long line, until its end

    def open(self) -> None:
        """Open the port, exclusively; SourceGone if it is missing or busy."""
        import serial

        self.close()
        try:
            # exclusive: a second agent (or a stray `cat`) on the same scanner would each
            # get half of the lines.
            self._serial = serial.Serial(self.port, self.baud, timeout=POLL, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SourceGone(f"{self.name} does not open: {exc}") from None
        self._buffer.clear()
        self._dropping = False

    def close(self) -> None:
        if self._serial is not None:
            port, self._serial = self._serial, None
            with contextlib.suppress(OSError):  # the device is gone: nothing left to release
                port.close()

    def read(self, timeout: float) -> Read | None:
        """The next line within `timeout` seconds (at most POLL later), else None."""
        import serial

        if self._serial is None:
            raise SourceGone(f"{self.name} is not open")
        deadline = time.monotonic() + timeout
        while True:
            text = self._next_line()
            if text is not None:
                return Read(url=text, source=self.name, read_at=self._clock())
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError) as exc:
                # An unplugged USB scanner reads as "readiness to read but no data" or EIO.
                raise SourceGone(f"{self.name} stopped answering: {exc}") from None
            self._buffer += chunk

    def _next_line(self) -> str | None:
        """The next complete non-empty line in the buffer; UnreadableTag for a bad one."""
        while True:
            end = _line_end(self._buffer)
            if end < 0:
                if len(self._buffer) > self.max_line and not self._dropping:
                    self._buffer.clear()
                    self._dropping = True
                    raise UnreadableTag(
                        f"{self.name}: a line longer than {self.max_line} bytes was dropped"
                    )
                if self._dropping:
                    self._buffer.clear()
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._dropping:
                self._dropping = False
                continue
            if not line:
                continue  # the LF of a CR LF, or a blank line
            if len(line) > self.max_line:
                raise UnreadableTag(
                    f"{self.name}: a line longer than {self.max_line} bytes was dropped"
                )
            try:
                return line.decode("utf-8")
            except UnicodeDecodeError:
                raise UnreadableTag(
                    f"{self.name}: a scan that is not UTF-8 text was dropped:"
                    f" {line[:48].hex(' ')}{' ...' if len(line) > 48 else ''}"
                ) from None


def _line_end(buffer: bytearray) -> int:
    """Index of the first CR or LF, or -1."""
    ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
    return min(ends) if ends else -1
