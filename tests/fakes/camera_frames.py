"""Camera-sized frames with QR codes drawn by segno, for the camera source's tests."""

from __future__ import annotations

import io
from typing import Any


def frame(*contents: str | bytes, size: tuple[int, int] = (640, 480)) -> Any:
    """A grey frame (a PIL image) with each content as a QR code, side by side."""
    import segno
    from PIL import Image

    canvas = Image.new("L", size, 200)
    for i, content in enumerate(contents):
        buffer = io.BytesIO()
        segno.make(content, error="m", micro=False).save(buffer, kind="png", scale=4, border=4)
        buffer.seek(0)
        canvas.paste(Image.open(buffer).convert("L"), (20 + i * 310, 40))
    return canvas
