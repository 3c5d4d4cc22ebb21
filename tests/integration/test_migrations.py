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


def test_one_live_trade_per_item_fails_the_trades_whose_open_failed_first(database_url):
    from sqlmodel import Session, select

    from provenance_api.models import ChainWrite, Product, Trade
    from provenance_api.unit_of_work import SqlUnitOfWork
    from tests.integration.test_unit_of_work import _item, _org, _trade

    db.upgrade(database_url, "0910_trade_details")
    engine = db.make_engine(database_url)
    try:
        uow = SqlUnitOfWork(engine, sender=lambda: "0x" + "5e" * 20)
        seller = _org(uow, "Seller", "0x" + "1" * 40)
        buyer = _org(uow, "Buyer", "0x" + "2" * 40)
        with uow:
            uow.products.add(Product(organization_id=seller, gtin="00000000000009", name="T"))
            (item,) = uow.items.add_many([_item(seller, "00000000000009", "S1")])
            # The race before the index: two opens of one item, the second reverted.
            ids = []
            for key in ("trade:1:open", "trade:2:open"):
                ids.append(uow.trades.add(_trade(item, seller, buyer, key)).id)
                uow.ledger.owe(
                    contract="TradeEscrow", function="open", args=[], idempotency_key=key
                )
            uow.commit()
        with Session(engine) as session:
            lost = session.exec(
                select(ChainWrite).where(ChainWrite.idempotency_key == "trade:2:open")
            ).one()
            lost.status = "failed"
            session.add(lost)
            session.commit()
        db.upgrade(database_url)
        with Session(engine) as session:
            states = {t.open_write_key: t.state for t in session.exec(select(Trade))}
        assert states == {"trade:1:open": "opening", "trade:2:open": "failed"}
        # Two live trades that both may have opened: the upgrade stops and names them.
        db.downgrade(database_url, "0910_trade_details")
        with uow:
            third = uow.trades.add(_trade(item, seller, buyer, "trade:3:open")).id
            uow.commit()
        named = rf"trade {ids[0]} \(item {item}\), trade {third} \(item {item}\)"
        with pytest.raises(RuntimeError, match=named):
            db.upgrade(database_url)
    finally:
        engine.dispose()
