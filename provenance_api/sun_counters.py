"""The SQL adapter of firmware_tools.verify.CounterStore: the last SUN counter per tag.

`advance` is one statement, an atomic compare-and-set with insert-if-absent:

    INSERT INTO sun_counter (uid, key_epoch, last_counter, updated_at) VALUES (...)
    ON CONFLICT (uid, key_epoch) DO UPDATE SET last_counter = excluded.last_counter, ...
    WHERE sun_counter.last_counter < excluded.last_counter
    RETURNING last_counter

It changes (and returns) one row exactly when the counter is new or above the stored one.
On PostgreSQL a concurrent upsert of the same key waits for the first one's row lock and
then re-evaluates the WHERE against the committed row (READ COMMITTED), so of two workers or
hosts presenting the same counter at once exactly one changes a row. On SQLite every writer
holds the database lock from BEGIN IMMEDIATE (db.for_writing): the statements take turns.

`advance_many` is the same statement with one VALUES row per tag, for a batch of events: one
round trip instead of one per tap.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from provenance_api import db
from provenance_api.models import SunCounter, utcnow

# What a BIGINT holds; a SUN counter (SDMReadCtr) has 3 bytes, so this is never reached.
_BIGINT_MAX = 2**63 - 1


class SqlCounterStore:
    """CounterStore over the `sun_counter` table.

    Over an Engine each `advance` is its own committed transaction; over a Session it joins
    the caller's transaction (the advance commits or rolls back with the event it checks).
    """

    def __init__(self, bind: Engine | Session) -> None:
        self.bind = bind

    def advance(self, uid: bytes, key_epoch: int, counter: int) -> bool:
        """Store `counter` if it is above the last one of (uid, key_epoch); True if it was."""
        if not 0 <= counter <= _BIGINT_MAX:
            return False  # no tap carries it; as the in-memory store, below any first counter
        statement = _upsert(self._dialect(), [(bytes(uid), key_epoch, counter)])
        # RETURNING yields the row only when it was inserted or updated (a rowcount is not
        # reliable across drivers for an upsert).
        if isinstance(self.bind, Session):
            return self.bind.execute(statement).first() is not None
        with db.for_writing(self.bind).begin() as connection:
            return connection.execute(statement).first() is not None

    def advance_many(self, taps: Sequence[tuple[bytes, int, int]]) -> set[tuple[bytes, int]]:
        """`advance` for several tags in one statement; the (uid, key_epoch) pairs that advanced.

        Each (uid, key_epoch) may appear once. Rows go in key order, so that two requests
        sharing tags lock them in the same order and never deadlock on PostgreSQL.
        """
        rows = sorted(
            (bytes(uid), key_epoch, counter)
            for uid, key_epoch, counter in taps
            if 0 <= counter <= _BIGINT_MAX
        )
        if len({(uid, key_epoch) for uid, key_epoch, _ in rows}) != len(rows):
            raise ValueError("each (uid, key_epoch) may be advanced once per statement")
        if not rows:
            return set()
        statement = _upsert(self._dialect(), rows)
        if isinstance(self.bind, Session):
            found = self.bind.execute(statement).all()
        else:
            with db.for_writing(self.bind).begin() as connection:
                found = connection.execute(statement).all()
        return {(bytes(uid), key_epoch) for uid, key_epoch, _ in found}

    def last(self, uid: bytes, key_epoch: int) -> int | None:
        """The last accepted counter of (uid, key_epoch), if any."""
        query = sa.select(SunCounter.last_counter).where(
            SunCounter.uid == bytes(uid), SunCounter.key_epoch == key_epoch
        )
        if isinstance(self.bind, Session):
            return self.bind.execute(query).scalar()
        with self.bind.connect() as connection:
            return connection.execute(query).scalar()

    def _dialect(self) -> str:
        engine = self.bind.get_bind() if isinstance(self.bind, Session) else self.bind
        return engine.dialect.name


def _upsert(dialect: str, rows: Sequence[tuple[bytes, int, int]]) -> sa.Executable:
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    table = SunCounter.__table__  # type: ignore[attr-defined]
    now = utcnow()
    statement = insert(table).values(
        [
            {"uid": uid, "key_epoch": key_epoch, "last_counter": counter, "updated_at": now}
            for uid, key_epoch, counter in rows
        ]
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.uid, table.c.key_epoch],
        set_={"last_counter": statement.excluded.last_counter, "updated_at": now},
        where=table.c.last_counter < statement.excluded.last_counter,
    ).returning(table.c.uid, table.c.key_epoch, table.c.last_counter)
