"""A camera as a scanner, for devices without one: frames in, zxing-cpp decodes the codes.

Needs the `camera` extra (zxing-cpp, and OpenCV's headless build to grab frames from a
V4L2 device such as a USB camera or the Pi camera under libcamera's V4L2 compatibility).
Both are imported when the source is opened. A code that stays in view is decoded in
every frame; the repeat window counts it once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from reader_agent.reads import Read
from reader_agent.sources import SourceGone, UnreadableTag


class FrameGrabber(Protocol):
    """Where frames come from: anything zxing-cpp reads (a numpy array, a PIL image)."""

    name: str

    def open(self) -> None:
        """Start grabbing; SourceGone if the camera is not there."""
        ...

    def grab(self) -> Any:
        """The next frame, blocking for about one frame time; SourceGone if it stopped."""
        ...

    def close(self) -> None: ...


class OpenCvGrabber:
    """Frames from OpenCV's VideoCapture: a V4L2 device path or index, or a video file."""

    def __init__(self, device: str | int, *, width: int = 640, height: int = 480) -> None:
        self.device = device
        self.width = width
        self.height = height
        self.name = f"camera:{device}"
        self._capture: Any = None

    def open(self) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise SourceGone(
                f"{self.name}: OpenCV is missing ({exc}); install the 'camera' extra"
            ) from None
        self.close()
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            raise SourceGone(f"{self.name} does not open (plugged in? in group 'video'?)")
        # A request: the camera picks its nearest mode. Smaller frames decode faster.
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._capture = capture

    def grab(self) -> Any:
        if self._capture is None:
            raise SourceGone(f"{self.name} is not open")
        ok, frame = self._capture.read()
        if not ok:
            # An unplugged camera (or the end of a video file) stops delivering frames.
            raise SourceGone(f"{self.name} stopped delivering frames")
        return frame

    def close(self) -> None:
        if self._capture is not None:
            capture, self._capture = self._capture, None
            capture.release()


def decode_frame(frame: Any, formats: str = "QRCode") -> list[str]:
    """The text of every code of `formats` in one frame; UnreadableTag for a non-text one.

    `formats` is zxing-cpp's list, e.g. "QRCode,DataMatrix".
    """
    import zxingcpp

    found = zxingcpp.read_barcodes(
        frame,
        formats=zxingcpp.barcode_formats_from_str(formats),
        text_mode=zxingcpp.TextMode.Plain,
    )
    texts = []
    for code in found:
        if code.content_type == zxingcpp.ContentType.Binary:
            try:
                texts.append(code.bytes.decode("utf-8"))
            except UnicodeDecodeError:
                raise UnreadableTag(
                    f"a {code.format} code that is not text: {code.bytes[:48].hex(' ')}"
                ) from None
        elif code.text:
            texts.append(code.text)
    return texts


class CameraSource:
    """Codes read from a camera's frames, one Read per code."""

    def __init__(
        self,
        grabber: FrameGrabber,
        *,
        formats: str = "QRCode",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = grabber.name
        self.formats = formats
        self._grabber = grabber
        self._clock = clock
        self._pending: deque[str] = deque()  # more codes in one frame than one read

    @classmethod
    def from_device(
        cls, device: str | int, *, width: int = 640, height: int = 480, formats: str = "QRCode"
    ) -> CameraSource:
        """A camera source on a V4L2 device (a path, or an index as in "0") through OpenCV."""
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return cls(OpenCvGrabber(device, width=width, height=height), formats=formats)

    def open(self) -> None:
        try:
            import zxingcpp
        except ImportError as exc:
            message = f"{self.name}: zxing-cpp is missing ({exc}); install the 'camera' extra"
            raise SourceGone(message) from None
        try:
            zxingcpp.barcode_formats_from_str(self.formats)
        except ValueError as exc:
            raise SourceGone(f"{self.name}: formats {self.formats!r}: {exc}") from None
        self._pending.clear()
        self._grabber.open()

    def close(self) -> None:
        self._pending.clear()
        self._grabber.close()

    def read(self, timeout: float) -> Read | None:
        """The next code seen within `timeout` seconds (at least one frame is looked at)."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            self._pending.extend(decode_frame(self._grabber.grab(), self.formats))
            if not self._pending and time.monotonic() >= deadline:
                return None
        return Read(url=self._pending.popleft(), source=self.name, read_at=self._clock())
