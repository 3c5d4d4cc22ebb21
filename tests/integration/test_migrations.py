"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import provenance_api.models  # noqa: F401  (the tables)
from provenance_api import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def _diff(url: str) -> list:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def test_upgrade_matches_the_models(database_url):
    db.upgrade(database_url)
    assert _diff(database_url) == []
    engine = db.make_engine(database_url)
    try:
        assert db.current_revision(engine) == db.head_revision()
        db.check_schema(engine)
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_empties(database_url):
    db.upgrade(database_url)
    db.upgrade(database_url)
    db.downgrade(database_url, "base")
    engine = db.make_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        with pytest.raises(db.DatabaseError, match="provenance-api db upgrade"):
            db.check_schema(engine)
    finally:
        engine.dispose()
    db.upgrade(database_url)
    assert _diff(database_url) == []


def test_unreachable_database_is_named_without_password():
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:1/nothing"
    with pytest.raises(db.DatabaseError) as error:
        db.upgrade(url)
    assert "hunter2" not in str(error.value)
    assert "127.0.0.1:1" in str(error.value)
