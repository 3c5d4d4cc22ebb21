"""`provenance-api run` on a fresh machine: healthy within seconds, same contracts on restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30  # generous for a loaded CI machine; a laptop takes 2-3 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    env.update(PROVENANCE_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "provenance_api", "run", "--port", str(port)],
        cwd=data_dir.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(process: subprocess.Popen, port: int) -> tuple[dict, float]:
    began = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                body = json.load(reply)
            if body["status"] == "ok":
                return body, time.monotonic() - began
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None:
            raise AssertionError(f"run exited early:\n{process.stdout.read()}")
        if time.monotonic() - began > STARTUP_SECONDS:
            process.kill()
            raise AssertionError(f"not healthy after {STARTUP_SECONDS} s:\n{process.stdout.read()}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def test_run_is_healthy_and_keeps_its_contracts_across_restarts(tmp_path):
    data_dir = tmp_path / "provenance-data"
    port = free_port()
    process = start(data_dir, port)
    body, _ = wait_healthy(process, port)
    first_output = stop(process)

    assert "generated secrets" in first_output
    secrets_file = data_dir / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert body["database"]["ok"] is True
    chain = body["chain"]
    assert isinstance(chain["chain_id"], int)
    assert isinstance(chain["block"], int)
    assert chain["embedded"] is True
    contracts = chain["contracts"]
    assert set(contracts) == {"ProductPassport", "CustodyLedger", "TradeEscrow"}
    assert all(address.startswith("0x") and len(address) == 42 for address in contracts.values())
    assert body["writer"]["running"] is True

    port = free_port()
    process = start(data_dir, port)
    again, _ = wait_healthy(process, port)
    second_output = stop(process)
    assert "generated secrets" not in second_output
    assert again["chain"]["contracts"] == contracts
    assert again["chain"]["chain_id"] == chain["chain_id"]
    assert again["chain"]["block"] >= chain["block"]


def test_run_refuses_a_bad_port_with_a_message(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    env.update(PROVENANCE_DATA_DIR=str(tmp_path / "d"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "provenance_api", "run", "--port", "not-a-port"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "not-a-port" in result.stderr
    assert "Traceback" not in result.stderr
