"""gunicorn as operators start it: a configuration mistake is one line and a stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def serve(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    env.update(PYTHONPATH=str(ROOT), PROVENANCE_DATA_DIR=str(tmp_path / "instance"))
    env.update({f"PROVENANCE_{name}": value for name, value in settings.items()})
    return subprocess.run(
        [str(GUNICORN), "-w", "2", "-b", "127.0.0.1:0", "provenance_api.wsgi:app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"ANCHOR_BATCH_MAX": "abc"}, "PROVENANCE_ANCHOR_BATCH_MAX"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
        # Outside the embedded `run`, the service refuses to start without its secrets.
        ({"OPERATOR_KEY": "0x" + "11" * 32}, "KEY_ENCRYPTION_KEY"),
    ],
)
def test_a_bad_configuration_stops_gunicorn_with_one_line_naming_it(tmp_path, settings, named):
    done = serve(tmp_path, **settings)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("provenance-api: ")]
    assert lines and named in lines[0], done.stderr
