"""/v1/events: device-signed custody events, each checked, accepted ones stored once."""

from __future__ import annotations

import json
import multiprocessing
import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from eth_account import Account

from provenance_api import db
from provenance_api.app import create_app
from provenance_api.schemas import Role
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api, make_api
from tests.integration.events_support import Reader, World, make_world, sign, uid_of


@pytest.fixture(params=["sqlite", "fake", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path):
    """Events over the SQL adapter (SQLite, PostgreSQL) and over the in-memory fake."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    api = make_api(request.param, tmp_path, url)
    yield make_world(api)
    api.app.extensions["provenance"].close()


def stored(world: World, *event_ids: str) -> dict[str, SimpleNamespace]:
    """The stored events with these ids, by id (their values, read inside the unit of work)."""
    with world.api.uow() as uow:
        rows = uow.events.by_event_ids(set(event_ids))
        return {row.event_id: SimpleNamespace(**row.model_dump()) for row in rows}


def results(answer) -> list[tuple[str, list[str]]]:
    assert answer.status_code == 200, answer.get_json()
    return [(r["status"], r["codes"]) for r in answer.get_json()["results"]]


def resigned(world: World, body: dict, reader: Reader | None = None) -> dict:
    body = dict(body)
    body["signature"] = "0x" + sign((reader or world.reader).key, body).hex()
    return body


def test_a_batch_of_signed_events_is_accepted_stored_and_the_device_seen(world):
    shipping = world.event(1, biz_step="shipping", disposition="in_transit")
    receiving = world.event(2)
    answer = world.post([shipping, receiving])
    assert results(answer) == [("accepted", []), ("accepted", [])]
    body = answer.get_json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 0)
    first = body["results"][0]
    assert first["index"] == 0 and first["event_id"] == shipping["event_id"]
    assert first["tag_verdict"] == "authentic" and first["received_at"].endswith("Z")
    # A receiving that no shipping named is accepted and flagged by the custody rules.
    assert body["results"][1]["flags"] == ["unmatched_receiving"]

    rows = stored(world, shipping["event_id"], receiving["event_id"])
    row = rows[shipping["event_id"]]
    assert (row.gtin, row.serial, row.biz_step, row.device) == (
        GTIN,
        "S1",
        "shipping",
        world.reader.address,
    )
    assert row.signature.hex() == shipping["signature"][2:]
    assert row.tag_url == shipping["tag"]["url"] and row.tag_verdict == "authentic"
    assert row.time_zone_offset == 60
    assert row.event_time == int(datetime.fromisoformat(shipping["event_time"]).timestamp())
    assert len(row.salt) == 32 and row.salt != rows[receiving["event_id"]].salt
    assert (row.batch_id, row.leaf_index, row.proof) == (None, None, None)
    devices = world.api.call("GET", "/v1/devices", world.carrier).get_json()["items"]
    assert devices[0]["last_seen_at"] is not None


def test_a_handoff_is_not_flagged(world):
    supplier_reader = world.reader_for(world.supplier)
    carrier = world.api.call("GET", "/v1/me", world.carrier).get_json()["organization"]
    ship = world.event(
        1,
        supplier_reader,
        biz_step="shipping",
        disposition="in_transit",
        to_party=carrier["address"],
    )
    assert results(world.post([ship], world.supplier)) == [("accepted", [])]
    answer = world.post([world.event(1)])
    assert results(answer) == [("accepted", [])]
    assert answer.get_json()["results"][0]["flags"] == []


def test_unknown_another_organizations_and_revoked_devices_are_rejected(world):
    stranger = Account.create()
    unregistered = world.event(1, Reader(bytes(stranger.key), stranger.address))
    rivals = world.reader_for(world.api.key(Role.WAREHOUSE))
    revoked = world.reader_for(world.carrier)
    gone = world.api.call("DELETE", f"/v1/devices/{revoked.address}", world.carrier)
    assert gone.status_code == 200
    answer = world.post([unregistered, world.event(2, rivals), world.event(3, revoked)])
    assert results(answer) == [
        ("rejected", ["unknown_device"]),
        ("rejected", ["unknown_device"]),  # whose device it is, is not disclosed
        ("rejected", ["revoked_device"]),
    ]
    assert "revoked at" in answer.get_json()["results"][2]["reasons"][0]
    assert stored(world, unregistered["event_id"]) == {}


def test_a_signature_changed_by_one_byte_or_made_by_another_key_is_rejected(world):
    flipped = world.event(1)
    signature = bytearray(bytes.fromhex(flipped["signature"][2:]))
    signature[10] ^= 0x01
    flipped["signature"] = "0x" + signature.hex()
    other_key = resigned(world, world.event(2), Reader(bytes(Account.create().key), ""))
    edited = world.event(3)
    edited["read_point"] = "urn:epc:id:sgln:9506000.13435.1"  # changed after signing
    answer = world.post([flipped, other_key, edited])
    assert results(answer) == [("rejected", ["bad_signature"])] * 3
    # None of the three taps was spent: the same taps, signed properly, are accepted.
    again = [resigned(world, {**e, "event_id": str(uuid.uuid4())}) for e in (flipped, edited)]
    assert results(world.post(again)) == [("accepted", [])] * 2


def test_an_unknown_item_is_rejected(world):
    event = world.event(1, serial="NOPE")
    answer = world.post([resigned(world, event)])
    assert results(answer) == [("rejected", ["unknown_item"])]


def test_a_tag_naming_another_item_is_rejected(world):
    # Item 2's genuine tap, posted as an event about item 1.
    event = world.event(1)
    event["tag"] = {"url": world.tap(2)}
    answer = world.post([resigned(world, event)])
    status, codes = results(answer)[0]
    assert status == "rejected" and "tag_item_mismatch" in codes
    assert "tag_uid_mismatch" in codes


def test_a_bad_sun_cmac_is_rejected_and_burns_no_counter(world):
    event = world.event(1)
    url = event["tag"]["url"]
    last = url[-1]
    event["tag"] = {"url": url[:-1] + ("0" if last != "0" else "1")}
    answer = world.post([resigned(world, event)])
    assert results(answer) == [("rejected", ["bad_cmac"])]
    assert answer.get_json()["results"][0]["tag_verdict"] == "counterfeit"
    # The genuine tap at the same counter is still good.
    genuine = resigned(world, {**event, "event_id": str(uuid.uuid4()), "tag": {"url": url}})
    assert results(world.post([genuine])) == [("accepted", [])]


def test_a_replayed_sun_counter_is_rejected_in_a_later_batch_and_in_the_same_one(world):
    first = world.event(1)
    assert results(world.post([first])) == [("accepted", [])]
    replay = resigned(world, {**first, "event_id": str(uuid.uuid4())})
    answer = world.post([replay])
    assert results(answer) == [("rejected", ["replayed_counter"])]
    assert "replayed or cloned" in answer.get_json()["results"][0]["reasons"][0]
    older = world.event(1, tag={"url": world.tap(1, counter=1)})
    assert results(world.post([older])) == [("rejected", ["replayed_counter"])]
    # Two events over one tap in one batch: the first is accepted, the second is a replay.
    tap = world.tap(2)
    pair = [world.event(2, tag={"url": tap}), world.event(2, tag={"url": tap})]
    assert results(world.post(pair)) == [("accepted", []), ("rejected", ["replayed_counter"])]


def test_taps_of_one_tag_in_one_batch_are_judged_in_order_against_the_stored_counter(world):
    assert results(world.post([world.event(1, tag={"url": world.tap(1, counter=5)})]))[0][0] == (
        "accepted"
    )
    taps = [world.tap(1, counter=c) for c in (3, 7, 6, 9)]
    batch = [world.event(1, tag={"url": tap}) for tap in taps]
    assert [status for status, _ in results(world.post(batch))] == [
        "rejected",  # 3 is below the stored 5
        "accepted",
        "rejected",  # 6 is below the 7 accepted just before it
        "accepted",
    ]
    with world.api.uow() as uow:
        assert uow.counters.last(uid_of(1), 1) == 9


def test_a_time_beyond_the_skew_is_rejected_and_burns_no_counter(world):
    skew = world.api.app.config["EVENT_MAX_SKEW_SECONDS"]
    assert skew == 300
    now = datetime.now(UTC).replace(microsecond=0)
    soon = (now + timedelta(seconds=skew - 60)).isoformat()
    late = (now + timedelta(seconds=skew + 120)).isoformat()
    within, beyond = world.event(1, event_time=soon), world.event(2, event_time=late)
    answer = world.post([within, beyond])
    assert results(answer) == [("accepted", []), ("rejected", ["future_time"])]
    assert "ahead of the server's clock" in answer.get_json()["results"][1]["reasons"][0]
    fixed = resigned(world, {**beyond, "event_id": str(uuid.uuid4()), "event_time": soon})
    assert results(world.post([fixed])) == [("accepted", [])]


def test_an_identical_resend_is_a_duplicate_that_stores_nothing(world):
    event = world.event(1)
    first = world.post([event]).get_json()["results"][0]
    again = world.post([event, event])
    assert results(again) == [("duplicate", []), ("duplicate", [])]
    body = again.get_json()
    assert body["results"][0]["received_at"] == first["received_at"]
    assert (body["accepted"], body["duplicates"]) == (0, 2)
    item_id = stored(world, event["event_id"])[event["event_id"]].item_id
    with world.api.uow() as uow:
        steps = [e.biz_step for e in uow.events.for_items({item_id})]
        assert steps == ["commissioning", event["biz_step"]]


def test_the_same_id_with_other_content_is_a_conflict(world):
    event = world.event(1)
    assert results(world.post([event])) == [("accepted", [])]
    changed = world.event(2, event_id=event["event_id"])
    inside = world.event(3)
    twin = world.event(4, event_id=inside["event_id"])
    answer = world.post([changed, inside, twin])
    assert results(answer) == [
        ("rejected", ["conflict"]),
        ("accepted", []),
        ("rejected", ["conflict"]),
    ]
    assert stored(world, event["event_id"])[event["event_id"]].serial == "S1"


def test_a_batch_over_one_thousand_events_is_422_and_stores_nothing(world):
    event = world.event(1)
    batch = [{**event, "event_id": str(uuid.uuid4())} for _ in range(1001)]
    answer = world.post(batch)
    assert answer.status_code == 422
    assert "events" in answer.get_json()["fields"]
    assert stored(world, event["event_id"], *(e["event_id"] for e in batch)) == {}


def test_a_body_over_the_size_limit_is_413(world):
    world.api.app.config["MAX_CONTENT_LENGTH"] = 10_000
    answer = world.post([world.event(n % 5 + 1) for n in range(30)])
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": "not-a-uuid"}, "events.0.event_id"),
        ({"gtin": "9506000134352"}, "events.0.gtin"),  # GTIN-13: the device signs GTIN-14
        ({"gtin": "09506000134353"}, "events.0.gtin"),  # wrong check digit
        ({"biz_step": "teleporting"}, "events.0.biz_step"),
        ({"disposition": "lost_in_space"}, "events.0.disposition"),
        ({"event_time": "2026-12-01T10:00:00"}, "events.0.event_time"),  # no offset
        ({"event_time": "2026-12-01T10:00:00.5+01:00"}, "events.0.event_time"),
        ({"event_time": "2026-12-01T10:00:00+15:00"}, "events.0.event_time"),
        ({"event_time": "1969-12-31T23:59:59+00:00"}, "events.0.event_time"),
        ({"device": "0x1234"}, "events.0.device"),
        ({"signature": "0x00"}, "events.0.signature"),
        ({"read_point": "dock\u0000door"}, "events.0.read_point"),
        ({"tag": {"url": "x", "uid": "04112233445566"}}, "events.0.tag.originality_signature"),
        ({"colour": "red"}, "events.0.colour"),
    ],
)
def test_a_malformed_event_makes_the_body_422_naming_the_field(world, change, field):
    event = {**world.event(1), **change}
    answer = world.post([event])
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"{}", b'{"events": []}', b'{"events": {}}', b"{not json", b"null"]
)
def test_a_malformed_body_is_422(world, body):
    answer = world.api.call(
        "POST", "/v1/events", world.carrier, data=body, content_type="application/json"
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"] == "invalid_input"


def test_only_parties_post_events(world):
    assert world.api.call("POST", "/v1/events", json={"events": []}).status_code == 401
    operator = world.api.key(Role.OPERATOR)
    event = world.event(1)
    assert world.post([event], operator).status_code == 403


# --- the same SUN counter from two requests at once ---------------------------------------

ROUNDS = 12


def _settings(url: str, tmp_path, secret: str) -> dict:
    return {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": url,
        "KEY_ENCRYPTION_KEY": secret,
    }


def _race_world(url: str, tmp_path) -> tuple[World, dict, list[list[str]]]:
    """A world on `url`, and for each round two events (two readers) over the same tap."""
    from provenance_api.config import new_secrets

    settings = _settings(url, tmp_path, new_secrets()["KEY_ENCRYPTION_KEY"])
    app = create_app(settings)
    db.upgrade(url)
    engine = app.extensions["provenance"].engine
    world = make_world(Api(app, lambda: SqlUnitOfWork(engine)), items=1)
    other = world.reader_for(world.carrier)
    bodies: list[list[str]] = [[], []]
    for _ in range(ROUNDS):
        tap = world.tap(1)
        for side, reader in enumerate((world.reader, other)):
            event = world.event(1, reader, tag={"url": tap})
            bodies[side].append(json.dumps({"events": [event]}))
    return world, settings, bodies


def _poster(settings: dict, key: str, bodies: list[str], barrier, results) -> None:
    """One process (or thread): each round, wait for the other, then post that round's event."""
    app = create_app(settings)
    client = app.test_client()
    won = []
    for round_, body in enumerate(bodies):
        barrier.wait(timeout=60)
        answer = client.post(
            "/v1/events",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        status = answer.get_json()["results"][0]["status"]
        assert status in ("accepted", "rejected"), answer.get_json()
        if status == "accepted":
            won.append(round_)
    app.extensions["provenance"].close()
    results.put(won)


def _check_one_winner_per_round(world: World, won: list[list[int]]) -> None:
    assert sorted(won[0] + won[1]) == list(range(ROUNDS))
    assert not set(won[0]) & set(won[1])
    with world.api.uow() as uow:
        assert uow.counters.last(uid_of(1), 1) == ROUNDS
        item = uow.items.get(GTIN, "S1")
        # Its commissioning event, then one per round.
        assert len(uow.events.for_items({item.id})) == 1 + ROUNDS


def test_two_threads_posting_the_same_sun_counter_at_once_exactly_one_is_accepted(tmp_path):
    import queue

    world, settings, bodies = _race_world(f"sqlite:///{tmp_path / 'race.sqlite3'}", tmp_path)
    barrier, answers = threading.Barrier(2), queue.Queue()
    threads = [
        threading.Thread(
            target=_poster, args=(settings, world.carrier, bodies[side], barrier, answers)
        )
        for side in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _check_one_winner_per_round(world, [answers.get(timeout=5), answers.get(timeout=5)])


@pytest.mark.postgres
def test_two_processes_posting_the_same_sun_counter_at_once_exactly_one_is_accepted(
    tmp_path, postgres_url
):
    world, settings, bodies = _race_world(postgres_url, tmp_path)
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(2), context.Queue()
    processes = [
        context.Process(
            target=_poster, args=(settings, world.carrier, bodies[side], barrier, answers)
        )
        for side in (0, 1)
    ]
    for process in processes:
        process.start()
    won = [answers.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    _check_one_winner_per_round(world, won)
    world.api.app.extensions["provenance"].close()
