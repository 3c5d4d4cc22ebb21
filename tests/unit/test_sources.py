"""Reader sources without hardware: config entries, the repeat window, the reopen rule."""

from __future__ import annotations

import logging

import pytest

from reader_agent.reads import Read
from reader_agent.sources import UnreadableTag, build_source, source_options
from reader_agent.sources.supervisor import Supervisor, backoff_delay
from reader_agent.sources.window import RepeatWindow
from tests.fakes.sources import FakeTime, ScriptedSource

URL = "https://id.example.com/01/09506000134352/21/SN1?sig=abc"
UID = bytes.fromhex("04A1B2C3D4E5F6")

# --- config entries -------------------------------------------------------------------------


def test_entries_get_their_defaults() -> None:
    assert source_options({"kind": "nfc"}) == ("nfc", {"device": "", "timeout_ms": 500})
    kind, options = source_options({"kind": "serial", "port": "/dev/ttyACM0", "baud": 115200})
    assert (kind, options["baud"], options["max_line"]) == ("serial", 115200, 2048)
    assert source_options({"kind": "camera"})[1]["device"] == "/dev/video0"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "barcode"}, "kind: 'barcode' is not a source kind"),
        ({}, "kind: None is not a source kind"),
        ({"kind": "serial"}, "port: a serial source needs it"),
        ({"kind": "serial", "port": "/dev/x", "speed": 9600}, "speed: not an option"),
        ({"kind": "serial", "port": "/dev/x", "baud": "9600"}, "baud: expected int"),
        ({"kind": "serial", "port": "/dev/x", "baud": True}, "baud: expected int"),
        ({"kind": "nfc", "timeout_ms": 0}, "timeout_ms: must be positive"),
        ({"kind": "nfc", "device": 3}, "device: expected str"),
    ],
)
def test_bad_entries_name_the_key(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        source_options(entry)


def test_build_source_names_each_kind_without_opening_it() -> None:
    assert build_source({"kind": "serial", "port": "/dev/ttyACM0"}).name == "serial:/dev/ttyACM0"
    nfc = build_source({"kind": "nfc", "device": "pn532_uart:/dev/ttyUSB0"}, window=3.0)
    assert (nfc.name, nfc.hold) == ("nfc:pn532_uart:/dev/ttyUSB0", 3.0)  # type: ignore[attr-defined]
    assert build_source({"kind": "nfc"}).name == "nfc:default"
    assert build_source({"kind": "camera", "device": "0"}).name == "camera:0"


# --- the repeat window ---------------------------------------------------------------------


def test_the_same_tag_within_the_window_counts_once() -> None:
    window = RepeatWindow(2.0)
    read = Read(URL, "serial:a", 0.0)
    assert window.admit(read, 10.0)
    assert not window.admit(read, 10.5)
    assert not window.admit(Read(URL, "nfc:b", 0.0), 11.0)  # from another reader too
    assert window.admit(read, 13.5)  # 2.5 s after the last sighting


def test_the_window_slides_while_the_tag_stays() -> None:
    window = RepeatWindow(2.0)
    read = Read(URL, "nfc:a", 0.0, uid=UID, originality_signature=bytes(32))
    assert [window.admit(read, t) for t in (0.0, 1.9, 3.8, 5.7, 7.8)] == [
        True,
        False,
        False,
        False,
        True,
    ]


def test_different_tags_each_count() -> None:
    window = RepeatWindow(2.0)
    assert window.admit(Read(URL, "s", 0.0), 0.0)
    assert window.admit(Read(URL + "x", "s", 0.0), 0.1)
    assert window.admit(Read(URL, "s", 0.0, uid=UID, originality_signature=b"s"), 0.2)


def test_a_chip_is_one_tag_whatever_url_it_yields() -> None:
    # An NTAG 424 DNA yields a new SUN URL at every tap; its anticollision UID is the key.
    window = RepeatWindow(2.0)
    first = Read(URL + "&picc_data=01", "nfc:a", 0.0, field_uid=UID)
    again = Read(URL + "&picc_data=02", "nfc:a", 0.0, field_uid=UID)
    assert first.tag_key == again.tag_key == UID.hex()
    assert window.admit(first, 0.0) and not window.admit(again, 0.5)


def test_a_zero_window_admits_everything_and_memory_stays_bounded() -> None:
    window = RepeatWindow(0.0)
    read = Read(URL, "s", 0.0)
    assert all(window.admit(read, t / 10) for t in range(5))
    bounded = RepeatWindow(1.0)
    for i in range(10_000):
        bounded.admit(Read(f"{URL}{i}", "s", 0.0), i * 0.1)
    assert len(bounded._last) <= 64 + 10


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        RepeatWindow(-1)


# --- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_bound_with_jitter() -> None:
    low = [backoff_delay(n, 0.0, initial=0.5, maximum=30.0) for n in range(1, 10)]
    high = [backoff_delay(n, 0.999, initial=0.5, maximum=30.0) for n in range(1, 10)]
    assert low == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert all(lo < hi < 2 * lo for lo, hi in zip(low, high, strict=True))
    assert max(high) < 30.0
    assert backoff_delay(10**6, 0.5, initial=0.5, maximum=30.0) == 22.5  # no overflow


# --- the supervisor ------------------------------------------------------------------------


def supervised(source: ScriptedSource, clock: FakeTime, rand: float = 0.0) -> Supervisor:
    return Supervisor(
        source,
        initial=0.5,
        maximum=8.0,
        monotonic=clock.monotonic,
        wall=clock.wall,
        sleep=clock.sleep,
        rand=lambda: rand,
    )


def test_opens_at_the_first_read_and_passes_reads_through() -> None:
    clock = FakeTime()
    source = ScriptedSource(reads=[URL, None])
    supervisor = supervised(source, clock)
    assert not supervisor.state().connected
    read = supervisor.read(1.0)
    assert read is not None and read.url == URL
    assert supervisor.read(1.0) is None
    state = supervisor.state()
    assert state.connected and state.reconnecting_since is None and state.last_error is None
    assert source.open_calls == 1 and clock.sleeps == []


def test_a_reader_not_plugged_in_is_retried_with_growing_delays(caplog) -> None:
    clock = FakeTime()
    source = ScriptedSource(opens=[False] * 6, reads=[URL])
    supervisor = supervised(source, clock)
    started = clock.wall()
    reads = []
    with caplog.at_level(logging.INFO, logger="reader_agent.sources"):
        while not reads and clock.now < 200:
            read = supervisor.read(1.0)
            if read is not None:
                reads.append(read)
    assert [r.url for r in reads] == [URL]
    assert source.open_calls == 7
    # The waits between opens, each cut into read timeouts of at most 1 s.
    assert all(s <= 1.0 for s in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx(0.25 + 0.5 + 1 + 2 + 4 + 4)
    state = supervisor.state()
    assert state.connected and state.failures == 0 and state.reconnecting_since is None
    assert state.last_error == "scripted:0 is not plugged in"
    assert state.last_error_at == pytest.approx(started + 0.25 + 0.5 + 1 + 2 + 4)
    messages = [r.getMessage() for r in caplog.records]
    assert "scripted:0 is not plugged in; reopening in 0.2 s (failures in a row: 1)" in messages
    assert any(m.startswith("scripted:0: open again after 11.8 s") for m in messages)


def test_a_reader_that_goes_away_is_closed_and_reopened_without_a_restart() -> None:
    clock = FakeTime()
    source = ScriptedSource(opens=[True, False, True], reads=[URL, "gone", URL + "2"])
    supervisor = supervised(source, clock, rand=0.5)
    assert supervisor.read(1.0).url == URL  # type: ignore[union-attr]
    lost_at = clock.wall()
    assert supervisor.read(1.0) is None
    assert not source.is_open and source.close_calls >= 1
    state = supervisor.state()
    assert not state.connected and state.reconnecting_since == lost_at
    assert state.last_error == "scripted:0 stopped answering"
    assert state.next_attempt_in == pytest.approx(0.375)  # 0.5 ceiling, half + half * 0.5
    # While it waits, a read sleeps (no open) and returns nothing.
    assert supervisor.read(0.1) is None and source.open_calls == 1
    read = None
    while read is None:
        read = supervisor.read(1.0)
    assert read.url == URL + "2"
    assert source.open_calls == 3
    assert supervisor.state().connected
    assert supervisor.state().as_dict()["last_error"] == "scripted:0 is not plugged in"


def test_failures_start_over_after_a_success() -> None:
    clock = FakeTime()
    source = ScriptedSource(opens=[False, False, False, True], reads=[None, "gone"])
    supervisor = supervised(source, clock)
    while source.open_calls < 4:
        supervisor.read(1.0)
    assert supervisor.state().connected
    supervisor.read(1.0)  # gone: one failure, so the short delay again
    assert supervisor.state().failures == 1
    assert supervisor.state().next_attempt_in == pytest.approx(0.25)


def test_an_unreadable_scan_is_raised_and_the_reader_stays_open(caplog) -> None:
    clock = FakeTime()
    source = ScriptedSource(reads=["unreadable", URL])
    supervisor = supervised(source, clock)
    with pytest.raises(UnreadableTag, match="not UTF-8"):
        supervisor.read(1.0)
    assert supervisor.state().connected and source.is_open
    assert supervisor.read(1.0).url == URL  # type: ignore[union-attr]
    assert source.open_calls == 1
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_close_closes_the_source() -> None:
    source = ScriptedSource(reads=[URL])
    supervisor = supervised(source, FakeTime())
    supervisor.read(1.0)
    supervisor.close()
    assert not source.is_open and not supervisor.state().connected
