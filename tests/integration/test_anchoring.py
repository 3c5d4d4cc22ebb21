"""Anchoring end to end: events posted, batched, anchored through the chain writer, proven."""

from __future__ import annotations

import collections

import pytest
from sqlmodel import Session, select

from provenance_api import chain
from provenance_api.models import AnchorBatch, ChainWrite, CustodyEvent
from provenance_api.schemas import Role
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api
from tests.integration.events_support import make_world, serial_of
from tests.integration.test_chain_writer import drain, make_app


def _events(rt) -> list[CustodyEvent]:
    with Session(rt.engine) as session:
        return list(session.exec(select(CustodyEvent).order_by(CustodyEvent.id)).all())


@pytest.mark.parametrize(
    "where",
    [
        "embedded+sqlite",
        pytest.param("anvil+postgres", marks=[pytest.mark.postgres, pytest.mark.anvil]),
    ],
)
def test_every_anchored_event_verifies_on_chain_and_reads_confirmed(tmp_path, request, where):
    settings = {"ANCHOR_BATCH_MAX": 3, "ANCHOR_MAX_AGE_SECONDS": 0}
    if where == "embedded+sqlite":
        app, rt = make_app(tmp_path, **settings)
    else:
        # Automining anvil makes no block without a transaction: confirm at depth 0.
        chain_url = request.getfixturevalue("anvil_url")
        database_url = request.getfixturevalue("postgres_url")
        app, rt = make_app(tmp_path, chain_url, database_url, CONFIRMATIONS=0, **settings)
    api = Api(app, lambda: SqlUnitOfWork(rt.engine))
    world = make_world(api, items=4)
    posted = [world.event(n) for n in (1, 2, 3, 4, 1, 2, 1)]
    answer = world.post(posted)
    assert [r["status"] for r in answer.get_json()["results"]] == ["accepted"] * 7

    pending = api.call("GET", f"/v1/events/{posted[0]['event_id']}", world.carrier).get_json()
    assert (pending["anchoring"], pending["proof"], pending["root"]) == ("pending", None, None)

    closed = rt.new_anchorer().tick()
    stored = _events(rt)
    assert closed == -(-len(stored) // 3)  # full batches of 3, the rest in one
    owed = api.call("GET", f"/v1/events/{posted[0]['event_id']}", world.carrier).get_json()
    assert owed["anchoring"] == "owed" and owed["transaction"] is None

    writer = rt.new_writer()
    drain(writer, rt)
    writer.release()
    with Session(rt.engine) as session:
        ledger_address = known_addresses(session, rt.w3.eth.chain_id)["CustodyLedger"]
        batches = {row.id: row for row in session.exec(select(AnchorBatch)).all()}
        writes = {
            row.idempotency_key: row
            for row in session.exec(select(ChainWrite).where(ChainWrite.function == "anchor"))
        }
    ledger = chain.contract(rt.w3, "CustodyLedger", ledger_address)

    assert len(batches) == closed and sum(b.count for b in batches.values()) == len(stored)
    placed = collections.Counter(event.batch_id for event in stored)
    assert {key: placed[key] for key in batches} == {k: b.count for k, b in batches.items()}
    for event in stored:
        batch = batches[event.batch_id]
        assert writes[batch.idempotency_key].status == "confirmed"
        proof = [bytes.fromhex(node[2:]) for node in event.proof]
        assert ledger.functions.verifyEvent(batch.root, event.digest, event.salt, proof).call()
        assert ledger.functions.batchRoot(batch.batch_id).call() == batch.root
        shown = api.call("GET", f"/v1/events/{event.event_id}", world.supplier).get_json()
        assert shown["anchoring"] == "confirmed", shown
        assert (shown["root"], shown["batch_id"], shown["leaf_index"]) == (
            "0x" + batch.root.hex(),
            "0x" + batch.batch_id.hex(),
            event.leaf_index,
        )
        write = writes[batch.idempotency_key]
        assert (shown["transaction"], shown["block_number"]) == (
            write.mined_tx_hash,
            write.block_number,
        )
        assert shown["confirmations"] >= 1
        # What the route shows is enough to verify: nothing more is needed from the database.
        shown_proof = [bytes.fromhex(node[2:]) for node in shown["proof"]]
        assert ledger.functions.verifyEvent(
            bytes.fromhex(shown["root"][2:]),
            bytes.fromhex(shown["digest"][2:]),
            bytes.fromhex(shown["salt"][2:]),
            shown_proof,
        ).call()

    timeline = api.call("GET", f"/v1/items/{GTIN}/{serial_of(1)}/history", world.carrier)
    assert timeline.status_code == 200, timeline.get_json()
    events = timeline.get_json()["events"]
    mine = {posted[i]["event_id"] for i in (0, 4, 6)}
    assert mine <= {e["event_id"] for e in events}
    assert all(e["anchoring"] == "confirmed" for e in events)
    assert [e["event_time"] for e in events] == sorted(e["event_time"] for e in events)

    # A party that never touched the item learns nothing, not even that it exists.
    stranger = api.key(Role.CARRIER)
    for url in (f"/v1/items/{GTIN}/{serial_of(1)}/history", f"/v1/events/{posted[0]['event_id']}"):
        assert api.call("GET", url, stranger).status_code == 404
    assert api.call("GET", "/v1/events/not-a-uuid", world.carrier).status_code == 422
    rt.close()
