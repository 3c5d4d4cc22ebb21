"""/v1/trades/<id>/details: a trade's personal data, its readers, its log and its erasure.

Trade rows are built directly (the trades service makes them in production); the chain's view
of proposed arbiters comes from a fake TradeChain. test_trade_details_chain.py runs the same
rules against a real trade on the embedded chain.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import Session, select

from provenance_api import trade_vault
from provenance_api.api.trade_details import CHAIN_EXTENSION, WRITING_READS
from provenance_api.models import ChainWrite, Trade, TradeAccess, TradeKey, TradeRecord
from provenance_api.schemas import Role
from tests.integration.api_support import GTIN, Api, make_api

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64
ESCROW = "0x" + "e5" * 20


@dataclass
class FakeChain:
    """The chain's proposed arbiter and parties' choices, per trade id, as a test sets them."""

    candidates: dict[int, set[str]] = field(default_factory=dict)

    def refresh(self, uow: object, trade: Trade) -> None:
        """The tests write the cached state into the row themselves (update_trade)."""

    def arbiter_candidates(self, trade: Trade) -> frozenset[str]:
        return frozenset(a.lower() for a in self.candidates.get(trade.id or 0, set()))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def given(details: dict | None) -> dict | None:
    """Contact details without the fields left out."""
    return None if details is None else {k: v for k, v in details.items() if v is not None}


def me(api: Api, key: str) -> dict:
    return api.call("GET", "/v1/me", key).get_json()["organization"]


@pytest.fixture(params=["sqlite", "fake", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path) -> Iterator[SimpleNamespace]:
    """Seller, buyer, two arbiters, a stranger and an operator; one item; no trade yet."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    api = make_api(request.param, tmp_path, url)
    fake_chain = FakeChain()
    api.app.extensions[CHAIN_EXTENSION] = lambda: fake_chain
    keys = {
        "seller": api.key(Role.SUPPLIER, "Seller"),
        "buyer": api.key(Role.RETAILER, "Buyer"),
        "arbiter": api.key(Role.ARBITER, "Judge"),
        "proposed": api.key(Role.ARBITER, "Proposed"),
        "stranger": api.key(Role.CARRIER, "Stranger"),
        "operator": api.key(Role.OPERATOR, "Staff"),
    }
    orgs = {name: me(api, key) for name, key in keys.items() if name != "operator"}
    product = {"gtin": GTIN, "name": "Tea"}
    assert api.call("POST", "/v1/products", keys["seller"], json=product).status_code == 201
    items = {"items": [{"gtin": GTIN, "serial": "S1", "tag": "qr"}]}
    assert api.call("POST", "/v1/items", keys["seller"], json=items).get_json()["created"] == 1
    yield SimpleNamespace(
        api=api,
        kind=request.param,
        chain=fake_chain,
        keys=keys,
        orgs=orgs,
        trades=iter(range(1, 99)),
    )
    api.app.extensions["provenance"].close()


def make_trade(world: SimpleNamespace, **changes: object) -> int:
    """A trade row between seller and buyer, open on-chain unless `changes` say otherwise."""
    trade_id = next(world.trades)
    seller, buyer = world.orgs["seller"], world.orgs["buyer"]
    fields: dict = {
        "id": trade_id,
        "item_id": 1,
        "seller_organization_id": seller["id"],
        "buyer_organization_id": buyer["id"],
        "seller_address": seller["address"],
        "buyer_address": buyer["address"],
        "deposit": 10**18,
        "price": 0,
        "deposit_window": 3600,
        "ship_window": 3600,
        "confirm_window": 3600,
        "agree_window": 3600,
        "rule_window": 3600,
        "opened_by_organization_id": seller["id"],
        "open_write_key": f"trade-open:{trade_id}",
        "escrow_address": ESCROW,
        "chain_trade_id": trade_id,
        "state": "funded",
    }
    fields.update(changes)
    store(world, Trade(**fields))
    return trade_id


def store(world: SimpleNamespace, trade: Trade) -> None:
    """Insert or update a trade row, as the trades service's refresh would."""
    if world.kind == "fake":
        fake = world.api.uow()
        fake.committed.trades[trade.id] = trade.model_dump()
        return
    with Session(world.api.app.extensions["provenance"].engine) as session:
        session.merge(trade)
        session.commit()


def update_trade(world: SimpleNamespace, trade_id: int, **changes: object) -> None:
    with world.api.uow() as uow:
        trade = uow.trades.get(trade_id)
        fields = {**trade.model_dump(), **changes}
    store(world, Trade(**fields))


def rows(world: SimpleNamespace, model: type, trade_id: int) -> list:
    """Stored rows of `model` for the trade (TradeRecord, TradeAccess, TradeKey)."""
    with world.api.uow() as uow:
        repo = uow.trade_details
        if model is TradeRecord:
            found = list(repo.records(trade_id))
        elif model is TradeAccess:
            found = list(repo.access_log(trade_id))
        else:
            key = repo.key(trade_id)
            found = [key] if key is not None else []
        # Plain copies: the unit's rows expire when it ends.
        return [model(**row.model_dump()) for row in found]


def owed(world: SimpleNamespace, key: str):
    """The owed chain write `key`: (contract, function, args)."""
    if world.kind == "fake":
        return tuple(world.api.uow().committed.writes[key])
    with Session(world.api.app.extensions["provenance"].engine) as session:
        row = session.exec(select(ChainWrite).where(ChainWrite.idempotency_key == key)).one()
        return (row.contract, row.function, row.args)


def url(trade_id: int, tail: str = "details") -> str:
    return f"/v1/trades/{trade_id}/{tail}"


def add(world: SimpleNamespace, who: str, trade_id: int, body: dict):
    return world.api.call("POST", url(trade_id), world.keys[who], json=body)


def actions(world: SimpleNamespace, trade_id: int) -> list[tuple[str, str, int | None]]:
    log = world.api.call("GET", url(trade_id, "access-log"), world.keys["seller"]).get_json()
    by_id = {org["id"]: name for name, org in world.orgs.items()}
    return [(by_id[e["organization_id"]], e["action"], e["record_sequence"]) for e in log["items"]]


DETAILS = {"kind": "details", "details": {"name": "Ana Buyer", "address": "1 Rue X, Lyon"}}
MESSAGE = {"kind": "message", "text": "The parcel arrived torn."}


def test_parties_write_and_read_sealed_records(world) -> None:
    trade_id = make_trade(world)
    answer = add(world, "buyer", trade_id, DETAILS)
    assert answer.status_code == 201, answer.get_json()
    assert answer.headers["Cache-Control"] == "no-store"
    first = answer.get_json()
    assert (first["sequence"], first["author_role"], given(first["details"])) == (
        1,
        "buyer",
        DETAILS["details"],
    )
    assert add(world, "seller", trade_id, MESSAGE).status_code == 201
    photo = {"kind": "photo", "content_type": "image/png", "data": b64(PNG)}
    assert add(world, "buyer", trade_id, photo).status_code == 201
    pdf = {"kind": "evidence", "content_type": "application/pdf", "data": b64(PDF)}
    assert add(world, "seller", trade_id, pdf).get_json()["sequence"] == 4

    for reader in ("seller", "buyer"):
        details = world.api.call("GET", url(trade_id), world.keys[reader]).get_json()
        assert details["role"] == reader
        records = details["records"]
        assert [r["sequence"] for r in records] == [1, 2, 3, 4]
        assert given(records[0]["details"]) == DETAILS["details"]
        assert records[1]["text"] == MESSAGE["text"]
        assert records[2]["content_url"] == f"/v1/trades/{trade_id}/details/3/content"
        assert all(r["intact"] for r in records)
    content = world.api.call("GET", url(trade_id, "details/3/content"), world.keys["seller"])
    assert content.status_code == 200 and content.data == PNG
    assert content.headers["Content-Type"] == "image/png"
    assert content.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in content.headers["Content-Disposition"]

    # Stored sealed: no plaintext in the row; the hash chain over the digests is the trade's.
    stored = rows(world, TradeRecord, trade_id)
    assert all(b"Lyon" not in r.ciphertext and b"torn" not in r.ciphertext for r in stored)
    expected = trade_vault.chain_hash([(r.sequence, bytes(r.digest)) for r in stored])
    assert details["details_hash"] == "0x" + expected.hex()
    for record in stored:
        contract, function, args = owed(world, f"trade-details:{trade_id}:{record.sequence}")
        assert (contract, function) == ("TradeEscrow", "recordDetails")
        assert args[0] == trade_id
        assert args[1] in ("0x" + bytes(record.details_hash).hex(), bytes(record.details_hash))


def test_strangers_and_operators_are_not_told_the_trade_exists(world) -> None:
    trade_id = make_trade(world)
    assert add(world, "seller", trade_id, MESSAGE).status_code == 201
    missing = world.api.call("GET", url(999), world.keys["seller"])
    assert missing.status_code == 404
    for who in ("stranger", "operator", "arbiter", "proposed"):
        key = world.keys[who]
        for method, tail, body in (
            ("GET", "details", None),
            ("POST", "details", MESSAGE),
            ("GET", "details/1/content", None),
            ("GET", "details/export", None),
            ("DELETE", "details", None),
            ("GET", "access-log", None),
        ):
            answer = world.api.call(method, url(trade_id, tail), key, json=body)
            assert answer.status_code == 404, (who, tail, answer.get_json())
            assert answer.get_json()["message"] == missing.get_json()["message"].replace(
                "999", str(trade_id)
            )
    # Nothing was logged for them: only the seller's write.
    assert actions(world, trade_id) == [("seller", "write", 1)]


def test_an_arbiter_not_accepted_by_both_is_refused_and_logged(world) -> None:
    trade_id = make_trade(world, state="disputed")
    assert add(world, "buyer", trade_id, DETAILS).status_code == 201
    proposed = world.orgs["proposed"]
    world.chain.candidates[trade_id] = {proposed["address"]}
    refused = world.api.call("GET", url(trade_id), world.keys["proposed"])
    assert refused.status_code == 403
    assert "accepted" in refused.get_json()["message"]
    assert refused.get_json()["fields"] == {"trade_id": "arbiter not accepted by both parties"}
    assert add(world, "proposed", trade_id, MESSAGE).status_code == 403
    # An arbiter the chain never named in this trade is a stranger.
    assert world.api.call("GET", url(trade_id), world.keys["arbiter"]).status_code == 404
    assert actions(world, trade_id) == [
        ("buyer", "write", 1),
        ("proposed", "refused", None),
        ("proposed", "refused", None),
    ]


def test_the_accepted_arbiter_reads_and_writes_but_does_not_erase(world) -> None:
    arbiter = world.orgs["arbiter"]
    trade_id = make_trade(world, state="disputed")
    assert add(world, "buyer", trade_id, DETAILS).status_code == 201
    # Both parties accepted it: the trades service caches the arbiter on the row.
    update_trade(
        world,
        trade_id,
        state="arbitration",
        arbiter_address=arbiter["address"],
        arbiter_organization_id=arbiter["id"],
    )
    details = world.api.call("GET", url(trade_id), world.keys["arbiter"])
    assert details.status_code == 200
    assert details.get_json()["role"] == "arbiter"
    assert given(details.get_json()["records"][0]["details"]) == DETAILS["details"]
    written = add(world, "arbiter", trade_id, {"kind": "message", "text": "Send me photos."})
    assert written.status_code == 201 and written.get_json()["author_role"] == "arbiter"
    own = add(world, "arbiter", trade_id, {"kind": "details", "details": {"name": "Judge"}})
    assert own.status_code == 422 and "kind" in own.get_json()["fields"]
    assert world.api.call("DELETE", url(trade_id), world.keys["arbiter"]).status_code == 403
    exported = world.api.call("GET", url(trade_id, "details/export"), world.keys["arbiter"])
    assert exported.status_code == 200
    # The other arbiter stays a stranger.
    assert world.api.call("GET", url(trade_id), world.keys["proposed"]).status_code == 404
    assert actions(world, trade_id) == [
        ("buyer", "write", 1),
        ("arbiter", "read", None),
        ("arbiter", "write", 2),
        ("arbiter", "export", None),
    ]


def test_every_access_is_logged_and_export_holds_everything(world) -> None:
    trade_id = make_trade(world)
    add(world, "buyer", trade_id, DETAILS)
    pdf = {"kind": "evidence", "content_type": "application/pdf", "data": b64(PDF)}
    add(world, "seller", trade_id, pdf)
    world.api.call("GET", url(trade_id), world.keys["seller"])
    world.api.call("GET", url(trade_id, "details/2/content"), world.keys["buyer"])
    exported = world.api.call("GET", url(trade_id, "details/export"), world.keys["buyer"])
    assert exported.status_code == 200
    document = exported.get_json()
    assert document["erased_at"] is None
    assert given(document["records"][0]["details"]) == DETAILS["details"]
    assert base64.b64decode(document["records"][1]["data"]) == PDF
    # The export's own access is in the log it carries.
    assert [e["action"] for e in document["access_log"]] == [
        "write",
        "write",
        "read",
        "read",
        "export",
    ]
    assert actions(world, trade_id) == [
        ("buyer", "write", 1),
        ("seller", "write", 2),
        ("seller", "read", None),
        ("buyer", "read", 2),
        ("buyer", "export", None),
    ]
    # Reading the log is not an access to the details.
    assert len(actions(world, trade_id)) == 5


def test_writing_needs_a_trade_open_on_chain_and_not_settled(world) -> None:
    opening = make_trade(world, state="opening", chain_trade_id=None)
    answer = add(world, "seller", opening, MESSAGE)
    assert answer.status_code == 409
    assert "not open on-chain" in answer.get_json()["message"]
    settled = make_trade(world, state="settled", outcome="completed")
    assert add(world, "seller", settled, MESSAGE).status_code == 409
    assert rows(world, TradeRecord, opening) == rows(world, TradeRecord, settled) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "message"}, "text"),
        ({"kind": "message", "text": "hi", "data": "aGk="}, "data"),
        ({"kind": "details", "details": {}}, "details"),
        ({"kind": "details", "details": {"name": "A", "shoe": 42}}, "details.shoe"),
        ({"kind": "details", "details": {"email": "no-at-sign"}}, "details.email"),
        ({"kind": "message", "text": "é" * 10_001}, "text"),
        ({"kind": "message", "text": "nul\x00byte"}, "text"),
        ({"kind": "message", "text": "\x1b[31mred"}, "text"),
        ({"kind": "details", "details": {"name": "A\x00"}}, "details.name"),
        ({"kind": "evidence", "content_type": "text/plain", "data": b64(b"a\x07b")}, "data"),
        ({"kind": "photo", "content_type": "image/png", "data": "not base64!"}, "data"),
        ({"kind": "photo", "content_type": "image/png", "data": b64(PDF)}, "data"),
        ({"kind": "photo", "content_type": "application/pdf", "data": b64(PDF)}, "content_type"),
        ({"kind": "evidence", "content_type": "text/html", "data": b64(b"<p>")}, "content_type"),
        ({"kind": "evidence", "content_type": "text/plain", "data": b64(b"\xff\xfe")}, "data"),
        ({"kind": "photo", "data": b64(PNG)}, "content_type"),
        ({"kind": "video", "text": "x"}, "kind"),
        ({"kind": "message", "text": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_records_are_422_naming_the_field(world, body: dict, field: str) -> None:
    trade_id = make_trade(world)
    answer = add(world, "seller", trade_id, body)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()
    assert rows(world, TradeRecord, trade_id) == []


def test_file_size_limit(world) -> None:
    trade_id = make_trade(world)
    big = PNG + b"\x00" * (2 * 1024 * 1024 - len(PNG) + 1)
    body = {"kind": "photo", "content_type": "image/png", "data": b64(big)}
    answer = add(world, "seller", trade_id, body)
    assert answer.status_code == 422 and "data" in answer.get_json()["fields"]
    body["data"] = b64(big[:-1])
    assert add(world, "seller", trade_id, body).status_code == 201


def test_bad_path_values_are_422_or_404(world) -> None:
    seller = world.keys["seller"]
    assert world.api.call("GET", "/v1/trades/0/details", seller).status_code == 422
    assert world.api.call("GET", "/v1/trades/abc/details", seller).status_code == 404
    too_big = f"/v1/trades/{2**64}/details"
    assert world.api.call("GET", too_big, seller).status_code == 422
    trade_id = make_trade(world)
    assert world.api.call("GET", url(trade_id, "details/0/content"), seller).status_code == 422
    missing = world.api.call("GET", url(trade_id, "details/5/content"), seller)
    assert missing.status_code == 404 and "sequence" in missing.get_json()["fields"]


def test_erasure_waits_for_settlement_and_legal_hold(world) -> None:
    trade_id = make_trade(world)
    add(world, "buyer", trade_id, DETAILS)
    add(world, "seller", trade_id, {"kind": "photo", "content_type": "image/png", "data": b64(PNG)})
    before = world.api.call("DELETE", url(trade_id), world.keys["buyer"])
    assert before.status_code == 409 and "not settled" in before.get_json()["message"]
    hash_before = world.api.call("GET", url(trade_id), world.keys["buyer"]).get_json()
    update_trade(world, trade_id, state="settled", outcome="completed")

    # A legal hold: operators only, in the future, reads nothing.
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    hold = {"until": until, "reason": "court order 12/2026"}
    assert world.api.call("PUT", url(trade_id, "legal-hold"), world.keys["seller"], json=hold)
    refused = world.api.call("PUT", url(trade_id, "legal-hold"), world.keys["seller"], json=hold)
    assert refused.status_code == 403
    past = {"until": "2020-01-01T00:00:00Z", "reason": "x"}
    answer = world.api.call("PUT", url(trade_id, "legal-hold"), world.keys["operator"], json=past)
    assert answer.status_code == 422 and "until" in answer.get_json()["fields"]
    answer = world.api.call("PUT", url(999, "legal-hold"), world.keys["operator"], json=hold)
    assert answer.status_code == 404
    held = world.api.call("PUT", url(trade_id, "legal-hold"), world.keys["operator"], json=hold)
    assert held.status_code == 200
    assert set(held.get_json()) == {"trade_id", "until", "reason", "set_at"}
    during = world.api.call("DELETE", url(trade_id), world.keys["seller"])
    assert during.status_code == 409 and "legal hold" in during.get_json()["message"]

    # The hold passes.
    update_trade(world, trade_id, legal_hold_until=datetime.now(UTC) - timedelta(seconds=1))
    erased = world.api.call("DELETE", url(trade_id), world.keys["seller"])
    assert erased.status_code == 200, erased.get_json()
    body = erased.get_json()
    assert body["records_erased"] == 2
    assert body["details_hash"] == hash_before["details_hash"]
    assert body["erased_by_organization_id"] == world.orgs["seller"]["id"]

    # Content gone: 410 with a JSON error, for both parties; the key and ciphertexts destroyed.
    for reader in ("seller", "buyer"):
        gone = world.api.call("GET", url(trade_id), world.keys[reader])
        assert gone.status_code == 410 and gone.get_json()["error"] == "gone"
        gone = world.api.call("GET", url(trade_id, "details/2/content"), world.keys[reader])
        assert gone.status_code == 410 and gone.get_json()["error"] == "gone"
    (key,) = rows(world, TradeKey, trade_id)
    assert key.wrapped_key is None and key.erased_at is not None
    assert all(r.ciphertext is None for r in rows(world, TradeRecord, trade_id))
    # What stays: the digests and hashes, the access log, the trade's hash.
    stored = rows(world, TradeRecord, trade_id)
    expected = trade_vault.chain_hash([(r.sequence, bytes(r.digest)) for r in stored])
    assert body["details_hash"] == "0x" + expected.hex()
    assert actions(world, trade_id)[-1] == ("seller", "erase", None)
    exported = world.api.call("GET", url(trade_id, "details/export"), world.keys["buyer"])
    document = exported.get_json()
    assert exported.status_code == 200 and document["erased_at"] is not None
    assert all(r["details"] is None and r["data"] is None for r in document["records"])
    assert [r["intact"] for r in document["records"]] == [False, False]
    # Idempotent: the same erasure again.
    again = world.api.call("DELETE", url(trade_id), world.keys["buyer"]).get_json()
    assert again["erased_at"] == body["erased_at"]
    assert again["erased_by_organization_id"] == world.orgs["seller"]["id"]
    assert [a for _, a, _ in actions(world, trade_id)].count("erase") == 2
    # A hold on erased details means nothing.
    held = world.api.call("PUT", url(trade_id, "legal-hold"), world.keys["operator"], json=hold)
    assert held.status_code == 409


def test_a_trade_with_no_records_can_be_erased(world) -> None:
    trade_id = make_trade(world, state="settled", outcome="cancelled")
    erased = world.api.call("DELETE", url(trade_id), world.keys["buyer"])
    assert erased.status_code == 200 and erased.get_json()["records_erased"] == 0
    assert world.api.call("GET", url(trade_id), world.keys["buyer"]).status_code == 410


def test_concurrent_records_get_distinct_sequences_in_one_chain(world) -> None:
    if world.kind == "fake":
        pytest.skip("the in-memory fake is one unit of work shared by every request")
    trade_id = make_trade(world)
    answers: list = []

    def write(index: int) -> None:
        body = {"kind": "message", "text": f"message {index}"}
        answers.append(add(world, "buyer" if index % 2 else "seller", trade_id, body))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201] * 6
    stored = rows(world, TradeRecord, trade_id)
    assert [r.sequence for r in stored] == [1, 2, 3, 4, 5, 6]
    current = trade_vault.ZERO_HASH
    for record in stored:
        current = trade_vault.next_hash(current, bytes(record.digest), record.sequence)
        assert bytes(record.details_hash) == current


def test_every_reading_route_is_declared_a_writer(world) -> None:
    # Each read is logged: on SQLite its unit must take the write lock at BEGIN, or a read
    # racing a write fails with SQLITE_BUSY instead of waiting.
    reads = {
        rule.endpoint
        for rule in world.api.app.url_map.iter_rules()
        if rule.endpoint.startswith("trade_details.") and "GET" in (rule.methods or ())
    }
    assert reads == WRITING_READS
