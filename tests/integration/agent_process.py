"""`reader-agent run` as a process against the API on a real port, fed by the scanner emulator.

`Server` serves the API app on 127.0.0.1 (werkzeug, in a thread); `provision` makes a
device key file, registers the device with `POST /v1/devices` and writes the agent's config;
`AgentProcess` runs the daemon and collects its JSON log lines.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from firmware_tools.keys import DEVICE, new_key_file
from tests.integration.api_support import Api

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "dock door passphrase"
AGENT = [sys.executable, "-c", "from reader_agent.cli import main; main()"]


class Server:
    """The app on 127.0.0.1:`port`, started and stopped at will."""

    def __init__(self, app, port: int) -> None:
        self.app, self.port = app, port
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def provision(
    api: Api, org_key: str, folder: Path, api_url: str, sources: list[dict], **extra: Any
) -> tuple[Path, str]:
    """A registered device with its key file, passphrase, API key file and config; the
    config's path and the device address."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = new_key_file(folder / "device.key", PASSPHRASE, kind=DEVICE, scrypt_n=2**10)
    registered = api.call(
        "POST", "/v1/devices", org_key, json={"address": keys.address, "name": "Dock door 3"}
    )
    assert registered.status_code == 201, registered.get_json()
    (folder / "passphrase").write_text(PASSPHRASE + "\n", encoding="utf-8")
    (folder / "api.key").write_text(org_key + "\n", encoding="utf-8")
    config = {
        "api_url": api_url,
        "device_key_file": "device.key",
        "device_address": keys.address,
        "outbox": "outbox.db",
        "api_key_file": "api.key",
        "passphrase_file": "passphrase",
        "read_point": "urn:epc:id:sgln:9506000.13435.3",
        "sources": sources,
        **extra,
    }
    path = folder / "agent.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path, keys.address


def agent_command(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """One `reader-agent` command, as a user runs it."""
    return subprocess.run(
        [*AGENT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env()
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRMWARE_TOOLS_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class AgentProcess:
    """`reader-agent run --config FILE` with its stdout read line by line into `lines`."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [*AGENT, "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_env(),
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw.append(line)
            entry = json.loads(line)  # every stdout line is one JSON object
            self._queue.put(entry)

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict:
        """The next log entry that `match`es (entries before it are kept in `lines`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.process.poll() is not None and self._queue.empty()):
                raise AssertionError(f"no matching log line; stdout:\n{''.join(self.raw)}")
            try:
                entry = self._queue.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.lines.append(entry)
            if match(entry):
                return entry

    def wait_for_all(self, *matches: Callable[[dict[str, Any]], bool], timeout: float = 30) -> None:
        """Until an entry matching each of `matches` has come, in any order."""
        left = list(matches)
        while left:
            entry = self.wait_for(lambda e, left=left: any(m(e) for m in left), timeout)
            left = [match for match in left if not match(entry)]

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM, then the exit code and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(5)
        assert self.process.stdout is not None and self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return self.process.returncode, stderr

    def kill(self) -> None:
        """SIGKILL at once, as a power cut would stop it; what it printed is still read."""
        self.process.kill()
        self.process.wait(30)
        self._reader.join(10)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.process.stdout.close()
        self.process.stderr.close()

    def printed(self, message: str) -> list[dict[str, Any]]:
        """Every log entry with this `msg` that the process printed so far."""
        return [entry for entry in map(json.loads, list(self.raw)) if entry.get("msg") == message]

    def rss_mb(self) -> float:
        """The daemon's resident memory now (VmRSS), in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024
