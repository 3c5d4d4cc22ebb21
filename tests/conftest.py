"""Fixtures for the real services: PostgreSQL and an anvil JSON-RPC node.

Outside CI a missing service skips the test that needs it; in CI (CI=true) it fails it,
so that nothing is skipped silently there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANVIL = (
    ROOT / "contracts_abi" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)
POSTGRES_ADMIN_URL = os.environ.get(
    "PROVENANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: a service CI promises must be there."""
    if IN_CI:
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed")
    plain = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL not reachable at {plain}: {exc}")
    name = f"provenance_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _rpc(url: str, method: str, params: list | None = None) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=2) as response:
        return json.load(response)["result"]


@contextmanager
def anvil_node() -> Iterator[str]:
    """A fresh anvil node on a free loopback port until the block ends: its URL."""
    if not ANVIL.exists():
        unavailable(f"anvil not installed (run npm ci in contracts_abi): {ANVIL}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _rpc(url, "eth_chainId")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    unavailable("anvil did not start")
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def anvil_url() -> Iterator[str]:
    """A fresh anvil node on a free loopback port for one test."""
    with anvil_node() as url:
        yield url
