"""The daemon's loop in-process, on a scripted source: what is recorded, what is only said,
and how it stops (cleanly on request, with exit code 1 when a thread fails)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading

import httpx
import pytest

from contracts_abi.eip712 import address_of_private_key
from reader_agent.config import parse_config
from reader_agent.daemon import Daemon, status_path
from reader_agent.feedback import Feedback
from reader_agent.outbox import Outbox
from reader_agent.reads import Read
from reader_agent.trust import TrustCache, save_cache
from reader_agent.uploader import Uploader
from reader_agent.verdict import GOOD, REJECTED, WARNING
from tests.conftest import free_port
from tests.fakes.sources import ScriptedSource
from tests.fakes.sun_tags import sun_tag, tap

KEY = hashlib.sha256(b"daemon loop device").digest()
GTIN = "04006381333931"
SUPPLIER = "0x" + "22" * 20


@pytest.fixture
def make_daemon(tmp_path):
    """A daemon over `sources`, uploading to a port where nobody listens (events stay)."""
    made: list[tuple[Outbox, httpx.Client]] = []

    def make(*sources) -> Daemon:
        text = json.dumps(
            {
                "api_url": f"http://127.0.0.1:{free_port()}",
                "device_key_file": "device.key",
                "device_address": address_of_private_key(KEY),
                "outbox": "outbox.db",
            }
        )
        config = parse_config(text, base=tmp_path)
        save_cache(tmp_path / "trust.json", {GTIN: SUPPLIER}, 1.0)
        client = httpx.Client(base_url=config.api_url, timeout=1)
        outbox = Outbox(config.outbox)
        made.append((outbox, client))
        return Daemon(
            config,
            device_key=KEY,
            outbox=outbox,
            sources=sources,
            trust=TrustCache(tmp_path / "trust.json", client),
            uploader=Uploader(outbox, client, batch_size=10),
            feedback=Feedback(),
        )

    yield make
    for outbox, client in made:
        client.close()
        outbox.close()


def sun_read(n: int, at: float = 1_800_000_000.0) -> Read:
    url = tap(sun_tag(bytes(16), b"\x04" + n.to_bytes(6, "big"), gtin=GTIN, serial=f"S{n}"))
    return Read(url, "scripted:0", at)


def test_a_tag_is_recorded_once_within_the_window_and_a_menu_never(make_daemon, caplog):
    daemon = make_daemon()
    caplog.set_level(logging.INFO, "reader_agent.feedback")
    read = sun_read(1)
    first = daemon.handle(read)
    again = daemon.handle(read)  # the same URL at once: a double beep of the scanner
    menu = daemon.handle(Read("https://example.com/menu", "scripted:0", 1_800_000_000.0))
    assert first is not None and first.level == GOOD
    assert again is None
    assert menu is not None and menu.level == REJECTED and not menu.record
    assert daemon.outbox.depth() == 1
    said = [(r.getMessage(), r.fields["verdict"]) for r in caplog.records]
    assert said == [("recorded", GOOD), ("not recorded", REJECTED)]
    body = json.loads(daemon.outbox.pending(1)[0].body)
    assert (body["gtin"], body["serial"], body["device"]) == (
        GTIN,
        "S1",
        address_of_private_key(KEY),
    )


def test_an_unknown_gtin_is_recorded_with_a_warning(make_daemon):
    daemon = make_daemon()
    daemon.trust.suppliers = {}
    verdict = daemon.handle(sun_read(2))
    assert verdict is not None and verdict.level == WARNING
    assert daemon.outbox.depth() == 1


def test_run_reads_the_source_until_stopped_and_leaves_a_status(make_daemon, tmp_path):
    reads = [sun_read(3).url, "unreadable", None, "gone", sun_read(4).url]
    source = ScriptedSource(reads=reads)
    daemon = make_daemon(source)
    stop = threading.Event()
    runner = threading.Thread(target=lambda: setattr(runner, "code", daemon.run(stop)))
    runner.start()
    try:
        for _ in range(200):
            if daemon.recorded == 2:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        runner.join(30)
    assert runner.code == 0  # type: ignore[attr-defined]
    assert daemon.recorded == 2
    assert source.open_calls == 2  # reopened after "gone"
    status = json.loads(status_path(daemon.config).read_text())
    assert status["running"] is False and status["recorded_this_run"] == 2
    assert status["sources"][0]["source"] == "scripted:0"
    assert status["uploader"]["kind"] == "unreachable"


class BrokenSource(ScriptedSource):
    def read(self, timeout: float) -> Read | None:
        raise RuntimeError("a bug in an adapter")


def test_a_thread_that_fails_stops_the_daemon_with_exit_code_1(make_daemon, caplog):
    daemon = make_daemon(BrokenSource())
    code = daemon.run(threading.Event())
    assert code == 1
    assert daemon.failed == "scripted:0 thread failed"
    assert any("thread failed; stopping" in r.getMessage() for r in caplog.records)


def test_events_acknowledged_over_a_week_ago_are_pruned(make_daemon):
    from reader_agent.outbox import Answer

    daemon = make_daemon()
    daemon.handle(sun_read(5))
    daemon.handle(sun_read(6))
    old, recent = daemon.outbox.pending(2)
    now = daemon._clock()
    daemon.outbox.apply([Answer(old.id, "accepted")], now - 8 * 86400)
    daemon.outbox.apply([Answer(recent.id, "accepted")], now - 86400)
    assert daemon.prune() == 1
    assert daemon.outbox.counts()["acknowledged"] == 1
