"""The crash test: `reader-agent run` SIGKILLed at random instants while it scans and uploads,
many times; afterwards the API holds every event that was reported as recorded, exactly once.

The daemon is a real process fed by the serial-scanner emulator at 50 scans a second and
delivering to the API on a real port. Each tap is an NTAG 424 DNA SUN message whose counter
only goes up, so an event delivered twice or out of order would come back rejected.
"""

from __future__ import annotations

import collections
import json
import os
import random
import time

import pytest

from tests.conftest import free_port
from tests.fakes.serial_scanner import ScannerEmulator
from tests.integration.agent_process import AgentProcess, Server, agent_command, provision
from tests.integration.agent_support import stored_event_ids
from tests.integration.events_support import make_world

KILLS = int(os.environ.get("AGENT_CRASH_KILLS", "50"))
SCAN_INTERVAL = 0.02
DRAIN_DEADLINE = 120.0


@pytest.mark.slow
def test_every_event_reported_as_recorded_arrives_once_after_random_kills(api, tmp_path):
    world = make_world(api, items=4)
    server = Server(api.app, free_port()).start()
    scanner = ScannerEmulator(tmp_path / "scanner").plug()
    config, address = provision(
        api,
        world.carrier,
        tmp_path / "agent",
        server.url,
        [{"kind": "serial", "port": str(scanner.link)}],
    )
    rng = random.Random(int(os.environ.get("AGENT_CRASH_SEED", time.time_ns())))
    reported: list[str] = []
    scans = 0
    try:
        for _ in range(KILLS):
            agent = AgentProcess(config)
            try:
                agent.wait_for(lambda e: e.get("msg", "").endswith(": open"))
                kill_at = time.monotonic() + rng.uniform(0.0, 1.0)
                while time.monotonic() < kill_at:
                    scanner.scan(world.tap(scans % world.items + 1))
                    scans += 1
                    time.sleep(SCAN_INTERVAL * rng.random() * 2)
                time.sleep(rng.uniform(0.0, 0.01))
            finally:
                agent.kill()
            reported += [entry["event_id"] for entry in agent.printed("recorded")]

        final = AgentProcess(config)
        try:
            final.wait_for(lambda e: e.get("msg") == "started")
            deadline = time.monotonic() + DRAIN_DEADLINE
            while True:
                shown = agent_command("status", "--config", str(config), "--json")
                status = json.loads(shown.stdout)
                if status["depth"] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            code, stderr = final.stop()
        finally:
            if final.process.poll() is None:
                final.kill()
        reported += [entry["event_id"] for entry in final.printed("recorded")]
    finally:
        scanner.unplug()
        server.stop()
    assert code == 0, stderr
    stored = stored_event_ids(api, address)
    twice = [event_id for event_id, n in collections.Counter(stored).items() if n > 1]
    assert twice == []
    missing = set(reported) - set(stored)
    assert not missing, f"{len(missing)} events reported as recorded never arrived"
    assert status["depth"] == 0 and status["counts"]["rejected"] == 0, status["rejected"]
    print(f"{KILLS} kills, {scans} scans, {len(reported)} reported recorded, {len(stored)} stored")
    assert len(reported) > KILLS  # the kills did land while scanning
