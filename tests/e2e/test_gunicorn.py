"""`provenance-api serve`: the API under gunicorn, as an operator starts it in production."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_run import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "provenance_api"]
SECRETS = {
    "SECRET_KEY": "s" * 32,
    "OPERATOR_KEY": "0x" + "11" * 32,
    "KEY_ENCRYPTION_KEY": base64.b64encode(b"k" * 32).decode(),
}


def _env(tmp_path: Path, settings: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    env.update(PYTHONPATH=str(ROOT), PROVENANCE_DATA_DIR=str(tmp_path / "instance"))
    env.update({f"PROVENANCE_{name}": value for name, value in settings.items()})
    return env


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    env = _env(tmp_path, {"DATABASE_URL": url})
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    return url


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (SECRETS | {"ANCHOR_BATCH_MAX": "abc", "CHAIN_URL": "http://node"}, "ANCHOR_BATCH_MAX"),
        (SECRETS | {"DATABASE_URL": "mysql://db/x", "CHAIN_URL": "http://node"}, "mysql"),
        ({"CHAIN_URL": "http://node"}, "PROVENANCE_KEY_ENCRYPTION_KEY"),
        (SECRETS, "PROVENANCE_CHAIN_URL"),  # the embedded chain cannot be shared by workers
        (SECRETS | {"CHAIN_URL": "http://node"}, "db upgrade"),  # a database never migrated
    ],
)
def test_a_mistake_is_one_message_and_exit_1_before_any_worker(tmp_path, settings, named):
    settings.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    done = subprocess.run(
        [*CLI, "serve", "--bind", f"127.0.0.1:{free_port()}"],
        env=_env(tmp_path, settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
    assert named in done.stderr


@pytest.mark.anvil
def test_serve_answers_with_two_workers_and_stops_on_sigterm(tmp_path, anvil_url):
    port = free_port()
    settings = SECRETS | {"DATABASE_URL": _database(tmp_path), "CHAIN_URL": anvil_url}
    process = subprocess.Popen(
        [*CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env=_env(tmp_path, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        began, answered = time.monotonic(), None
        while answered is None and time.monotonic() - began < 30:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    answered = reply.status
            except urllib.error.HTTPError as exc:  # 503 while contracts are not deployed
                answered = exc.code
                exc.close()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert answered in (200, 503)
        unauthorized = urllib.request.Request(f"http://127.0.0.1:{port}/v1/me")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unauthorized, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert output.count("Booting worker") == 2
