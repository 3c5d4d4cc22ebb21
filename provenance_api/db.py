"""The database edge: engines, sessions and Alembic migrations (SQLite or PostgreSQL).

Units of work that write go through `session_scope`; reads use a plain `Session(engine)`.
On SQLite the difference matters: a writing transaction takes the write lock at its BEGIN
(IMMEDIATE), a reading one does not (in WAL mode it reads a snapshot and never waits).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# Execution option marking an engine (see `for_writing`) whose transactions will write.
WRITES = "provenance_writes"


class DatabaseError(RuntimeError):
    """The database cannot be reached or migrated; the message says which URL and why.

    `reason` says why without naming the URL or a file path, for anyone to read (/healthz).
    """

    def __init__(self, message: str, reason: str = "unavailable") -> None:
        super().__init__(message)
        self.reason = reason


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, full sync, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"cannot create the directory of {database}: {exc.strerror}",
                    reason=f"cannot create the database's directory: {exc.strerror}",
                ) from None
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def for_writing(engine: Engine) -> Engine:
    """`engine` for a unit of work that writes: on SQLite it holds the write lock from BEGIN."""
    return engine.execution_options(**{WRITES: True})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is emitted by the "begin" listener
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL, like the embedded chain's state: with NORMAL a power cut can roll back the last
    # commits, e.g. a recorded transaction hash whose block survived on the chain.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # pysqlite's own transaction handling defers BEGIN, so we emit it. A writing transaction
    # takes the write lock at BEGIN (IMMEDIATE): one that read first and then tried to write
    # would fail with SQLITE_BUSY if another writer committed in between, busy timeout or
    # not. A reading one begins DEFERRED, so that a long write never blocks a read.
    writes = connection.get_execution_options().get(WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN DEFERRED")


def is_sqlite(engine: Engine) -> bool:
    """True when `engine` talks to SQLite."""
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work that writes: commit on success, roll back on any error."""
    with Session(for_writing(engine), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def safe_url(url: str) -> str:
    """`url` with any password masked, fit for logs and operators' messages."""
    return make_url(url).render_as_string(hide_password=True)


def public_location(url: str) -> dict[str, str]:
    """What /healthz may show of `url`: the backend, and a server's host and database name.

    Never a file path, a user name or a password.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"backend": backend}
    host = parsed.host or "localhost"
    if parsed.port:
        host = f"{host}:{parsed.port}"
    return {"backend": backend, "host": host, "database": parsed.database or ""}


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic configuration for our migrations against `url` (no alembic.ini needed)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`; an unknown revision fails before connecting."""
    config = alembic_config(url)
    check_revision(config, revision)
    engine = make_engine(url)
    try:
        # Our connection, marked as writing: on SQLite the migration holds the write lock
        # from its first statement, so that two processes starting together take turns.
        with for_writing(engine).connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"cannot migrate {safe_url(url)}: {cause}") from exc
    except CommandError as exc:  # e.g. the database is at a revision we do not know
        raise DatabaseError(f"cannot migrate {safe_url(url)}: {exc}") from exc
    finally:
        engine.dispose()


def check_revision(config: AlembicConfig, revision: str) -> None:
    """DatabaseError unless our migrations know `revision` (an id, "head" or "base")."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config)
    try:
        scripts.get_revisions(revision)
    except CommandError:
        known = ", ".join(["head", "base", *sorted(r.revision for r in scripts.walk_revisions())])
        raise DatabaseError(f"unknown revision {revision!r}; known: {known}") from None


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to `revision` ("base" for an empty schema)."""
    command.downgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str:
    """The newest revision our migrations define (read from the scripts once per process)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def check_schema(engine: Engine) -> None:
    """Raise DatabaseError unless the database is reachable and migrated to the head revision."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).partition("\n")[0]
        raise DatabaseError(
            f"database {where} unreachable: {cause}", reason=f"unreachable: {cause}"
        ) from exc
    if current != head_revision():
        reason = (
            f"at revision {current or 'none'}, expected {head_revision()}; "
            "run `provenance-api db upgrade`"
        )
        raise DatabaseError(f"database {where} is {reason}", reason=reason)
