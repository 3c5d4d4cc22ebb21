"""Anchoring's pure rules: which events close into a batch, and their leaves and proofs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from contracts_abi.merkle import custody_leaf, verify
from provenance_api.services.anchoring import anchor_key, build_batch, choose_batch
from provenance_api.services.ports import PendingEvent

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _events(count: int, age_seconds: float = 0.0, seed: int = 1) -> list[PendingEvent]:
    rng = random.Random(seed)
    return [
        PendingEvent(
            id=index + 1,
            digest=rng.randbytes(32),
            salt=rng.randbytes(32),
            received_at=NOW - timedelta(seconds=age_seconds),
        )
        for index in range(count)
    ]


def test_a_full_batch_closes_at_once_with_the_lowest_ids():
    waiting = _events(5)
    shuffled = waiting[::-1]
    chosen = choose_batch(shuffled, NOW, max_count=3, max_age_seconds=60)
    assert [event.id for event in chosen] == [1, 2, 3]


def test_a_young_partial_batch_waits_and_an_old_one_closes():
    assert choose_batch(_events(2, age_seconds=1.9), NOW, 10, 2.0) == []
    assert [e.id for e in choose_batch(_events(2, age_seconds=2.0), NOW, 10, 2.0)] == [1, 2]


def test_only_the_oldest_event_counts_for_age():
    young, old = _events(2, age_seconds=0)
    old = PendingEvent(old.id, old.digest, old.salt, NOW - timedelta(seconds=5))
    assert len(choose_batch([young, old], NOW, 10, 2.0)) == 2


def test_naive_times_from_sqlite_are_read_as_utc():
    waiting = [
        PendingEvent(
            1, b"\x01" * 32, b"\x02" * 32, (NOW - timedelta(seconds=3)).replace(tzinfo=None)
        )
    ]
    assert len(choose_batch(waiting, NOW, 10, 2.0)) == 1


def test_nothing_waiting_closes_nothing_and_a_zero_maximum_is_refused():
    assert choose_batch([], NOW, 10, 0) == []
    with pytest.raises(ValueError, match="max_count"):
        choose_batch(_events(1), NOW, 0, 0)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64])
def test_every_proof_links_its_salted_leaf_to_the_root(count):
    events = _events(count, seed=count)
    built = build_batch(events)
    assert [p.event_pk for p in built.placements] == [e.id for e in events]
    assert [p.leaf_index for p in built.placements] == list(range(count))
    for event, placement in zip(events, built.placements, strict=True):
        proof = [bytes.fromhex(node[2:]) for node in placement.proof]
        assert verify(built.root, custody_leaf(event.digest, event.salt), proof)
        # Another salt does not verify: the salt is part of the leaf.
        assert not verify(built.root, custody_leaf(event.digest, b"\x00" * 32), proof)


def test_the_tree_is_deterministic_and_depends_on_every_leaf():
    events = _events(9)
    assert build_batch(events).root == build_batch(list(events)).root
    changed = list(events)
    changed[4] = PendingEvent(5, events[4].digest, b"\x99" * 32, NOW)
    assert build_batch(changed).root != build_batch(events).root


def test_anchor_key_names_the_batch():
    assert anchor_key(b"\xab" * 32) == "anchor:" + "ab" * 32
