"""Ingest end to end: `provenance-api serve` (gunicorn, 2 workers) on PostgreSQL, anvil, a worker.

Run: python bench/ingest.py [--devices 50] [--batches 4] [--size 100] [--quick] [--postgres URL]
Starts every process as an operator would (PROVENANCE_* settings; CONFIRMATIONS=0 because
anvil mines each transaction at once), sets up over HTTP as a supplier would, then a feeder
process plays the devices: each posts its signed batches over real HTTP, all at once.
Prints `register_10k_items_s` (one cold POST /v1/items of 10,000 NTAG 424 DNA items; target
<= 5), `events_per_s` (accepted events over the posting phase's wall time; every check on;
target >= 2,000) and `anchor_lag_p99_s` (an event's `received_at` to the confirmation of its
batch's anchor write; target <= 15), each followed by its target. Every event is about a
distinct item with a fresh SUN tap and must be accepted. Signing is done before the clock
starts. Exits non-zero with a message when PostgreSQL, anvil or gunicorn is missing.
Every process shares the machine's cores: the figures are only as good as the machine is idle.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from eth_account import Account  # noqa: E402
from scratch_postgres import scratch_database  # noqa: E402

from provenance_api import config  # noqa: E402
from tests.fakes.sun_tags import sun_url  # noqa: E402
from tests.integration.events_support import MASTER, serial_of, sign, uid_of  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ANVIL = (
    ROOT / "contracts_abi" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)
GTIN = "09506000134352"
REGISTER_BATCH = 10_000  # the API's most items per request, and the figure's size
STARTUP_SECONDS = 60
TARGETS = {
    "register_10k_items_s": "<= 5",
    "events_per_s": ">= 2000",
    "anchor_lag_p99_s": "<= 15",
}


class BenchError(RuntimeError):
    """A prerequisite is missing or a step failed; the message says which."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- processes -------------------------------------------------------------------------------


@contextlib.contextmanager
def process(name: str, command: list[str], env: dict[str, str], logs: Path) -> Iterator[Path]:
    """Run `command` in its own session for the block; its output goes to logs/<name>.log.

    Stopped with SIGTERM, then its whole process group killed, so no worker outlives it.
    """
    log = logs / f"{name}.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield log
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # the group's leftovers (gunicorn's workers)


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def cli(env: dict[str, str], *args: str) -> str:
    """`provenance-api ARGS` as a user runs it; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "provenance_api", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise BenchError(f"provenance-api {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_for(what: str, ready: Any, log: Path) -> None:
    """Poll `ready()` until true; BenchError with the process's log when it never is."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if ready():
                return
        except (httpx.TransportError, OSError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not start in {STARTUP_SECONDS} s:\n{tail(log)}")
        time.sleep(0.1)


def anvil_answers(url: str) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    return httpx.post(url, json=body, timeout=2).status_code == 200


def api_healthy(url: str) -> bool:
    answer = httpx.get(f"{url}/healthz", timeout=5)
    return answer.status_code == 200 and answer.json()["database"]["ok"]


@contextlib.contextmanager
def stack(database_url: str, scratch: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """anvil, a migrated database with the contracts, gunicorn and a worker; (API URL, env)."""
    logs = scratch / "logs"
    logs.mkdir()
    chain_port, api_port = free_port(), free_port()
    chain_url = f"http://127.0.0.1:{chain_port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PROVENANCE_DATA_DIR=str(scratch / "data"),
        PROVENANCE_DATABASE_URL=database_url,
        PROVENANCE_CHAIN_URL=chain_url,
        PROVENANCE_CONFIRMATIONS="0",  # anvil automines: no block would ever come on top
        **{f"PROVENANCE_{name}": value for name, value in config.new_secrets().items()},
    )
    anvil = [str(ANVIL), "--host", "127.0.0.1", "--port", str(chain_port), "--silent"]
    gunicorn = [
        sys.executable,
        "-m",
        "provenance_api",
        "serve",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{api_port}",
    ]
    worker = [sys.executable, "-m", "provenance_api", "worker"]
    api_url = f"http://127.0.0.1:{api_port}"
    with contextlib.ExitStack() as stop:
        log = stop.enter_context(process("anvil", anvil, env, logs))
        wait_for("anvil", lambda: anvil_answers(chain_url), log)
        cli(env, "db", "upgrade")
        cli(env, "chain", "deploy")
        log = stop.enter_context(process("gunicorn", gunicorn, env, logs))
        wait_for("gunicorn", lambda: api_healthy(api_url), log)
        stop.enter_context(process("worker", worker, env, logs))
        yield api_url, env


# -- set-up over HTTP ------------------------------------------------------------------------


def call(client: httpx.Client, method: str, path: str, key: str, **kwargs: Any) -> Any:
    """One request with `key` as bearer; its JSON, or BenchError on a non-2xx answer."""
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    answer = client.request(method, path, headers=headers, **kwargs)
    if not answer.is_success:
        raise BenchError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


def item_rows(first: int, count: int) -> bytes:
    """The body registering items first..first+count-1 as NTAG 424 DNA items with their UIDs."""
    rows = [
        {
            "gtin": GTIN,
            "serial": serial_of(n),
            "lot": "LOT-2026-12",
            "expiry": "271231",
            "tag": "ntag424",
            "uid": uid_of(n).hex(),
        }
        for n in range(first, first + count)
    ]
    return json.dumps({"items": rows}).encode()


def register_items(client: httpx.Client, supplier: str, count: int) -> float:
    """Register items 1..count in requests of 10,000; the seconds of the first one."""
    first_seconds = 0.0
    for first in range(1, count + 1, REGISTER_BATCH):
        size = min(REGISTER_BATCH, count + 1 - first)
        body = item_rows(first, size)
        start = time.perf_counter()
        answer = call(
            client,
            "POST",
            "/v1/items",
            supplier,
            content=body,
            headers={"Content-Type": "application/json"},
        )
        if first == 1:
            first_seconds = time.perf_counter() - start
        if answer["created"] != size or answer["refused_count"] != 0:
            raise BenchError(f"items {first}..: {str(answer)[:500]}")
    return first_seconds


def set_up(api_url: str, env: dict[str, str], devices: int, events: int) -> dict[str, Any]:
    """Organizations, product, SUN key, items and devices; what the feeder needs, and a figure."""
    operator = json.loads(cli(env, "operator", "create", "Bench operators", "--json"))["api_key"]
    with httpx.Client(base_url=api_url, timeout=300) as client:
        keys = {}
        for name, kind in (("Bench supplier", "supplier"), ("Bench carrier", "carrier")):
            made = call(
                client, "POST", "/v1/organizations", operator, json={"name": name, "kind": kind}
            )
            keys[kind] = made["api_key"]
        supplier, carrier = keys["supplier"], keys["carrier"]
        call(client, "POST", "/v1/products", supplier, json={"gtin": GTIN, "name": "Tea"})
        call(client, "POST", "/v1/sun-keys", supplier, json={"master_key": MASTER.hex()})
        register_seconds = register_items(client, supplier, max(events, REGISTER_BATCH))
        readers = []
        for n in range(devices):
            account = Account.create()
            body = {"address": account.address, "name": f"Dock door {n + 1}"}
            call(client, "POST", "/v1/devices", carrier, json=body)
            readers.append((bytes(account.key), account.address))
    return {"carrier": carrier, "readers": readers, "register_seconds": register_seconds}


# -- the devices (another process) -----------------------------------------------------------


def signed_event(key: bytes, address: str, n: int, event_time: str) -> dict[str, Any]:
    """Item n's receiving event with its first SUN tap, signed by the reader at `address`."""
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "gtin": GTIN,
        "serial": serial_of(n),
        "biz_step": "receiving",
        "disposition": "in_progress",
        "read_point": "urn:epc:id:sgln:9506000.13435.0",
        "from_party": None,
        "to_party": None,
        "event_time": event_time,
        "device": address,
        "tag": {"url": sun_url(MASTER, uid_of(n), 1, gtin=GTIN, serial=serial_of(n))},
    }
    body["signature"] = "0x" + sign(key, body).hex()
    return body


def feed(
    api_url: str,
    carrier: str,
    readers: list[tuple[bytes, str]],
    batches: int,
    size: int,
    results: Any,
) -> None:
    """The devices: sign every batch, then all post theirs at once; (seconds, accepted, errors)."""
    event_time = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    bodies: list[list[bytes]] = []
    n = 0
    for key, address in readers:
        mine = []
        for _ in range(batches):
            events = [signed_event(key, address, n + i + 1, event_time) for i in range(size)]
            n += size
            mine.append(json.dumps({"events": events}).encode())
        bodies.append(mine)
    accepted = [0] * len(readers)
    errors: list[str] = []
    go = threading.Barrier(len(readers) + 1)

    def device(index: int) -> None:
        headers = {"Authorization": f"Bearer {carrier}", "Content-Type": "application/json"}
        with httpx.Client(base_url=api_url, headers=headers, timeout=300) as client:
            go.wait()
            for body in bodies[index]:
                try:
                    answer = client.post("/v1/events", content=body)
                except httpx.HTTPError as exc:
                    errors.append(f"device {index}: {exc!r}")
                    return
                if answer.status_code != 200:
                    errors.append(f"device {index}: {answer.status_code} {answer.text[:300]}")
                    return
                result = answer.json()
                accepted[index] += result["accepted"]
                if result["accepted"] != size:
                    refused = [r for r in result["results"] if r["status"] != "accepted"]
                    errors.append(f"device {index}: {str(refused[:2])[:300]}")
                    return

    threads = [threading.Thread(target=device, args=(i,)) for i in range(len(readers))]
    for thread in threads:
        thread.start()
    go.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    results.put((time.perf_counter() - start, sum(accepted), errors))


def post_events(api_url: str, ready: dict[str, Any], batches: int, size: int) -> float:
    """Run the feeder process; events accepted per second of its posting phase."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    args = (api_url, ready["carrier"], ready["readers"], batches, size, results)
    feeder = context.Process(target=feed, args=args, name="devices")
    feeder.start()
    try:
        while True:
            try:
                seconds, accepted, errors = results.get(timeout=1)
                break
            except queue.Empty:
                if not feeder.is_alive():
                    raise BenchError(f"the feeder died (exit code {feeder.exitcode})") from None
        feeder.join(timeout=30)
    finally:
        if feeder.is_alive():
            feeder.kill()
            feeder.join()
    expected = len(ready["readers"]) * batches * size
    if errors or accepted != expected:
        raise BenchError(f"{accepted} of {expected} events accepted: {errors[:3]}")
    return accepted / seconds


# -- anchoring -------------------------------------------------------------------------------

LAGS = sa.text(
    """
    SELECT count(*) AS events,
           count(w.confirmed_at) FILTER (WHERE w.status = 'confirmed') AS anchored,
           count(*) FILTER (WHERE w.status = 'failed') AS failed,
           percentile_cont(0.99) WITHIN GROUP (
               ORDER BY extract(epoch FROM w.confirmed_at - e.received_at)
           ) AS p99
    FROM custody_event e
    LEFT JOIN anchor_batch b ON b.id = e.batch_id
    LEFT JOIN chain_write w ON w.idempotency_key = b.idempotency_key
    WHERE e.device = ANY(:devices)
    """
)


def anchor_lag_p99(database_url: str, devices: list[str], expected: int, timeout: float) -> float:
    """Wait until every event's batch anchor is confirmed; the 99th percentile of their lags."""
    engine = sa.create_engine(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with engine.connect() as connection:
                row = connection.execute(LAGS, {"devices": devices}).one()
            if row.failed:
                raise BenchError(f"{row.failed} events are in batches whose anchor write failed")
            if row.events == expected and row.anchored == expected:
                return float(row.p99)
            if time.monotonic() > deadline:
                raise BenchError(
                    f"after {timeout:.0f} s only {row.anchored} of {expected} events are "
                    "anchored on-chain"
                )
            time.sleep(0.5)
    finally:
        engine.dispose()


# -- main ------------------------------------------------------------------------------------


def check_prerequisites() -> None:
    if not ANVIL.exists():
        raise BenchError(f"anvil is not installed (run npm ci in contracts_abi): {ANVIL}")
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        raise BenchError("gunicorn is not installed: pip install 'provenance[server]'") from None


def run(args: argparse.Namespace) -> dict[str, float]:
    """Every figure of one run, in order of measurement."""
    check_prerequisites()
    events = args.devices * args.batches * args.size
    with scratch_database(args.postgres, "bench_ingest") as database_url:
        if database_url is None:
            raise BenchError(f"PostgreSQL does not answer at {args.postgres}")
        with (
            tempfile.TemporaryDirectory() as scratch,
            stack(database_url, Path(scratch)) as (api_url, env),
        ):
            try:
                ready = set_up(api_url, env, args.devices, events)
                rate = post_events(api_url, ready, args.batches, args.size)
                devices = [address for _, address in ready["readers"]]
                lag = anchor_lag_p99(database_url, devices, events, args.anchor_timeout)
            except BenchError as exc:
                # The logs go with the scratch directory: show their ends now.
                logs = Path(scratch) / "logs"
                ends = "".join(
                    f"\n-- end of {name}.log --\n{tail(logs / f'{name}.log', 15)}"
                    for name in ("gunicorn", "worker")
                )
                raise BenchError(f"{exc}{ends}") from None
    return {
        "register_10k_items_s": ready["register_seconds"],
        "events_per_s": rate,
        "anchor_lag_p99_s": lag,
    }


def main() -> None:
    """Parse arguments, run, print each figure and its target; exit 1 with a message on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--batches", type=int, default=4, help="batches per device")
    parser.add_argument("--size", type=int, default=100, help="events per batch")
    parser.add_argument("--quick", action="store_true", help="10 devices, 1 batch of 20 each")
    parser.add_argument("--anchor-timeout", type=float, default=300, help="seconds")
    parser.add_argument("--postgres", default=POSTGRES, help="a server URL (its admin database)")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.batches, args.size = 10, 1, 20
    # A SIGTERM (e.g. a test's timeout) unwinds like Ctrl-C: processes stopped, database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        figures = run(args)
    except BenchError as exc:
        sys.exit(f"bench/ingest.py: {exc}")
    decimals = {"events_per_s": 0}
    for name, value in figures.items():
        print(f"{name}: {value:.{decimals.get(name, 2)}f}")
        print(f"{name}_target: {TARGETS[name]}")


if __name__ == "__main__":
    main()
