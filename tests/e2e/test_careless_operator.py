"""`provenance-api` as a careless operator types it: a message and a non-zero exit, no traceback.

Each case also checks that nothing was left half-written: options and settings are checked
before DATA_DIR, the secrets or the database are touched.
"""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from provenance_api import config
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]


def provenance_api(
    args: list[str], data_dir: Path, prefix: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess:
    """`provenance-api ARGS` with PROVENANCE_DATA_DIR=data_dir and the given PROVENANCE_* env."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    clean.update(PYTHONPATH=str(ROOT), PROVENANCE_DATA_DIR=str(data_dir))
    clean.update({f"PROVENANCE_{name}": value for name, value in env.items()})
    return subprocess.run(
        [*prefix, sys.executable, "-m", "provenance_api", *args],
        cwd=data_dir.parent,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def failed_cleanly(result: subprocess.CompletedProcess, status: int, *words: str) -> None:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "0"])
def test_run_refuses_a_port_out_of_range_before_doing_anything(tmp_path, port):
    data_dir = tmp_path / "data"
    result = provenance_api(["run", "--port", port], data_dir)
    failed_cleanly(result, 2, f"{port} is not in the range 1<=x<=65535")
    assert not data_dir.exists()


def test_run_on_a_port_in_use_fails_before_migrating(tmp_path):
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = provenance_api(["run", "--port", str(port)], data_dir)
    failed_cleanly(result, 1, f"Port {port} is in use")  # werkzeug's own message
    assert not (data_dir / "provenance.sqlite3").exists()
    assert not (data_dir / "chain").exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://app:hunter2@db/provenance", ["mysql is not supported", "postgresql+psycopg://"]),
        ("nonsense", ["PROVENANCE_DATABASE_URL is not a database URL"]),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["db", "upgrade"]])
def test_an_unsupported_database_url_is_named(tmp_path, url, words, command):
    data_dir = tmp_path / "data"
    result = provenance_api(command, data_dir, DATABASE_URL=url)
    failed_cleanly(result, 1, *words)
    assert "hunter2" not in result.stderr
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("WRITER_POLL_SECONDS", ["worker", "--once"]),
        ("CONFIRMATIONS", ["run"]),
        ("DEV_FUND_WEI", ["run"]),
    ],
)
def test_a_non_numeric_setting_is_named(tmp_path, name, command):
    data_dir = tmp_path / "data"
    result = provenance_api(command, data_dir, **{name: "lots"})
    failed_cleanly(result, 1, f"PROVENANCE_{name} must be", "'lots'")
    assert not data_dir.exists()


def test_a_data_dir_that_is_a_file_is_named(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.write_text("my notes")
    result = provenance_api(["run"], data_dir)
    failed_cleanly(result, 1, f"PROVENANCE_DATA_DIR {data_dir} is a file")
    assert data_dir.read_text() == "my notes"


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory that `provenance-api` cannot write, and the command prefix that ensures it.

    Root writes anywhere, so as root the command runs without capabilities (setpriv).
    """
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            unavailable("setpriv (util-linux) is needed to drop root's capabilities")
        prefix = (setpriv, "--bounding-set=-all", "--inh-caps=-all", "--")
    yield data_dir, prefix
    data_dir.chmod(0o755)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["run"], ["PROVENANCE_DATA_DIR", "is not writable"]),
        (["db", "upgrade"], ["cannot migrate", "unable to open database file"]),
    ],
)
def test_a_read_only_data_dir_is_named(read_only_dir, command, words):
    data_dir, prefix = read_only_dir
    result = provenance_api(command, data_dir, prefix)
    failed_cleanly(result, 1, *words)
    assert list(data_dir.iterdir()) == []


def test_an_unknown_revision_is_named_and_no_database_is_created(tmp_path):
    data_dir = tmp_path / "data"
    result = provenance_api(["db", "upgrade", "--revision", "nosuchrev"], data_dir)
    failed_cleanly(result, 1, "unknown revision 'nosuchrev'", "known: head")
    assert not (data_dir / "provenance.sqlite3").exists()


def test_missing_secrets_are_a_configuration_error_naming_the_variables(tmp_path):
    data_dir = tmp_path / "data"
    result = provenance_api(["org", "create", "Acme", "--kind", "supplier"], data_dir)
    names = [f"PROVENANCE_{name}" for name in config.missing_secrets({})]
    assert names and "PROVENANCE_ADMIN_KEY" not in names  # only deploys need the admin
    failed_cleanly(result, 1, "missing secrets", *names)
    assert not data_dir.exists()


def test_a_secrets_file_open_to_others_is_refused_with_the_fix(tmp_path):
    data_dir = tmp_path / "data"
    path, _ = config.ensure_secrets(data_dir)
    path.chmod(0o644)
    result = provenance_api(["db", "upgrade"], data_dir)
    failed_cleanly(result, 1, f"chmod 600 {path}")
    assert not (data_dir / "provenance.sqlite3").exists()


def console_script() -> str:
    """What setup.cfg installs as `provenance-api`, e.g. "provenance_api.__main__:main"."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    for line in setup["options.entry_points"]["console_scripts"].splitlines():
        name, _, target = line.partition("=")
        if name.strip() == "provenance-api":
            return target.strip()
    raise AssertionError("setup.cfg installs no provenance-api")


@pytest.mark.parametrize("missing", ["flask", "sqlalchemy"])
def test_without_the_server_extra_the_command_says_what_to_install(tmp_path, missing):
    # As after `pip install '.[agent]'`: the console script's import of `missing` fails.
    module, _, function = console_script().partition(":")
    program = (
        f"import sys; sys.modules[{missing!r}] = None; "
        f"from {module} import {function}; {function}()"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    env.update(PYTHONPATH=str(ROOT), PROVENANCE_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "-c", program, "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    failed_cleanly(result, 1, "pip install 'provenance[server]'", repr(missing))
    assert not (tmp_path / "data").exists()
