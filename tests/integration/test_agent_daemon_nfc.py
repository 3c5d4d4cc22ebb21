"""`reader-agent run` on an NFC reader with no hardware: pynfc -> libnfc -> pn532_uart -> a pty
-> the PN532 emulator, NTAG 424 DNA taps delivered to the API on a real port and accepted."""

from __future__ import annotations

import pytest

from firmware_tools.errors import ReaderNotFound
from tests.conftest import free_port, unavailable
from tests.fakes.pn532 import Pn532Emulator
from tests.fakes.sun_tags import sun_tag
from tests.integration.agent_process import AgentProcess, Server, provision
from tests.integration.agent_support import stored_event_ids
from tests.integration.api_support import GTIN
from tests.integration.events_support import MASTER, make_world, serial_of, uid_of

pytestmark = [pytest.mark.libnfc, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _libnfc() -> None:
    from firmware_tools.nfc.libnfc import bindings

    try:
        bindings()
    except ReaderNotFound as exc:
        unavailable(str(exc))


def test_taps_on_the_nfc_reader_are_recorded_and_accepted(api, tmp_path):
    world = make_world(api, items=2)
    server = Server(api.app, free_port()).start()
    tags = [sun_tag(MASTER, uid_of(n), gtin=GTIN, serial=serial_of(n)) for n in (1, 2)]
    with Pn532Emulator() as emulator:
        config, address = provision(
            api,
            world.carrier,
            tmp_path / "agent",
            server.url,
            [{"kind": "nfc", "device": emulator.connstring, "timeout_ms": 200}],
        )
        agent = AgentProcess(config)
        try:
            agent.wait_for_all(
                lambda e: e.get("msg", "").endswith(": open"),
                lambda e: e.get("msg", "").startswith("trust refreshed"),
            )
            recorded = []
            for tag in tags:
                emulator.place(tag)
                entry = agent.wait_for(lambda e: e.get("msg") == "recorded")
                emulator.remove(tag)
                assert entry["verdict"] == "good", entry
                recorded.append(entry["event_id"])
                agent.wait_for(
                    lambda e, i=entry["event_id"]: (
                        e.get("msg") == "api accepted" and e["event_id"] == i
                    )
                )
            code, stderr = agent.stop()
        finally:
            if agent.process.poll() is None:
                agent.stop()
            server.stop()
    assert code == 0, stderr
    assert emulator.errors == []
    assert stored_event_ids(api, address) == recorded
