"""The reader agent as it runs at a dock door: scan latency, memory, and a backlog drained.

Run: python bench/agent.py [--scans N] [--queued N]
A `reader-agent run` process reads the serial-scanner emulator (a pty) and delivers to the
API (SQLite, werkzeug on a real port, in this process). Prints `name: value` lines:

- `scan_to_durable_p99_ms`: from the source handing over a read to the event's commit in
  the outbox (fsynced), as the daemon logs it (`durable_ms`), over N scans at 50 a second.
- `line_to_recorded_p99_ms`: the same scans seen from outside, from the line written on the
  scanner's pty to the daemon's "recorded" log line read here.
- `rss_mb`: the daemon's largest resident set (VmRSS) sampled while scanning and draining.
- `drain_10000_s`: N queued events of distinct items (10,000 by default; recorded into the
  outbox while the agent was stopped) delivered and acknowledged, from the restarted
  daemon's "started" line to an empty outbox. After an outage the uploader's backoff (full
  jitter, at most 60 s) comes on top of this.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reader_agent.config import load_config, load_device_key  # noqa: E402
from reader_agent.context import Context  # noqa: E402
from reader_agent.events import build_event  # noqa: E402
from reader_agent.outbox import Outbox  # noqa: E402
from reader_agent.reads import Read  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.fakes.serial_scanner import ScannerEmulator  # noqa: E402
from tests.integration.agent_process import PASSPHRASE, AgentProcess, Server, provision  # noqa: E402
from tests.integration.api_support import make_api  # noqa: E402
from tests.integration.events_support import make_world  # noqa: E402

SCAN_INTERVAL = 0.02
ITEMS = 8


def p99(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[98]
        if len(values) > 1
        else values[0]
    )


class RssSampler:
    """The process's largest VmRSS, sampled every 50 ms from a thread."""

    def __init__(self, agent: AgentProcess) -> None:
        self.agent, self.peak = agent, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.agent.rss_mb())
            except (OSError, KeyError):
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def wait_empty(outbox: Path, deadline_s: float) -> None:
    with Outbox(outbox) as box:
        deadline = time.monotonic() + deadline_s
        while box.depth():
            if time.monotonic() > deadline:
                raise SystemExit(f"{box.depth()} events still pending after {deadline_s} s")
            time.sleep(0.05)
        counts = box.counts()
    if counts["rejected"]:
        raise SystemExit(f"{counts['rejected']} events rejected: {counts}")


def scan_phase(world, config: Path, scanner: ScannerEmulator, scans: int) -> dict[str, float]:
    agent = AgentProcess(config)
    sampler = RssSampler(agent)
    try:
        agent.wait_for_all(
            lambda e: e.get("msg", "").endswith(": open"),
            lambda e: e.get("msg", "").startswith("trust refreshed"),
        )
        durable, outside = [], []
        for n in range(scans):
            url = world.tap(n % ITEMS + 1)
            sent = time.perf_counter()
            scanner.scan(url)
            entry = agent.wait_for(lambda e: e.get("msg") in ("recorded", "not recorded"))
            outside.append((time.perf_counter() - sent) * 1000)
            assert entry["msg"] == "recorded" and entry["verdict"] == "good", entry
            durable.append(entry["durable_ms"])
            time.sleep(max(0.0, SCAN_INTERVAL - (time.perf_counter() - sent)))
        wait_empty(load_config(config).outbox, 60)
        rss = sampler.stop()
    finally:
        code, stderr = agent.stop()
    assert code == 0, stderr
    return {
        "scan_to_durable_p99_ms": p99(durable),
        "line_to_recorded_p99_ms": p99(outside),
        "rss_mb": rss,
    }


def queue_events(world, config_path: Path, count: int) -> None:
    """`count` signed events recorded into the outbox while no daemon runs."""
    config = load_config(config_path)
    key = load_device_key(config, PASSPHRASE)
    context = Context("receiving", "in_progress", "urn:epc:id:sgln:9506000.13435.3")
    with Outbox(config.outbox) as outbox:
        for n in range(count):
            url = world.tap(n % world.items + 1)
            read = Read(url=url, source="serial:bench", read_at=time.time())
            event = build_event(
                read,
                context,
                device_key=key,
                device_address=config.device_address,
                event_id=uuid.uuid4(),
                time_zone_offset=0,
            )
            outbox.record(event, now=time.time())


def drain_phase(config: Path, count: int) -> dict[str, float]:
    agent = AgentProcess(config)
    sampler = RssSampler(agent)
    try:
        agent.wait_for(lambda e: e.get("msg") == "started", timeout=60)
        began = time.perf_counter()
        wait_empty(load_config(config).outbox, 600)
        drained = time.perf_counter() - began
        rss = sampler.stop()
    finally:
        code, stderr = agent.stop()
    assert code == 0, stderr
    return {f"drain_{count}_s": drained, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--queued", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as folder:
        tmp = Path(folder)
        api = make_api("sqlite", tmp)
        server = Server(api.app, free_port()).start()
        scanner = ScannerEmulator(tmp / "scanner").plug()
        try:
            # The backlog is of distinct items, as at a dock door (10,000: one registration).
            world = make_world(api, items=min(max(ITEMS, args.queued), 10_000))
            config, _ = provision(
                api,
                world.carrier,
                tmp / "agent",
                server.url,
                [{"kind": "serial", "port": str(scanner.link)}],
            )
            scanned = scan_phase(world, config, scanner, args.scans)
            queue_events(world, config, args.queued)
            drained = drain_phase(config, args.queued)
        finally:
            scanner.unplug()
            server.stop()
            api.app.extensions["provenance"].close()
    figures = {
        "scan_to_durable_p99_ms": round(scanned["scan_to_durable_p99_ms"], 2),
        "line_to_recorded_p99_ms": round(scanned["line_to_recorded_p99_ms"], 2),
        "rss_mb": round(max(scanned["rss_mb"], drained["rss_mb"]), 1),
        f"drain_{args.queued}_s": round(drained[f"drain_{args.queued}_s"], 2),
        "scans": args.scans,
    }
    for name, value in figures.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
