"""Alembic environment: our SQLModel metadata and the URL from provenance_api.config."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import provenance_api.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from provenance_api import db

target_metadata = SQLModel.metadata


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from provenance_api import config as settings

    return settings.build()["DATABASE_URL"]


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade --sql`)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through a live connection; SQLite uses batch mode for ALTERs."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = db.make_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _under_alembic() -> bool:
    # pytest's doctest collection imports this module outside any Alembic command.
    try:
        context.config  # noqa: B018
    except AttributeError:
        return False
    return True


if _under_alembic():
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
