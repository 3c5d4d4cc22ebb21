"""The database layer on SQLite files and on PostgreSQL: outbox rows, organizations, keys."""

from __future__ import annotations

import base64
import secrets
import threading

import pytest
import sqlalchemy as sa
from eth_account import Account
from sqlmodel import Session, select

from provenance_api import db
from provenance_api.keys import KeyBox, KeyBoxError
from provenance_api.models import (
    ApiKey,
    ChainTxAttempt,
    ChainWrite,
    Organization,
    OrganizationCreate,
    OrgKind,
    utcnow,
)
from provenance_api.services import deployments, organizations
from provenance_api.services.chain_writes import owe_write, unsettled_count
from provenance_api.services.errors import Conflict, Unauthorized
from provenance_api.unit_of_work import SqlUnitOfWork

SENDER = "0x" + "12" * 20


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db.upgrade(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def keybox():
    return KeyBox(base64.b64encode(secrets.token_bytes(32)).decode())


def anchor_args(n: int) -> list:
    return [n.to_bytes(32, "big"), 3, bytes(32)]


def test_owed_write_round_trips_json_args(engine):
    with db.session_scope(engine) as session:
        row = owe_write(
            session,
            sender=SENDER,
            contract="CustodyLedger",
            function="anchor",
            args=anchor_args(1),
            idempotency_key="batch-1",
        )
        write_id = row.id
    with Session(engine) as session:
        stored = session.get(ChainWrite, write_id)
        assert stored.args == ["0x" + "00" * 31 + "01", 3, "0x" + "00" * 32]
        assert stored.status == "pending"
        assert stored.nonce is None
        assert unsettled_count(session, SENDER) == 1


def test_same_idempotency_key_gives_the_same_row(engine):
    with db.session_scope(engine) as session:
        first = owe_write(
            session,
            sender=SENDER,
            contract="CustodyLedger",
            function="anchor",
            args=anchor_args(1),
            idempotency_key="k",
        )
    with db.session_scope(engine) as session:
        again = owe_write(
            session,
            sender=SENDER,
            contract="CustodyLedger",
            function="anchor",
            args=anchor_args(1),
            idempotency_key="k",
        )
        assert again.id == first.id
        with pytest.raises(Conflict, match="already names a different write"):
            owe_write(
                session,
                sender=SENDER,
                contract="CustodyLedger",
                function="anchor",
                args=anchor_args(2),
                idempotency_key="k",
            )
    with Session(engine) as session:
        assert len(session.exec(select(ChainWrite)).all()) == 1


def test_write_owed_in_a_failed_transaction_is_not_stored(engine):
    with pytest.raises(RuntimeError), db.session_scope(engine) as session:
        owe_write(
            session,
            sender=SENDER,
            contract="CustodyLedger",
            function="anchor",
            args=anchor_args(1),
            idempotency_key="rolled-back",
        )
        raise RuntimeError("the business change failed")
    with Session(engine) as session:
        assert session.exec(select(ChainWrite)).all() == []


def test_database_enforces_unique_keys_nonces_and_hashes(engine):
    with db.session_scope(engine) as session:
        a = ChainWrite(
            idempotency_key="a", sender=SENDER, contract="C", function="f", args=[], nonce=0
        )
        session.add(a)
        session.flush()
        session.add(
            ChainTxAttempt(
                write_id=a.id,
                tx_hash="0x" + "aa" * 32,
                nonce=0,
                gas=21_000,
                max_fee_per_gas=2 * 10**18,
                max_priority_fee_per_gas=10**9,
                raw_tx="0x02",
            )
        )
    duplicates = [
        ChainWrite(idempotency_key="a", sender=SENDER, contract="C", function="f", args=[]),
        ChainWrite(idempotency_key="b", sender=SENDER, contract="C", function="f", nonce=0),
        ChainWrite(idempotency_key="c", sender=SENDER, contract="C", function="f", status="odd"),
    ]
    for duplicate in duplicates:
        with pytest.raises(sa.exc.IntegrityError), db.session_scope(engine) as session:
            session.add(duplicate)
    with Session(engine) as session:
        attempt = session.exec(select(ChainTxAttempt)).one()
        assert attempt.max_fee_per_gas == 2 * 10**18  # big fee values survive


def test_deployments_are_stored_per_chain(engine):
    with db.session_scope(engine) as session:
        deployments.store_addresses(session, 1, {"CustodyLedger": "0x" + "01" * 20})
        deployments.store_addresses(session, 2, {"CustodyLedger": "0x" + "02" * 20})
    with db.session_scope(engine) as session:
        deployments.store_addresses(session, 1, {"CustodyLedger": "0x" + "03" * 20})
    with Session(engine) as session:
        assert deployments.known_addresses(session, 1) == {"CustodyLedger": "0x" + "03" * 20}
        assert deployments.known_addresses(session, 2) == {"CustodyLedger": "0x" + "02" * 20}
        assert deployments.known_addresses(session, 3) == {}


def test_organization_key_is_sealed_and_api_key_hashed(engine, keybox):
    created = organizations.create_organization(
        SqlUnitOfWork(engine), keybox, OrganizationCreate(name="Acme Farms", kind=OrgKind.SUPPLIER)
    )
    public = created.organization
    assert public.kind == "supplier"
    assert created.api_key.startswith("pk_")
    with Session(engine) as session:
        org = session.get(Organization, public.id)
        key = keybox.open(org.encrypted_key, org.address)
        assert Account.from_key(key).address == org.address == public.address
        assert key.hex() not in org.encrypted_key
        stored = session.exec(select(ApiKey)).one()
        assert created.api_key not in (stored.sha256, stored.prefix)
    caller = organizations.authenticate(SqlUnitOfWork(engine), created.api_key)
    assert caller.organization_id == public.id
    with pytest.raises(Unauthorized):
        organizations.authenticate(SqlUnitOfWork(engine), created.api_key + "x")
    with Session(engine) as session:
        stored = session.exec(select(ApiKey)).one()
        stored.revoked_at = utcnow()
        session.add(stored)
        session.commit()
    with pytest.raises(Unauthorized):
        organizations.authenticate(SqlUnitOfWork(engine), created.api_key)
    with pytest.raises(Conflict):
        organizations.create_organization(
            SqlUnitOfWork(engine),
            keybox,
            OrganizationCreate(name="Acme Farms", kind=OrgKind.CARRIER),
        )


def test_sealed_key_does_not_open_elsewhere(keybox):
    account = Account.create()
    sealed = keybox.seal(bytes(account.key), account.address)
    with pytest.raises(KeyBoxError, match="does not decrypt"):
        keybox.open(sealed, "0x" + "00" * 20)
    other = KeyBox(base64.b64encode(secrets.token_bytes(32)).decode())
    with pytest.raises(KeyBoxError):
        other.open(sealed, account.address)
    with pytest.raises(KeyBoxError, match="32 bytes"):
        KeyBox(base64.b64encode(b"short").decode())


def test_safe_url_hides_password():
    assert db.safe_url("postgresql+psycopg://app:s3cret@db:5432/p") == (
        "postgresql+psycopg://app:***@db:5432/p"
    )


def test_sqlite_commits_are_synced_in_full(tmp_path):
    # NORMAL in WAL mode can lose the last commits on a power cut: e.g. the recorded hash
    # of a transaction whose block survived on the chain.
    engine = db.make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with db.session_scope(engine) as session:
        assert session.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    engine.dispose()


def _in_thread(work, timeout: float) -> dict:
    """Run `work` in a thread; {"done": bool, "value": ...} after at most `timeout` seconds."""
    outcome: dict = {"done": False}

    def target() -> None:
        outcome["value"] = work()
        outcome["done"] = True

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    outcome["thread"] = thread
    return outcome


def _owe(session, key: str) -> None:
    owe_write(
        session,
        sender=SENDER,
        contract="CustodyLedger",
        function="anchor",
        args=anchor_args(1),
        idempotency_key=key,
    )


def test_a_read_answers_while_a_long_write_transaction_is_open(engine):
    def read() -> int:
        with Session(engine) as session:
            return unsettled_count(session, SENDER)

    with db.session_scope(engine) as writing:
        _owe(writing, "long-write")
        writing.flush()  # the write lock is held until this block ends
        outcome = _in_thread(read, timeout=5)
        assert outcome["done"], "a read waited for the write lock"
        assert outcome["value"] == 0  # it sees the last committed state
    assert read() == 1


def test_sqlite_writers_still_take_turns(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url)

    def write() -> int:
        with db.session_scope(engine) as session:
            _owe(session, "second")
            return unsettled_count(session, SENDER)

    with db.session_scope(engine) as first:
        first.exec(select(ChainWrite)).all()  # a read first: the lock was taken at BEGIN
        second = _in_thread(write, timeout=0.5)
        assert not second["done"]  # waits at its BEGIN, not at a write that may fail later
        _owe(first, "first")
    second["thread"].join(20)
    assert second["value"] == 2
    engine.dispose()


def test_health_location_names_no_path_and_no_credentials(tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'secret-place' / 'db.sqlite3'}"
    assert db.public_location(sqlite_url) == {"backend": "sqlite"}
    assert db.public_location("postgresql+psycopg://app:pw@db.internal:5433/prov") == {
        "backend": "postgresql",
        "host": "db.internal:5433",
        "database": "prov",
    }


def test_an_unknown_revision_fails_before_touching_the_database(tmp_path):
    path = tmp_path / "db.sqlite3"
    with pytest.raises(db.DatabaseError, match="unknown revision 'nosuchrev'; known: head"):
        db.upgrade(f"sqlite:///{path}", "nosuchrev")
    assert not path.exists()
