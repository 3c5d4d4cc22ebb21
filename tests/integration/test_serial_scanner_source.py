"""The serial scanner source against a scanner emulator on a pty: lines, bad input, re-plug."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reader_agent.reads import Read
from reader_agent.sources import SourceGone, UnreadableTag
from reader_agent.sources.serial_scanner import POLL, SerialScanner
from reader_agent.sources.supervisor import Supervisor
from tests.fakes.serial_scanner import ScannerEmulator

URL = "https://id.example.com/01/09506000134352/21/SN-1?sig=AbC_-d"
BOUND = 3.0  # seconds: every wait here must end well within this


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ScannerEmulator]:
    with ScannerEmulator(tmp_path / "ttyScanner") as emulator:
        yield emulator


@pytest.fixture
def scanner(emulator: ScannerEmulator) -> Iterator[SerialScanner]:
    scanner = SerialScanner(str(emulator.link), baud=115200, max_line=256)
    scanner.open()
    yield scanner
    scanner.close()


def read_until(source: SerialScanner | Supervisor, *, within: float = BOUND) -> Read:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        read = source.read(0.2)
        if read is not None:
            return read
    raise AssertionError(f"no read within {within} s")


def test_each_line_is_a_read_whatever_its_line_end(emulator, scanner):
    emulator.scan(URL)
    emulator.scan("second", suffix=b"\r")
    emulator.scan("third", suffix=b"\n")
    emulator.scan(" spaced text ", suffix=b"\r\n\r\n\n")
    reads = [read_until(scanner) for _ in range(4)]
    assert [r.url for r in reads] == [URL, "second", "third", " spaced text "]
    assert {r.source for r in reads} == {f"serial:{emulator.link}"}
    assert all(abs(r.read_at - time.time()) < BOUND for r in reads)
    assert all(r.uid == b"" and r.originality_signature == b"" for r in reads)


def test_a_line_split_across_writes_is_one_read(emulator, scanner):
    emulator.send(URL[:10].encode())
    assert scanner.read(0.2) is None
    emulator.send(URL[10:].encode() + b"\r\n")
    assert read_until(scanner).url == URL


def test_nothing_scanned_returns_none_in_time(scanner):
    start = time.monotonic()
    assert scanner.read(0.3) is None
    assert 0.3 <= time.monotonic() - start < 0.3 + POLL + 0.2


def test_bad_utf8_is_reported_and_the_next_scan_is_read(emulator, scanner):
    emulator.scan(b"https://x/\xff\xfe")
    emulator.scan("after")
    with pytest.raises(UnreadableTag, match="not UTF-8 text was dropped: 68 74"):
        read_until(scanner)
    assert read_until(scanner).url == "after"


def test_an_over_long_line_is_dropped_once_and_the_next_is_read(emulator, scanner):
    emulator.send(b"A" * 200)
    emulator.send(b"B" * 200)  # past max_line (256) without a line end
    with pytest.raises(UnreadableTag, match="longer than 256 bytes"):
        read_until(scanner)
    emulator.send(b"C" * 300 + b"\r\n")  # the rest of the same line: dropped silently
    emulator.scan("next")
    assert read_until(scanner).url == "next"
    emulator.scan("D" * 300)  # a whole over-long line in one write
    with pytest.raises(UnreadableTag, match="longer than 256 bytes"):
        read_until(scanner)
    emulator.scan("x" * 256)  # exactly at the bound is fine
    assert read_until(scanner).url == "x" * 256


def test_a_second_agent_cannot_open_the_same_scanner(emulator, scanner):
    other = SerialScanner(str(emulator.link))
    with pytest.raises(SourceGone, match="does not open"):
        other.open()


def test_a_missing_port_is_source_gone(tmp_path):
    with pytest.raises(SourceGone, match="does not open"):
        SerialScanner(str(tmp_path / "nothing")).open()


def test_unplug_is_noticed_and_a_replug_is_read_without_a_restart(emulator, caplog):
    caplog.set_level(logging.INFO, logger="reader_agent.sources")
    supervisor = Supervisor(SerialScanner(str(emulator.link)), initial=0.05, maximum=0.4)
    assert supervisor.read(0.1) is None and supervisor.state().connected
    emulator.scan(URL)
    assert read_until(supervisor).url == URL

    emulator.unplug()
    start = time.monotonic()
    while supervisor.state().connected:
        assert supervisor.read(0.2) is None
        assert time.monotonic() - start < BOUND, "the unplug was not noticed"
    state = supervisor.state()
    assert state.reconnecting_since is not None
    assert "stopped answering" in (state.last_error or "")
    # Unplugged for a while: reopens keep failing, and the delays stay bounded.
    for _ in range(8):
        assert supervisor.read(0.2) is None
    assert not supervisor.state().connected
    assert "does not open" in (supervisor.state().last_error or "")

    emulator.plug()  # a new pty behind the same link, as udev's by-id links do
    assert emulator.path
    start = time.monotonic()
    while not supervisor.state().connected:
        supervisor.read(0.2)
        assert time.monotonic() - start < BOUND, "the re-plug was not picked up"
    emulator.scan("after the re-plug")
    assert read_until(supervisor).url == "after the re-plug"
    assert supervisor.state().reconnecting_since is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("reopening in" in m for m in messages)
    assert any("open again after" in m for m in messages)
    supervisor.close()


def test_a_scanner_plugged_in_after_the_agent_started_is_found(tmp_path):
    emulator = ScannerEmulator(tmp_path / "ttyLate")
    supervisor = Supervisor(SerialScanner(str(emulator.link)), initial=0.05, maximum=0.2)
    for _ in range(3):
        assert supervisor.read(0.1) is None
    assert not supervisor.state().connected and supervisor.state().failures >= 1
    with emulator:
        start = time.monotonic()
        while not supervisor.state().connected:
            supervisor.read(0.1)
            assert time.monotonic() - start < BOUND
        emulator.scan(URL)
        assert read_until(supervisor).url == URL
    supervisor.close()
