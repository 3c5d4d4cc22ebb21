"""`reader-agent doctor` as a user runs it, against the PN532 emulator on a pseudo-terminal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from firmware_tools.errors import ReaderNotFound
from tests.conftest import unavailable
from tests.fakes.ntag21x import SimulatedNtag21x
from tests.fakes.pn532 import Pn532Emulator

pytestmark = pytest.mark.libnfc


@pytest.fixture(autouse=True)
def _libnfc() -> None:
    from firmware_tools.nfc.libnfc import bindings

    try:
        bindings()
    except ReaderNotFound as exc:
        unavailable(str(exc))


def doctor(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from reader_agent.cli import main; main()", "doctor", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_doctor_finds_the_reader_on_the_emulator() -> None:
    tag = SimulatedNtag21x(bytes.fromhex("04A1B2C3D4E5F6"))
    with Pn532Emulator([tag]) as emulator:
        result = doctor("--device", emulator.connstring, "--json")
    assert emulator.errors == []
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)
    assert all(finding["level"] != "error" for finding in findings)
    assert any("libnfc" in finding["message"] for finding in findings)


def test_doctor_names_a_missing_device_and_exits_non_zero() -> None:
    result = doctor("--device", "pn532_uart:/dev/provenance-no-such-tty")
    assert result.returncode == 1
    assert "/dev/provenance-no-such-tty does not exist" in result.stdout
    assert "Traceback" not in result.stderr
