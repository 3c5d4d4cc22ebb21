"""Anchoring under concurrency and crashes: every accepted event ends in exactly one batch.

Two anchoring services racing must never share an event; an anchoring process SIGKILLed at
random points while events arrive must leave every event either waiting or in a batch whose
anchor write exists, and the next run must batch the rest.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from contracts_abi.merkle import custody_leaf, verify
from provenance_api import db
from provenance_api.anchorer import Anchorer
from provenance_api.models import (
    AnchorBatch,
    ChainWrite,
    CustodyEvent,
    Organization,
    OrgKind,
    Product,
)
from provenance_api.services.anchoring import anchor_key, close_due_batches
from provenance_api.services.ports import NewCustodyEvent, NewItem
from provenance_api.unit_of_work import SqlUnitOfWork

SENDER = "0x" + "5e" * 20
GTIN = "00000000000001"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _url(request, tmp_path, kind: str) -> str:
    url = (
        f"sqlite:///{tmp_path / 'anchor.sqlite3'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db.upgrade(url)
    return url


def _item(engine) -> int:
    uow = SqlUnitOfWork(engine)
    with uow:
        org = uow.organizations.add(
            Organization(name="Anchors", kind=OrgKind.SUPPLIER, address="0x" + "0a" * 20)
        )
        uow.commit()
    with uow:
        uow.products.add(Product(organization_id=org.id, gtin=GTIN, name="A"))
        now = datetime.now(UTC)
        uow.items.add_many([NewItem(org.id, GTIN, "S1", None, None, "qr", None, now)])
        uow.commit()
    with uow:
        item = uow.items.get(GTIN, "S1")
        return item.id, org.id


def _insert(engine, item_id: int, org: int, count: int, rng: random.Random) -> None:
    now = datetime.now(UTC)
    events = [
        NewCustodyEvent(
            event_id=str(uuid.UUID(bytes=rng.randbytes(16))),
            item_id=item_id,
            organization_id=org,
            party="0x" + "0a" * 20,
            gtin=GTIN,
            serial="S1",
            biz_step="shipping",
            disposition="in_transit",
            read_point="dock",
            from_party="0x" + "00" * 20,
            to_party="0x" + "00" * 20,
            event_time=1_790_000_000,
            time_zone_offset=0,
            tag_url="https://id.example.com/",
            tag_uid=b"",
            tag_originality_signature=b"",
            tag_evidence=bytes(32),
            device="0x" + "0d" * 20,
            signature=bytes(65),
            digest=rng.randbytes(32),
            salt=rng.randbytes(32),
            tag_verdict="authentic",
            tag_codes=[],
            flags=[],
            received_at=now,
        )
        for _ in range(count)
    ]
    uow = SqlUnitOfWork(engine)
    with uow:
        uow.events.add_many(events)
        uow.commit()


def _check_each_event_in_one_anchored_batch(engine) -> tuple[int, int]:
    """Every event is in exactly one batch, placed as its tree says, and each batch is owed."""
    with Session(engine) as session:
        events = session.exec(select(CustodyEvent)).all()
        batches = {row.id: row for row in session.exec(select(AnchorBatch)).all()}
        keys = {row.idempotency_key: row for row in session.exec(select(ChainWrite)).all()}
    assert events and all(event.batch_id in batches for event in events), "an event left out"
    members = collections.defaultdict(list)
    for event in events:
        members[event.batch_id].append(event)
    assert set(members) == set(batches), "a batch with no events"
    for batch_pk, batch in batches.items():
        placed = members[batch_pk]
        assert len(placed) == batch.count
        assert sorted(event.leaf_index for event in placed) == list(range(batch.count))
        assert batch.idempotency_key == anchor_key(batch.batch_id)
        write = keys[batch.idempotency_key]
        assert (write.function, write.args) == (
            "anchor",
            ["0x" + batch.root.hex(), batch.count, "0x" + batch.batch_id.hex()],
        )
        for event in placed:
            proof = [bytes.fromhex(node[2:]) for node in event.proof]
            assert verify(batch.root, custody_leaf(event.digest, event.salt), proof)
    return len(events), len(batches)


@pytest.mark.parametrize("kind", BACKENDS)
def test_two_anchoring_services_racing_never_share_an_event(request, tmp_path, kind):
    url = _url(request, tmp_path, kind)
    engine = db.make_engine(url)
    item_id, org = _item(engine)
    rng = random.Random(7)
    for _ in range(10):
        _insert(engine, item_id, org, 40, rng)
    barrier = threading.Barrier(2)
    closed: list[int] = []

    def anchoring() -> None:
        own = db.make_engine(url)  # its own pool: the two race as two processes would
        barrier.wait()
        closed.append(
            close_due_batches(
                SqlUnitOfWork(own, sender=lambda: SENDER),
                now=lambda: datetime.now(UTC),
                max_count=7,
                max_age_seconds=0,
            )
        )
        own.dispose()

    threads = [threading.Thread(target=anchoring) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    events, batches = _check_each_event_in_one_anchored_batch(engine)
    assert events == 400 and batches == sum(closed) == -(-400 // 7)
    print(f"batches closed by each service: {closed}")
    engine.dispose()


KILLS = 20  # the count: each kill lands at a random point of a tick
CHILD = """
import sys, threading
from provenance_api import db
from provenance_api.anchorer import Anchorer
from provenance_api.anchorer import Anchorer
engine = db.make_engine(sys.argv[1])
config = {"ANCHOR_BATCH_MAX": 5, "ANCHOR_MAX_AGE_SECONDS": 0}
anchorer = Anchorer(engine, lambda: sys.argv[2], config)
anchorer.poll_seconds = 0.01
print("ready", flush=True)
anchorer.run(threading.Event())
"""


@pytest.mark.parametrize("kind", BACKENDS)
def test_an_anchoring_process_killed_at_random_points_loses_and_repeats_nothing(
    request, tmp_path, kind
):
    seed = int(os.environ.get("ANCHOR_CRASH_SEED", time.time_ns() % 1_000_000))
    print(f"crash test seed: {seed} (ANCHOR_CRASH_SEED={seed} repeats it)")
    rng = random.Random(seed)
    url = _url(request, tmp_path, kind)
    engine = db.make_engine(url)
    item_id, org = _item(engine)
    stop = threading.Event()
    inserted = [0]

    def arrivals() -> None:
        local = random.Random(seed + 1)
        while not stop.is_set():
            count = local.randint(1, 4)
            _insert(engine, item_id, org, count, local)
            inserted[0] += count
            time.sleep(local.uniform(0.002, 0.02))

    feeder = threading.Thread(target=arrivals)
    feeder.start()
    kills = 0
    try:
        for _ in range(KILLS):
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, url, SENDER],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.6))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            child.stdout.close()
            kills += 1
    finally:
        stop.set()
        feeder.join(30)
    # What the killed processes left waiting, a clean run now batches.
    close_due_batches(
        SqlUnitOfWork(engine, sender=lambda: SENDER),
        now=lambda: datetime.now(UTC),
        max_count=5,
        max_age_seconds=0,
    )
    events, batches = _check_each_event_in_one_anchored_batch(engine)
    assert kills == KILLS and events == inserted[0]
    print(f"{kills} kills, {events} events in {batches} batches")
    engine.dispose()


def test_an_idle_anchoring_poll_waits_for_no_writer_and_blocks_none(tmp_path):
    url = _url(None, tmp_path, "sqlite")
    engine = db.make_engine(url)
    item_id, org = _item(engine)
    anchorer = Anchorer(
        engine, lambda: SENDER, {"ANCHOR_BATCH_MAX": 5, "ANCHOR_MAX_AGE_SECONDS": 60}
    )
    writer = sqlite3.connect(tmp_path / "anchor.sqlite3", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another request holds the write lock
    try:
        done: list[int] = []
        # Nothing is due: the poll must not need the lock.
        poll = threading.Thread(target=lambda: done.append(anchorer.tick()))
        poll.start()
        poll.join(3)
        assert done == [0], "an idle poll waited for SQLite's write lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    _insert(engine, item_id, org, 5, random.Random(1))  # a full batch is due at once
    assert anchorer.tick() == 1
    engine.dispose()
