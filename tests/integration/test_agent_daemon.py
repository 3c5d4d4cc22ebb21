"""`reader-agent run` end to end with no hardware: the serial-scanner emulator on a pty feeds
the daemon process, which records, signs and delivers to the API on a real port."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from tests.conftest import free_port
from tests.fakes.serial_scanner import ScannerEmulator
from tests.integration.agent_process import AgentProcess, Server, agent_command, provision
from tests.integration.agent_support import stored_event_ids
from tests.integration.events_support import make_world

RSS_LIMIT_MB = 60


def recorded(entry: dict) -> bool:
    return entry.get("msg") == "recorded"


def stored_biz_steps(api, device: str) -> dict[str, str]:
    engine = api.app.extensions["provenance"].engine
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT event_id, biz_step FROM custody_event WHERE device = :device"),
            {"device": device},
        )
        return {row[0]: row[1] for row in rows}


def wait_for_status(config, ready, timeout: float = 10) -> dict:
    """`status --json` once `ready(status)` (the daemon rewrites its file every second)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = agent_command("status", "--config", str(config), "--json")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        if ready(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


@pytest.mark.slow
def test_scans_are_recorded_delivered_and_follow_a_context_change(api, tmp_path):
    world = make_world(api, items=3)
    server = Server(api.app, free_port()).start()
    scanner = ScannerEmulator(tmp_path / "scanner").plug()
    config, address = provision(
        api,
        world.carrier,
        tmp_path / "agent",
        server.url,
        [{"kind": "serial", "port": str(scanner.link)}],
    )
    agent = AgentProcess(config)
    try:
        started = agent.wait_for(lambda e: e.get("msg") == "started")
        assert started["device"] == address
        agent.wait_for_all(
            lambda e: e.get("msg") == "trust refreshed: 1 GTINs",
            lambda e: e.get("msg", "").endswith(": open"),
        )

        scanner.scan(world.tap(1))
        first = agent.wait_for(recorded)
        assert first["verdict"] == "good", first
        assert first["biz_step"] == "receiving"
        answer = agent.wait_for(lambda e: e.get("msg", "").startswith("api "))
        assert answer["msg"] == "api accepted" and answer["event_id"] == first["event_id"]

        # Not a tag of an item: said at once, never recorded.
        scanner.scan("https://example.com/menu")
        refused = agent.wait_for(lambda e: "recorded" in e.get("msg", ""))
        assert refused["msg"] == "not recorded" and refused["verdict"] == "rejected"

        changed = agent_command("context", "set", "--config", str(config), "biz_step=shipping")
        assert changed.returncode == 0, changed.stderr
        scanner.scan(world.tap(2))
        second = agent.wait_for(recorded)
        assert second["biz_step"] == "shipping"
        agent.wait_for(
            lambda e: e.get("msg") == "api accepted" and e["event_id"] == second["event_id"]
        )

        rss = agent.rss_mb()
        status = wait_for_status(
            config, lambda s: s["daemon"].get("sources", [{}])[0].get("connected")
        )
        human = agent_command("status", "--config", str(config)).stdout
        code, stderr = agent.stop()
    finally:
        if agent.process.poll() is None:
            agent.stop()
        scanner.unplug()
        server.stop()
    print(f"reader-agent run: {rss:.1f} MB resident")
    assert code == 0, stderr
    assert json.loads(agent.raw[-1])["msg"] == "stopped"
    assert status["depth"] == 0 and status["counts"]["acknowledged"] == 2
    assert status["last_error"] is None and status["rejected"] == []
    daemon = status["daemon"]
    assert daemon["running"] is True, daemon
    assert daemon["sources"][0]["connected"] is True
    assert daemon["context"]["biz_step"] == "shipping"
    assert stored_event_ids(api, address) == [first["event_id"], second["event_id"]]
    assert stored_biz_steps(api, address) == {
        first["event_id"]: "receiving",
        second["event_id"]: "shipping",
    }
    assert rss <= RSS_LIMIT_MB
    assert "daemon: running" in human and "outbox: 0 pending, 2 delivered" in human
    assert f"source serial:{scanner.link}: connected" in human
    assert "context: shipping at urn:epc:id:sgln:9506000.13435.3" in human
