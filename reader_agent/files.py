"""Small files the agent replaces whole: the context, the trust cache, the status."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def replace_file(path: Path, text: str, *, durable: bool) -> None:
    """Write `text` to a temporary file, then rename it over `path`.

    A reader sees the old file or the new one, never a part. `durable` also fsyncs the file
    and the folder, so that a power cut keeps one of them; a file rewritten every second
    does without.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself must survive a power cut
        finally:
            os.close(folder)
