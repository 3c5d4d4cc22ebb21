"""One suite for every source, the fake and the real adapters, so that the fake cannot drift."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from reader_agent.sources import Source, SourceGone
from tests.fakes.sources import ScriptedSource


def scripted(stack: ExitStack, tmp_path: Path) -> Source:
    return ScriptedSource()


def serial(stack: ExitStack, tmp_path: Path) -> Source:
    from reader_agent.sources.serial_scanner import SerialScanner
    from tests.fakes.serial_scanner import ScannerEmulator

    emulator = stack.enter_context(ScannerEmulator(tmp_path / "ttyScanner"))
    return SerialScanner(str(emulator.link))


def nfc(stack: ExitStack, tmp_path: Path) -> Source:
    from firmware_tools.errors import ReaderNotFound
    from firmware_tools.nfc.libnfc import bindings
    from reader_agent.sources.nfc import NfcSource
    from tests.conftest import unavailable
    from tests.fakes.pn532 import Pn532Emulator

    try:
        bindings()
    except ReaderNotFound as exc:
        unavailable(str(exc))
    emulator = stack.enter_context(Pn532Emulator())  # an empty field
    return NfcSource(emulator.connstring, timeout_ms=200)


def camera(stack: ExitStack, tmp_path: Path) -> Source:
    cv2 = pytest.importorskip("cv2", reason="the 'camera' extra is not installed")
    import numpy

    from reader_agent.sources.camera import CameraSource
    from tests.fakes.camera_frames import frame

    # A file is read as fast as it decodes, not at a camera's pace: enough frames for 1 s.
    path = str(tmp_path / "empty.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    blank = cv2.cvtColor(numpy.asarray(frame(size=(320, 240))), cv2.COLOR_GRAY2BGR)
    for _ in range(3000):
        writer.write(blank)
    writer.release()
    return CameraSource.from_device(path)


@pytest.fixture(
    params=[
        scripted,
        serial,
        pytest.param(nfc, marks=pytest.mark.libnfc),
        camera,
    ]
)
def source(request, tmp_path: Path) -> Iterator[Source]:
    make: Callable[[ExitStack, Path], Source] = request.param
    with ExitStack() as stack:
        source = make(stack, tmp_path)
        yield source
        source.close()


def test_a_closed_source_raises_source_gone(source: Source) -> None:
    with pytest.raises(SourceGone):
        source.read(0.1)
    source.open()
    source.close()
    with pytest.raises(SourceGone):
        source.read(0.1)


def test_nothing_to_read_is_none_within_the_timeout(source: Source) -> None:
    source.open()
    start = time.monotonic()
    assert source.read(0.2) is None
    assert time.monotonic() - start < 0.2 + 0.5


def test_close_is_idempotent_and_a_source_opens_again(source: Source) -> None:
    source.open()
    source.close()
    source.close()
    source.open()
    assert source.read(0.05) is None
    assert isinstance(source.name, str) and ":" in source.name
