"""The durable outbox: every recorded event, kept until the API has acknowledged or rejected it.

SQLite in WAL mode with synchronous=FULL: `record` returns once its commit is in the
write-ahead log on disk, and that is when the agent may say "recorded". Each change is one
short transaction, so a power cut at any instant leaves every event either recorded whole or
never reported as recorded.

States of an event::

    pending ──(a batch sent, answer applied)──> acknowledged   accepted or duplicate: done,
       │                                                       never sent again
       └──────────────────────────────────────> rejected       kept apart with the API's
                                                               codes and reasons
A batch that got no answer (timeout, reset, 5xx) leaves its events pending: they are sent
again, which is safe because the API answers an identical resend as a duplicate. Pending
events go out in insertion order (the row id), which keeps each device's order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PENDING, ACKNOWLEDGED, REJECTED = "pending", "acknowledged", "rejected"
ACCEPTED, DUPLICATE = "accepted", "duplicate"  # the API's statuses that acknowledge
SCHEMA_VERSION = 1
OPEN_ATTEMPTS = 200  # 10 s in steps of 50 ms
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'acknowledged', 'rejected')),
    recorded_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    answer TEXT CHECK (answer IN ('accepted', 'duplicate', 'rejected')),
    codes TEXT NOT NULL DEFAULT '[]',
    reasons TEXT NOT NULL DEFAULT '[]',
    answered_at REAL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS events_rejected ON events (id) WHERE state = 'rejected';
CREATE TABLE IF NOT EXISTS status (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    at REAL NOT NULL
);
"""


class OutboxError(Exception):
    """The outbox file cannot be used (not an outbox, or a newer schema)."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending event: its row id (the order), its id and its JSON body as recorded."""

    id: int
    event_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The API's answer for one event: accepted, duplicate or rejected (with codes, reasons)."""

    id: int
    status: str
    codes: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected event as `status` shows it."""

    id: int
    event_id: str
    gtin: str
    serial: str
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    answered_at: float


class Outbox:
    """One connection to the outbox file; safe to share between threads (calls take turns)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # isolation_level=None: no implicit transactions; each change says BEGIN itself.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        try:
            for attempt in range(OPEN_ATTEMPTS):
                try:
                    self._prepare()
                    break
                except sqlite3.OperationalError as exc:
                    # Switching a new file to WAL gets "locked" at once, without waiting,
                    # while another connection opens it too (the daemon and `status`).
                    if "locked" not in str(exc) or attempt == OPEN_ATTEMPTS - 1:
                        raise
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    time.sleep(0.05)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise OutboxError(f"{self.path} is not a usable outbox: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise OutboxError(f"{self.path}: cannot use WAL mode (got {mode!r})")
        # FULL: a commit is fsynced to the WAL before it returns (NORMAL would not be).
        self._db.execute("PRAGMA synchronous=FULL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(f"{self.path} has outbox schema {version}; this agent reads 1")
        if version < SCHEMA_VERSION:
            self._db.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------

    def record(self, event: dict[str, Any], now: float) -> int:
        """Store a new pending event durably; its row id. Recording the same event again is a
        no-op that returns the same id (an event id with other content is a ValueError)."""
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        event_id = str(event["event_id"])
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT INTO events (event_id, body, recorded_at) VALUES (?, ?, ?)",
                    (event_id, body, now),
                )
                return int(cursor.lastrowid or 0)
            except sqlite3.IntegrityError:
                row = self._db.execute(
                    "SELECT id, body FROM events WHERE event_id = ?", (event_id,)
                ).fetchone()
                if row is None or row[1] != body:
                    raise ValueError(f"event {event_id} is recorded with other content") from None
                return int(row[0])

    def apply(self, answers: Iterable[Answer], now: float) -> None:
        """Apply the API's answers in one transaction; the upload counts as the last one.

        Only pending events change: an acknowledged event never goes back, whatever a late
        or repeated answer says.
        """
        rows = []
        for answer in answers:
            if answer.status in (ACCEPTED, DUPLICATE):
                state = ACKNOWLEDGED
            elif answer.status == REJECTED:
                state = REJECTED
            else:
                raise ValueError(f"unknown answer status {answer.status!r}")
            codes, reasons = json.dumps(list(answer.codes)), json.dumps(list(answer.reasons))
            rows.append((state, answer.status, codes, reasons, now, answer.id))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "UPDATE events SET state = ?, answer = ?, codes = ?, reasons = ?,"
                    " answered_at = ?, attempts = attempts + 1"
                    " WHERE id = ? AND state = 'pending'",
                    rows,
                )
                self._set("last_upload", str(len(rows)), now)
                self._db.execute("DELETE FROM status WHERE name = 'last_error'")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def note_error(self, message: str, now: float, ids: Sequence[int] = ()) -> None:
        """Remember why the last upload failed; the events `ids` it carried count an attempt."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._set("last_error", message, now)
                self._db.executemany(
                    "UPDATE events SET attempts = attempts + 1 WHERE id = ? AND state = 'pending'",
                    [(i,) for i in ids],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def retry_rejected(self, event_ids: Iterable[str] | None = None) -> int:
        """Put rejected events (all, or those named) back in the queue; how many moved.

        For a cause fixed since (a device registered late, a clock put right): the same
        signed event is sent again, in its original place in the order.
        """
        with self._lock:
            if event_ids is None:
                cursor = self._db.execute(
                    "UPDATE events SET state = 'pending', answer = NULL WHERE state = 'rejected'"
                )
            else:
                cursor = self._db.executemany(
                    "UPDATE events SET state = 'pending', answer = NULL"
                    " WHERE state = 'rejected' AND event_id = ?",
                    [(e,) for e in event_ids],
                )
            return cursor.rowcount

    def prune(self, answered_before: float) -> int:
        """Delete acknowledged events answered before the given time; how many went."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM events WHERE state = 'acknowledged' AND answered_at < ?",
                (answered_before,),
            )
            return cursor.rowcount

    def _set(self, name: str, value: str, now: float) -> None:
        self._db.execute(
            "INSERT INTO status (name, value, at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value, at = excluded.at",
            (name, value, now),
        )

    # --- reading -------------------------------------------------------------------------

    def pending(self, limit: int) -> list[Pending]:
        """The oldest `limit` pending events, in the order they were recorded."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, event_id, body FROM events WHERE state = 'pending' ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [Pending(*row) for row in rows]

    def depth(self) -> int:
        """How many events wait to be delivered."""
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM events WHERE state = 'pending'"
            ).fetchone()[0]

    def last_upload(self) -> float | None:
        """When the API last answered a batch (UTC seconds), or None."""
        row = self._status("last_upload")
        return None if row is None else row[1]

    def last_error(self) -> tuple[float, str] | None:
        """When and why the last upload failed, unless an upload succeeded since."""
        row = self._status("last_error")
        return None if row is None else (row[1], row[0])

    def rejected(self, limit: int = 100) -> list[Rejected]:
        """The most recently answered rejected events, newest first, with codes and reasons."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, event_id, body, codes, reasons, answered_at FROM events"
                " WHERE state = 'rejected' ORDER BY answered_at DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        found = []
        for row_id, event_id, body, codes, reasons, answered_at in rows:
            event = json.loads(body)
            found.append(
                Rejected(
                    id=row_id,
                    event_id=event_id,
                    gtin=event.get("gtin", ""),
                    serial=event.get("serial", ""),
                    codes=tuple(json.loads(codes)),
                    reasons=tuple(json.loads(reasons)),
                    answered_at=answered_at,
                )
            )
        return found

    def counts(self) -> dict[str, int]:
        """How many events are in each state."""
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall()
        return {PENDING: 0, ACKNOWLEDGED: 0, REJECTED: 0, **dict(rows)}

    def _status(self, name: str) -> tuple[str, float] | None:
        with self._lock:
            return self._db.execute(
                "SELECT value, at FROM status WHERE name = ?", (name,)
            ).fetchone()
