"""Provisioning records of NTAG 424 DNA tags, in a small SQLite file next to the key file.

The SQLite adapter of `personalize.ProvisioningLog`: before each ChangeKey a key is noted
pending, once the tag confirms it, confirmed, each note committed to disk (WAL,
synchronous=FULL) before the tag is touched again. So the keys of a half-personalized
tag are always known.

No key bytes are stored. A tag's keys are re-derived from the supplier's SUN master key
(the key file whose address is recorded) and the UID (`personalize.tag_keys`); a key
noted pending is either still the factory key or already the derived one, and
`personalize --resume` tries both.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from firmware_tools.chips.ntag424.personalize import CONFIRMED, PENDING
from firmware_tools.errors import RecordStoreError

__all__ = ["KeyNote", "RecordStore", "TagRecord", "default_records_path"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    uid TEXT PRIMARY KEY,            -- 14 upper-case hex digits
    url_template TEXT NOT NULL,      -- with {picc_data} and {cmac} placeholders
    gtin TEXT NOT NULL,
    serial TEXT NOT NULL,
    supplier TEXT NOT NULL,          -- address of the key file whose master key derives the keys
    key_version INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE TABLE IF NOT EXISTS key_changes (
    uid TEXT NOT NULL REFERENCES tags (uid),
    key_no INTEGER NOT NULL CHECK (key_no BETWEEN 0 AND 4),
    key_version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed')),
    at TEXT NOT NULL,
    PRIMARY KEY (uid, key_no, key_version)
);
"""


def default_records_path(key_file: Path) -> Path:
    """Where the records of tags keyed from `key_file` live by default: beside it."""
    return key_file.with_name(key_file.name + ".ntag424.sqlite3")


@dataclass(frozen=True, slots=True)
class KeyNote:
    """The last note about one key of a tag."""

    key_no: int
    version: int
    state: str
    at: str


@dataclass(frozen=True, slots=True)
class TagRecord:
    """What the records say about one tag."""

    uid: bytes
    url_template: str
    gtin: str
    serial: str
    supplier: str
    key_version: int
    started_at: str
    completed_at: str | None
    keys: tuple[KeyNote, ...]

    @property
    def complete(self) -> bool:
        """Every key confirmed at the record's version, and the run finished."""
        confirmed = {
            n.key_no for n in self.keys if (n.version, n.state) == (self.key_version, CONFIRMED)
        }
        return self.completed_at is not None and confirmed == {0, 1, 2, 3, 4}

    def as_dict(self) -> dict:
        notes = {n.key_no: n for n in self.keys}
        return {
            "uid": self.uid.hex().upper(),
            "state": "personalized" if self.complete else "half-personalized",
            "url_template": self.url_template,
            "gtin": self.gtin,
            "serial": self.serial,
            "supplier": self.supplier,
            "key_version": self.key_version,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "keys": [
                {
                    "key_no": key_no,
                    "version": notes[key_no].version if key_no in notes else 0,
                    "state": notes[key_no].state if key_no in notes else "factory",
                    "at": notes[key_no].at if key_no in notes else None,
                }
                for key_no in range(5)
            ],
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RecordStore:
    """The provisioning records in one SQLite file; a `ProvisioningLog`."""

    def __init__(self, connection: sqlite3.Connection, path: Path, clock: Callable[[], str]):
        self._db = connection
        self.path = path
        self._clock = clock

    @classmethod
    def open(cls, path: Path, *, clock: Callable[[], str] = _now) -> RecordStore:
        """Open (or create) the records for writing; RecordStoreError if that cannot be done.

        Checked by writing, so that a read-only or missing directory is found before any
        tag is touched. A missing directory is not created: a mistyped path would scatter
        the only copy of the records.
        """
        path = Path(path)
        directory = path.parent
        if not directory.is_dir():
            raise RecordStoreError(
                f"the records directory {directory} does not exist (create it, or choose"
                " another place with --records)"
            )
        if path.exists() and not path.is_file():
            raise RecordStoreError(f"the records path {path} is not a file")
        problem = f"cannot write the provisioning records {path}"
        if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise RecordStoreError(f"{problem}: {directory} is read-only for this user")
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=5)
        except sqlite3.Error as exc:
            raise RecordStoreError(f"{problem}: {exc}") from None
        try:
            # WAL and synchronous=FULL: a committed note survives a power cut.
            if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise RecordStoreError(f"{problem}: SQLite refused WAL mode there")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE")  # proves the file and its directory are writable
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise RecordStoreError(f"{problem}: {exc}") from None
        except RecordStoreError:
            db.close()
            raise
        return cls(db, path, clock)

    @classmethod
    def open_read_only(cls, path: Path) -> RecordStore:
        """Open existing records for reading; RecordStoreError if there are none."""
        path = Path(path)
        if not path.is_file():
            raise RecordStoreError(f"no provisioning records at {path}")
        try:
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
            db.execute("SELECT count(*) FROM tags").fetchone()
        except sqlite3.DatabaseError as exc:
            raise RecordStoreError(f"cannot read the provisioning records {path}: {exc}") from None
        return cls(db, path, _now)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: tuple) -> None:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise RecordStoreError(
                f"cannot write the provisioning records {self.path}: {exc}"
            ) from None

    # --- tags ---------------------------------------------------------------------------

    def begin(
        self, uid: bytes, url_template: str, gtin: str, serial: str, supplier: str, key_version: int
    ) -> TagRecord:
        """Record that the tag `uid` is being personalized for this URL (before touching it)."""
        self._write(
            "INSERT INTO tags (uid, url_template, gtin, serial, supplier, key_version, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (uid.hex().upper(), url_template, gtin, serial, supplier, key_version, self._clock()),
        )
        record = self.tag(uid)
        assert record is not None
        return record

    def completed(self, uid: bytes) -> None:
        """Record that the tag's personalization finished and was confirmed."""
        self._write(
            "UPDATE tags SET completed_at = ? WHERE uid = ?", (self._clock(), uid.hex().upper())
        )

    def tag(self, uid: bytes) -> TagRecord | None:
        """The record of `uid`, or None."""
        try:
            row = self._db.execute(
                "SELECT url_template, gtin, serial, supplier, key_version, started_at,"
                " completed_at FROM tags WHERE uid = ?",
                (uid.hex().upper(),),
            ).fetchone()
            if row is None:
                return None
            notes = self._db.execute(
                "SELECT key_no, key_version, state, at FROM key_changes WHERE uid = ?"
                " ORDER BY key_no, key_version",
                (uid.hex().upper(),),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise RecordStoreError(
                f"cannot read the provisioning records {self.path}: {exc}"
            ) from None
        last = {key_no: KeyNote(key_no, version, state, at) for key_no, version, state, at in notes}
        return TagRecord(uid, *row, keys=tuple(last[k] for k in sorted(last)))

    # --- ProvisioningLog ----------------------------------------------------------------

    def key_states(self, uid: bytes) -> Mapping[int, tuple[int, str]]:
        record = self.tag(uid)
        return {} if record is None else {n.key_no: (n.version, n.state) for n in record.keys}

    def key_pending(self, uid: bytes, key_no: int, version: int) -> None:
        self._note(uid, key_no, version, PENDING)

    def key_confirmed(self, uid: bytes, key_no: int, version: int) -> None:
        self._note(uid, key_no, version, CONFIRMED)

    def _note(self, uid: bytes, key_no: int, version: int, state: str) -> None:
        self._write(
            "INSERT INTO key_changes (uid, key_no, key_version, state, at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (uid, key_no, key_version) DO UPDATE SET state = excluded.state,"
            " at = excluded.at",
            (uid.hex().upper(), key_no, version, state, self._clock()),
        )
