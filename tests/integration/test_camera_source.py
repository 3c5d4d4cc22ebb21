"""The camera source through OpenCV's VideoCapture, on a video file of QR codes.

A V4L2 camera and a video file are read through the same VideoCapture API, so this runs
the real grabber and the real decoder; only the device is a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reader_agent.sources import SourceGone, build_source
from reader_agent.sources.camera import CameraSource, OpenCvGrabber
from reader_agent.sources.window import RepeatWindow
from tests.fakes.camera_frames import frame

cv2 = pytest.importorskip("cv2", reason="the 'camera' extra is not installed")
numpy = pytest.importorskip("numpy")

URL = "https://id.example.com/01/09506000134352/21/SN-1?sig=AbC_-d"


def video(path: Path, frames: list) -> Path:
    """An MJPEG AVI of `frames` (PIL greyscale images), as a camera would deliver them."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    assert writer.isOpened()
    for image in frames:
        writer.write(cv2.cvtColor(numpy.asarray(image), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_codes_in_frames_are_reads_and_a_code_in_view_counts_once(tmp_path):
    blank, code, other = frame(), frame(URL), frame("second")
    path = video(tmp_path / "camera.avi", [blank] * 3 + [code] * 4 + [blank, other])
    source = CameraSource.from_device(str(path))
    source.open()
    try:
        reads = [source.read(1.0) for _ in range(5)]
        assert [r.url for r in reads if r is not None] == [URL] * 4 + ["second"]
        assert {r.source for r in reads if r is not None} == {f"camera:{path}"}
        window = RepeatWindow(2.0)
        admitted = [r.url for i, r in enumerate(reads) if r and window.admit(r, i * 0.1)]
        assert admitted == [URL, "second"]
        # The end of the file is what an unplugged camera looks like: no more frames.
        with pytest.raises(SourceGone, match="stopped delivering frames"):
            source.read(1.0)
    finally:
        source.close()


def test_a_camera_with_nothing_in_view_returns_none_in_time(tmp_path):
    path = video(tmp_path / "empty.avi", [frame()] * 30)
    source = CameraSource(OpenCvGrabber(str(path)))
    source.open()
    assert source.read(0.0) is None  # looks at one frame at least
    source.close()


def test_a_missing_camera_is_source_gone(tmp_path):
    source = build_source({"kind": "camera", "device": str(tmp_path / "video9")})
    with pytest.raises(SourceGone, match="does not open"):
        source.open()
    bad = build_source({"kind": "camera", "formats": "Nope"})
    with pytest.raises(SourceGone, match="formats 'Nope'"):
        bad.open()
