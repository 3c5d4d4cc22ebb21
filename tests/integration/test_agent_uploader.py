"""The reader agent's uploader against the real API app (httpx's WSGITransport, no port).

Events are built by the agent's own code (reader_agent.events) and checked by the API's;
lost answers and server errors come from a transport wrapped around the real one.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from reader_agent.outbox import ACKNOWLEDGED, PENDING, REJECTED, Outbox
from reader_agent.uploader import (
    BACKOFF_CAP,
    DELIVERED,
    IDLE,
    REFUSED,
    UNREACHABLE,
    Uploader,
    backoff_delay,
    drain_once,
)
from tests.integration.agent_support import agent_event, stored_event_ids
from tests.integration.events_support import make_world


class Wrapped(httpx.BaseTransport):
    """The real app behind httpx, with faults: lose the next answers, or answer 503 instead."""

    def __init__(self, app) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.lose = 0
        self.unavailable = 0
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.unavailable:
            self.unavailable -= 1
            return httpx.Response(503, json={"error": "unavailable", "message": "restarting"})
        response = self.inner.handle_request(request)
        response.read()
        if self.lose:
            self.lose -= 1  # the API did the work; its answer never arrives
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request)
        return response


@pytest.fixture
def world(api):
    return make_world(api, items=5)


@pytest.fixture
def transport(api) -> Wrapped:
    return Wrapped(api.app)


def client(transport: Wrapped, key: str) -> httpx.Client:
    return httpx.Client(
        transport=transport, base_url="http://api", headers={"Authorization": f"Bearer {key}"}
    )


def test_events_built_by_the_agent_are_accepted_in_order(api, world, transport, tmp_path):
    with Outbox(tmp_path / "outbox.db") as outbox:
        events = [agent_event(world, n) for n in (1, 2, 3, 1)]
        for event in events:
            outbox.record(event, now=1.0)
        outcome = drain_once(outbox, client(transport, world.carrier), limit=100, clock=lambda: 9.0)
        assert outcome.kind == DELIVERED, outcome
        assert (outcome.accepted, outcome.rejected) == (4, 0), outbox.rejected()
        assert outbox.counts()[ACKNOWLEDGED] == 4 and outbox.last_upload() == 9.0
        assert stored_event_ids(api, world.reader.address) == [e["event_id"] for e in events]
        assert drain_once(outbox, client(transport, world.carrier), limit=100).kind == IDLE


def test_a_resend_after_a_lost_answer_ends_accepted_once(api, world, transport, tmp_path):
    with Outbox(tmp_path / "outbox.db") as outbox:
        events = [agent_event(world, n) for n in (1, 2, 3)]
        for event in events:
            outbox.record(event, now=1.0)
        transport.lose = 1
        lost = drain_once(outbox, client(transport, world.carrier), limit=100)
        assert lost.kind == UNREACHABLE and "ReadTimeout" in (lost.error or "")
        assert outbox.depth() == 3 and "ReadTimeout" in outbox.last_error()[1]
        # The API stored them although the agent never heard so.
        assert stored_event_ids(api, world.reader.address) == [e["event_id"] for e in events]
        resent = drain_once(outbox, client(transport, world.carrier), limit=100)
        assert (resent.kind, resent.accepted, resent.duplicates) == (DELIVERED, 0, 3)
        assert outbox.depth() == 0 and outbox.last_error() is None
        assert stored_event_ids(api, world.reader.address) == [e["event_id"] for e in events]
        assert drain_once(outbox, client(transport, world.carrier), limit=100).kind == IDLE


def test_rejected_events_are_kept_apart_with_the_api_codes(api, world, transport, tmp_path):
    with Outbox(tmp_path / "outbox.db") as outbox:
        good, unknown, also_good = (
            agent_event(world, 1),
            agent_event(world, 99),
            agent_event(world, 2),
        )
        for event in (good, unknown, also_good):
            outbox.record(event, now=1.0)
        outcome = drain_once(outbox, client(transport, world.carrier), limit=100)
        assert (outcome.accepted, outcome.rejected) == (2, 1)
        [rejected] = outbox.rejected()
        assert rejected.event_id == unknown["event_id"] and rejected.codes == ("unknown_item",)
        assert "S99" in rejected.reasons[0]
        assert outbox.counts() == {PENDING: 0, ACKNOWLEDGED: 2, REJECTED: 1}


def test_a_wrong_api_key_is_the_last_error_and_moves_nothing(api, world, transport, tmp_path):
    with Outbox(tmp_path / "outbox.db") as outbox:
        outbox.record(agent_event(world, 1), now=1.0)
        outcome = drain_once(outbox, client(transport, "pk_wrong"), limit=100)
        assert (outcome.kind, outcome.status_code) == (REFUSED, 401)
        assert outbox.depth() == 1 and "401" in outbox.last_error()[1]


def test_server_errors_leave_the_batch_pending(api, world, transport, tmp_path):
    with Outbox(tmp_path / "outbox.db") as outbox:
        outbox.record(agent_event(world, 1), now=1.0)
        transport.unavailable = 1
        outcome = drain_once(outbox, client(transport, world.carrier), limit=100)
        assert (outcome.kind, outcome.status_code) == (UNREACHABLE, 503)
        assert "restarting" in outbox.last_error()[1] and outbox.depth() == 1
        assert drain_once(outbox, client(transport, world.carrier), limit=100).accepted == 1


def test_the_loop_narrows_a_refused_body_to_its_one_event(api, world, transport, tmp_path):
    with Outbox(tmp_path / "outbox.db") as outbox:
        events = [agent_event(world, n) for n in (1, 2, 3, 4, 5)]
        events[3]["read_point"] = ""  # damaged: the API refuses the whole body with a 422
        for event in events:
            outbox.record(event, now=1.0)
        uploader = Uploader(outbox, client(transport, world.carrier), batch_size=100)
        stop = threading.Event()
        loop = threading.Thread(target=uploader.run, args=(stop,))
        loop.start()
        try:
            for _ in range(200):
                if outbox.depth() == 0:
                    break
                stop.wait(0.05)
        finally:
            stop.set()
            loop.join(10)
        assert not loop.is_alive()
        [rejected] = outbox.rejected()
        assert rejected.event_id == events[3]["event_id"]
        assert rejected.codes == ("invalid_body",) and "422" in rejected.reasons[0]
        stored = stored_event_ids(api, world.reader.address)
        assert stored == [e["event_id"] for i, e in enumerate(events) if i != 3]


def test_backoff_is_full_jitter_doubling_to_a_cap() -> None:
    assert backoff_delay(0, lambda: 0.999) == pytest.approx(0.4995)
    assert backoff_delay(3, lambda: 0.5) == pytest.approx(2.0)
    assert backoff_delay(50, lambda: 0.999) == pytest.approx(BACKOFF_CAP * 0.999)
    assert backoff_delay(7, lambda: 0.0) == 0.0
