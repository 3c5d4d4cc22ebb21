"""The API away for a while under a steady scan rate: every event arrives once, in order per device.

The API app is served on a real port (werkzeug, in a thread) and taken down and brought back
on the same port; two reader agents (an outbox and an uploader each, real httpx) record
events throughout. Each device taps its own NTAG 424 DNA tags, whose SUN counters only go
up: an event delivered out of its device's order would be rejected as a replay.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from werkzeug.serving import make_server

from reader_agent.outbox import REJECTED, Outbox
from reader_agent.uploader import Uploader, make_client
from tests.conftest import free_port
from tests.integration.agent_support import agent_event, stored_event_ids
from tests.integration.events_support import make_world

SCAN_INTERVAL = 0.02  # 50 scans a second per device
UP_FIRST, DOWN, UP_AFTER = 1.0, 4.0, 1.5  # seconds
DELIVERY_DEADLINE = 90.0


class Server:
    """The app on 127.0.0.1:`port`, started and stopped at will (refused while stopped)."""

    def __init__(self, app, port: int) -> None:
        self.app, self.port = app, port
        self.server = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.mark.slow
def test_every_event_recorded_during_an_outage_arrives_once_in_order(api, tmp_path):
    world = make_world(api, items=6)
    readers = [world.reader, world.reader_for(world.carrier)]
    items = {readers[0].address: (1, 2, 3), readers[1].address: (4, 5, 6)}
    tap_lock = threading.Lock()  # the test's tag simulator keeps one counter table
    server = Server(api.app, free_port())
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    stop_scanning, stop_uploading = threading.Event(), threading.Event()
    recorded: dict[str, list[str]] = {reader.address: [] for reader in readers}
    outboxes = {r.address: Outbox(tmp_path / f"{r.address}.db") for r in readers}
    threads = []
    for reader in readers:
        outbox = outboxes[reader.address]
        uploader = Uploader(outbox, make_client(url, world.carrier, timeout=5), batch_size=50)

        def scan(reader=reader, outbox=outbox, uploader=uploader) -> None:
            for n in itertools.cycle(items[reader.address]):
                if stop_scanning.is_set():
                    return
                with tap_lock:
                    event = agent_event(world, n, reader)
                outbox.record(event, now=time.time())
                recorded[reader.address].append(event["event_id"])
                uploader.notify()
                time.sleep(SCAN_INTERVAL)

        threads += [
            threading.Thread(target=scan),
            threading.Thread(target=uploader.run, args=(stop_uploading,)),
        ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(UP_FIRST)
        server.stop()
        time.sleep(DOWN)
        during = {address: outbox.depth() for address, outbox in outboxes.items()}
        errors = [outbox.last_error() for outbox in outboxes.values()]
        server.start()
        time.sleep(UP_AFTER)
        stop_scanning.set()
        deadline = time.monotonic() + DELIVERY_DEADLINE
        while any(o.depth() for o in outboxes.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_scanning.set()
        stop_uploading.set()
        for thread in threads:
            thread.join(30)
        server.stop()
    assert all(depth > 0 for depth in during.values()), during  # events waited out the outage
    assert all(e is not None and "Connect" in e[1] for e in errors), errors
    for address, outbox in outboxes.items():
        assert outbox.depth() == 0, f"{outbox.depth()} events never arrived"
        assert outbox.counts()[REJECTED] == 0, outbox.rejected()
        assert stored_event_ids(api, address) == recorded[address]
        outbox.close()
    total = sum(len(ids) for ids in recorded.values())
    print(f"{total} events, {sum(during.values())} queued during the outage, all delivered once")
