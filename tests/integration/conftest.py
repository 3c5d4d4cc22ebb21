"""Fixtures shared by the integration tests: the API, and the firmware-tools CLI's key files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_tools.cli import main
from tests.integration.api_support import make_api

PASSPHRASE = "test passphrase"


@pytest.fixture
def api(tmp_path):
    """The API on a migrated SQLite database (tests/integration/api_support.Api)."""
    made = make_api("sqlite", tmp_path)
    yield made
    made.app.extensions["provenance"].close()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("FIRMWARE_TOOLS_PASSPHRASE", raising=False)
    return CliRunner()


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n", encoding="utf-8")
    return path


@pytest.fixture
def key_file(tmp_path: Path, runner: CliRunner, passfile: Path) -> Path:
    path = tmp_path / "supplier.key"
    result = runner.invoke(main, ["keys", "new", str(path), "--passphrase-file", str(passfile)])
    assert result.exit_code == 0, result.output
    return path
