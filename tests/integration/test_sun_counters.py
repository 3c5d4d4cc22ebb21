"""The SUN counter store: one behaviour suite for firmware_tools' in-memory store and the SQL
adapter, and real OS processes racing the same counter on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing

import pytest

from firmware_tools.verify import InMemoryCounterStore
from provenance_api import db
from provenance_api.sun_counters import SqlCounterStore

UID = bytes.fromhex("04a1b2c3d4e5f6")
OTHER_UID = bytes.fromhex("04a1b2c3d4e5f7")


def _url(request, tmp_path, kind: str) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'counters.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db.upgrade(url)
    return url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """Each CounterStore, empty."""
    if request.param == "memory":
        yield InMemoryCounterStore()
        return
    engine = db.make_engine(_url(request, tmp_path, request.param))
    yield SqlCounterStore(engine)
    engine.dispose()


def test_the_first_counter_of_a_tag_is_accepted_even_zero(store):
    assert store.advance(UID, 0, 0) is True
    assert store.last(UID, 0) == 0


def test_only_a_higher_counter_advances(store):
    assert store.advance(UID, 1, 5) is True
    assert store.advance(UID, 1, 5) is False  # the same tap replayed
    assert store.advance(UID, 1, 4) is False  # an older tap
    assert store.last(UID, 1) == 5
    assert store.advance(UID, 1, 6) is True
    assert store.advance(UID, 1, 0xFFFFFF) is True  # SDMReadCtr's largest value
    assert store.advance(UID, 1, 0xFFFFFF) is False
    assert store.last(UID, 1) == 0xFFFFFF


def test_tags_and_key_epochs_count_apart(store):
    assert store.advance(UID, 0, 10) is True
    assert store.advance(UID, 1, 3) is True  # a new key epoch starts afresh
    assert store.advance(OTHER_UID, 0, 3) is True
    assert store.advance(UID, 0, 10) is False
    assert [store.last(UID, 0), store.last(UID, 1), store.last(OTHER_UID, 0)] == [10, 3, 3]
    assert store.last(OTHER_UID, 1) is None


def test_a_negative_counter_is_never_accepted(store):
    assert store.advance(UID, 0, -1) is False
    assert store.last(UID, 0) is None


def test_a_session_store_advances_with_the_callers_transaction(tmp_path, request):
    from sqlmodel import Session

    engine = db.make_engine(_url(request, tmp_path, "sqlite"))
    with Session(db.for_writing(engine)) as session:
        assert SqlCounterStore(session).advance(UID, 0, 7) is True
        session.rollback()  # the event it checked was not stored: nor is the counter
    assert SqlCounterStore(engine).last(UID, 0) is None
    with Session(db.for_writing(engine)) as session:
        assert SqlCounterStore(session).advance(UID, 0, 7) is True
        session.commit()
    assert SqlCounterStore(engine).advance(UID, 0, 7) is False
    engine.dispose()


ROUNDS = 150


def _present(url: str, barrier, results) -> None:
    """One process: each round, wait for the other, then present the round's counter."""
    engine = db.make_engine(url)
    store = SqlCounterStore(engine)
    won = []
    for counter in range(1, ROUNDS + 1):
        barrier.wait(timeout=60)
        if store.advance(UID, 0, counter):
            won.append(counter)
    results.put(won)
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_processes_presenting_the_same_counter_at_once_exactly_one_wins(
    kind, tmp_path, request
):
    url = _url(request, tmp_path, kind)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_present, args=(url, barrier, results)) for _ in "ab"]
    for process in processes:
        process.start()
    won = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    # Every round's counter was accepted once, by one of the two, never by both.
    assert sorted(won[0] + won[1]) == list(range(1, ROUNDS + 1))
    assert not set(won[0]) & set(won[1])
    engine = db.make_engine(url)
    assert SqlCounterStore(engine).last(UID, 0) == ROUNDS
    engine.dispose()
