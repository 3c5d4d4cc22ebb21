"""A serial barcode scanner on a pseudo-terminal, at a stable path that survives a re-plug.

Like a USB scanner under /dev/serial/by-id/: `link` is a symlink to the current pty.
`unplug()` closes the pty (the reader's next read fails as on a real unplug: the kernel
hangs the terminal up); `plug()` makes a new pty and points the link at it.
"""

from __future__ import annotations

import os
import tty
from pathlib import Path


class ScannerEmulator:
    """The scanner's end of a pty: `scan(text)` sends one line, as the scanner would."""

    def __init__(self, link: Path, *, suffix: bytes = b"\r\n") -> None:
        self.link = link
        self.suffix = suffix
        self.master_fd = -1
        self.slave_fd = -1
        self.path = ""

    def plug(self) -> ScannerEmulator:
        """A new pty behind the link (the first plug, or a re-plug)."""
        self.unplug()
        self.master_fd, self.slave_fd = os.openpty()
        # Raw on our side too: a canonical line discipline would echo and turn CR into LF.
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        temporary = self.link.with_name(self.link.name + ".new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(self.path)
        temporary.replace(self.link)
        return self

    def unplug(self) -> None:
        """Close the pty: the reader sees a hang-up."""
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                os.close(fd)
        self.master_fd = self.slave_fd = -1

    def scan(self, text: str | bytes, suffix: bytes | None = None) -> None:
        """Send one scan: the text, then CR LF (or `suffix`)."""
        data = text.encode() if isinstance(text, str) else text
        self.send(data + (self.suffix if suffix is None else suffix))

    def send(self, data: bytes) -> None:
        """Raw bytes on the line."""
        if self.master_fd < 0:
            raise RuntimeError("the scanner is unplugged")
        os.write(self.master_fd, data)

    def __enter__(self) -> ScannerEmulator:
        return self.plug()

    def __exit__(self, *exc: object) -> None:
        self.unplug()
        self.link.unlink(missing_ok=True)
