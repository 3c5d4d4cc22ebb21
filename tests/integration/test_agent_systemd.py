"""The reader agent's systemd unit: restart on failure, its own user and the reader's groups,
never root; systemd itself accepts it where systemd-analyze is installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "reader_agent" / "systemd" / "reader-agent.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


def test_the_unit_restarts_on_failure_as_its_own_user_with_the_reader_groups() -> None:
    unit = service()
    assert unit["Restart"] == "on-failure"
    assert unit["User"] == "reader-agent" and unit["User"] != "root"
    assert set(unit["SupplementaryGroups"].split()) == {"dialout", "plugdev", "gpio"}
    assert unit["NoNewPrivileges"] == "yes" and unit["CapabilityBoundingSet"] == ""
    assert unit["ExecStart"].endswith("reader-agent run --config /etc/reader-agent/agent.json")
    # Serial and USB readers need /dev: no private /dev, no closed device policy.
    assert "PrivateDevices" not in unit and "DevicePolicy" not in unit


def test_systemd_accepts_the_unit() -> None:
    if shutil.which("systemd-analyze") is None:
        return  # the parse above is what can be checked without systemd
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    # The venv of the install notes is not on this machine; anything else is a unit error.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable: No such file or directory" not in line
    ]
    assert problems == []
