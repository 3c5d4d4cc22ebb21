"""The whole flow as users drive it, through the HTTP API with real signatures and a real chain.

A supplier registers 1,000 items and a dock reader, a carrier its reader; three handoffs are
recorded; the supplier transfers one item's passport to a retailer (the lazy mint); the
anchorer and the chain writer run to completion; then every custody event of every item, as
its history shows it, is checked on-chain with `CustodyLedger.verifyEvent`. Once on SQLite
with the embedded chain, once on PostgreSQL with anvil.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel import Session, func, select

from contracts_abi import eip712
from contracts_abi.merkle import custody_leaf
from contracts_abi.passport import passport_id, tag_commitment
from provenance_api import chain
from provenance_api.models import CustodyEvent
from provenance_api.schemas import Role
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api
from tests.integration.events_support import MASTER, Reader, World, serial_of, uid_of
from tests.integration.test_chain_writer import drain, make_app

ITEMS = 1000
# One Merkle batch per anchorer tick here; the cap only matters once registration owes an
# event per item (a few batches, not one anchor per handful of events).
ANCHOR_BATCH_MAX = 400


def tag_kind(n: int) -> dict[str, str]:
    """Item n's tag: half NTAG 424 DNA (items 1 and 2 among them), the rest QR and NTAG 21x."""
    kind = ("ntag424", "ntag424", "ntag424", "ntag424", "ntag424", "qr", "qr", "qr")
    kind += ("ntag21x", "ntag21x")
    chosen = kind[(n - 1) % len(kind)]
    return {"tag": chosen} if chosen == "qr" else {"tag": chosen, "uid": uid_of(n).hex()}


def at(seconds: int, hours: int) -> str:
    """An event time as a device in UTC+`hours` writes it."""
    zone = timezone(timedelta(hours=hours))
    return datetime.fromtimestamp(seconds, zone).isoformat()


def posted(world: World, key: str, event: dict[str, Any]) -> dict[str, Any]:
    """Post one event with `key`; it must be accepted and fit the custody story (no flags)."""
    answer = world.post([event], key)
    assert answer.status_code == 200, answer.get_json()
    (result,) = answer.get_json()["results"]
    assert (result["status"], result["flags"]) == ("accepted", []), result
    return event


def settle(rt) -> None:
    """What the worker does: close every due batch, then write until nothing is owed."""
    rt.new_anchorer().tick()
    writer = rt.new_writer()
    try:
        drain(writer, rt)
    finally:
        writer.release()


def digest_of(shown: dict[str, Any]) -> bytes:
    """The EIP-712 digest recomputed from the fields the history shows, tag evidence included."""
    moment = datetime.fromisoformat(shown["event_time"])
    evidence = eip712.tag_evidence_digest(
        shown["tag_url"],
        bytes.fromhex(shown["tag_uid"][2:]),
        bytes.fromhex(shown["tag_originality_signature"][2:]),
    )
    assert "0x" + evidence.hex() == shown["tag_evidence"]
    event = eip712.CustodyEvent(
        event_id=uuid.UUID(shown["event_id"]),
        gtin=shown["gtin"],
        serial=shown["serial"],
        biz_step=shown["biz_step"],
        disposition=shown["disposition"],
        read_point=shown["read_point"],
        from_party=shown["from_party"],
        to_party=shown["to_party"],
        event_time=int(moment.timestamp()),
        time_zone_offset=shown["time_zone_offset"],
        tag_evidence=evidence,
        device=shown["device"],
    )
    return eip712.custody_event_digest(event)


def paged(api: Api, key: str, url: str, **query: str) -> Iterator[dict[str, Any]]:
    """Every row of a paged list route, following `next` as `after`."""
    after = None
    while True:
        page = api.call("GET", url, key, query_string={**query, "limit": 200, "after": after})
        assert page.status_code == 200, page.get_json()
        yield from page.get_json()["items"]
        after = page.get_json()["next"]
        if after is None:
            return


def every_history(api: Api, key: str) -> Iterator[dict[str, Any]]:
    """The history of each item of each of the caller's products."""
    for product in paged(api, key, "/v1/products"):
        for item in paged(api, key, "/v1/items", gtin=product["gtin"]):
            timeline = api.call("GET", f"/v1/items/{item['gtin']}/{item['serial']}/history", key)
            assert timeline.status_code == 200, timeline.get_json()
            yield timeline.get_json()


@pytest.mark.slow
@pytest.mark.parametrize(
    "where",
    [
        "sqlite+embedded",
        pytest.param("postgres+anvil", marks=[pytest.mark.postgres, pytest.mark.anvil]),
    ],
)
def test_items_handoffs_and_a_transfer_all_prove_on_chain(tmp_path, request, where):
    if where == "sqlite+embedded":
        app, rt = make_app(tmp_path, ANCHOR_BATCH_MAX=ANCHOR_BATCH_MAX, ANCHOR_MAX_AGE_SECONDS=0)
    else:
        # Automining anvil makes no block without a transaction: confirm at depth 0.
        app, rt = make_app(
            tmp_path,
            request.getfixturevalue("anvil_url"),
            request.getfixturevalue("postgres_url"),
            CONFIRMATIONS=0,
            ANCHOR_BATCH_MAX=ANCHOR_BATCH_MAX,
            ANCHOR_MAX_AGE_SECONDS=0,
        )
    try:
        run_flow(Api(app, lambda: SqlUnitOfWork(rt.engine)), rt)
    finally:
        rt.close()


def run_flow(api: Api, rt) -> None:
    """The flow itself, on whichever database and chain `rt` runs."""
    supplier = api.key(Role.SUPPLIER, "Maker")
    carrier = api.key(Role.CARRIER, "Haul")
    retailer = api.key(Role.RETAILER, "Shop")
    maker, haul, shop = (
        api.call("GET", "/v1/me", key).get_json()["organization"]
        for key in (supplier, carrier, retailer)
    )

    # 1. The supplier's product, SUN key and 1,000 items in one request.
    product = {"gtin": GTIN, "name": "Tea"}
    assert api.call("POST", "/v1/products", supplier, json=product).status_code == 201
    sun = api.call("POST", "/v1/sun-keys", supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    rows = [{"gtin": GTIN, "serial": serial_of(n), **tag_kind(n)} for n in range(1, ITEMS + 1)]
    registered = api.call("POST", "/v1/items", supplier, json={"items": rows})
    assert registered.status_code == 200, registered.get_json()
    body = registered.get_json()
    assert (body["created"], body["refused_count"]) == (ITEMS, 0), body["refused"][:3]

    # 2. Two readers: the supplier's dock and the carrier's truck.
    world = World(api, supplier, carrier, Reader(b"", ""), ITEMS)
    dock, truck = world.reader_for(supplier), world.reader_for(carrier)
    parties = {supplier: (maker["address"], dock), carrier: (haul["address"], truck)}
    # Event times go forward a second at a time from the registration on, a few seconds
    # ahead of the clock at most (the API allows minutes of skew).
    clock = iter(range(int(time.time()) + 1, 2**63))

    def handoff(n: int, giver: str, taker: str) -> list[dict[str, Any]]:
        giver_address, giver_reader = parties[giver]
        taker_address, taker_reader = parties[taker]
        common = {"from_party": giver_address, "to_party": taker_address}
        ship = world.event(
            n,
            giver_reader,
            biz_step="shipping",
            disposition="in_transit",
            event_time=at(next(clock), 1),
            **common,
        )
        receive = world.event(
            n,
            taker_reader,
            biz_step="receiving",
            disposition="in_progress",
            read_point="urn:epc:id:sgln:4006381.00001.0",
            event_time=at(next(clock), -5),
            **common,
        )
        return [posted(world, giver, ship), posted(world, taker, receive)]

    # 3. Three handoffs, the anchorer and the writer running between them as the worker does:
    # item 1 to the carrier; item 2 to the carrier and back to the supplier's dock.
    mine = handoff(1, supplier, carrier)
    settle(rt)
    mine += handoff(2, supplier, carrier)
    mine += handoff(2, carrier, supplier)
    ids = {event["event_id"] for event in mine}

    def steps(key: str, n: int) -> list[tuple[str, str]]:
        url = f"/v1/items/{GTIN}/{serial_of(n)}/history"
        events = api.call("GET", url, key).get_json()["events"]
        return [(e["biz_step"], e["party"]) for e in events if e["event_id"] in ids]

    assert steps(carrier, 1) == [("shipping", maker["address"]), ("receiving", haul["address"])]
    assert steps(supplier, 2) == [
        ("shipping", maker["address"]),
        ("receiving", haul["address"]),
        ("shipping", haul["address"]),
        ("receiving", maker["address"]),
    ]

    # 4. The supplier transfers item 1's passport to the retailer: the first transfer mints it.
    moved = api.call(
        "POST",
        "/v1/transfers",
        supplier,
        json={"gtin": GTIN, "serial": serial_of(1), "to_organization_id": shop["id"]},
    )
    assert moved.status_code == 201, moved.get_json()
    assert (moved.get_json()["mints"], moved.get_json()["chain"]) == (True, "owed")
    settle(rt)

    with Session(rt.engine) as session:
        addresses = known_addresses(session, rt.w3.eth.chain_id)
        stored = session.exec(select(func.count()).select_from(CustodyEvent)).one()
    ledger = chain.contract(rt.w3, "CustodyLedger", addresses["CustodyLedger"])
    passport = chain.contract(rt.w3, "ProductPassport", addresses["ProductPassport"])
    token_id = passport_id(GTIN, serial_of(1))
    assert passport.functions.ownerOf(token_id).call() == shop["address"]
    tag = tag_commitment("ntag424", uid_of(1))
    assert passport.functions.tagCommitmentOf(token_id).call() == tag
    seen = api.call("GET", f"/v1/items/{GTIN}/{serial_of(1)}/passport", retailer).get_json()
    assert (seen["owner_organization_id"], seen["minted"]) == (shop["id"], True)
    # The new owner reads the item's history as its supplier does.
    url = f"/v1/items/{GTIN}/{serial_of(1)}/history"
    assert api.call("GET", url, retailer).get_json() == api.call("GET", url, supplier).get_json()
    assert ledger.functions.deviceOrganization(dock.address).call() == maker["address"]
    assert ledger.functions.deviceOrganization(truck.address).call() == haul["address"]

    # 5. Every event of every item, from what its history shows alone, verifies on-chain.
    checked: list[dict[str, Any]] = []
    anchored: dict[str, tuple[str, int]] = {}  # root -> the transaction and block anchoring it
    timelines = list(every_history(api, supplier))
    assert len(timelines) == ITEMS
    for timeline in timelines:
        for shown in timeline["events"]:
            assert shown["anchoring"] == "confirmed", shown
            assert shown["transaction"] and shown["block_number"] is not None, shown
            digest = digest_of(shown)
            assert "0x" + digest.hex() == shown["digest"]
            signer = eip712.recover_digest_signer(digest, bytes.fromhex(shown["signature"][2:]))
            assert signer == shown["device"]
            salt = bytes.fromhex(shown["salt"][2:])
            assert "0x" + custody_leaf(digest, salt).hex() == shown["leaf"]
            root = bytes.fromhex(shown["root"][2:])
            proof = [bytes.fromhex(node[2:]) for node in shown["proof"]]
            assert ledger.functions.verifyEvent(root, digest, salt, proof).call(), shown
            where = (shown["transaction"], shown["block_number"])
            assert anchored.setdefault(shown["root"], where) == where
            checked.append(shown)
    assert ids <= {shown["event_id"] for shown in checked}
    assert len(checked) == len({shown["event_id"] for shown in checked}) == stored

    # Each root was anchored by the transaction the history names, in the block it names.
    assert len(anchored) >= 2  # the handoffs were anchored in two ticks
    for root, (transaction, block) in anchored.items():
        receipt = rt.w3.eth.get_transaction_receipt(transaction)
        assert (receipt["status"], receipt["blockNumber"]) == (1, block)
        (log,) = ledger.events.RootAnchored().process_receipt(receipt)
        assert "0x" + bytes(log["args"]["root"]).hex() == root
        assert ledger.functions.anchoredAt(bytes.fromhex(root[2:])).call() > 0

    # A tampered salt or proof node does not verify.
    shown = next(shown for shown in checked if shown["proof"])
    root, digest = bytes.fromhex(shown["root"][2:]), bytes.fromhex(shown["digest"][2:])
    salt = bytes.fromhex(shown["salt"][2:])
    proof = [bytes.fromhex(node[2:]) for node in shown["proof"]]
    assert ledger.functions.verifyEvent(root, digest, salt, proof).call()
    flipped = bytes([salt[0] ^ 1]) + salt[1:]
    assert not ledger.functions.verifyEvent(root, digest, flipped, proof).call()
    bent = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert not ledger.functions.verifyEvent(root, digest, salt, bent).call()
