"""GET /v1/verify latency on PostgreSQL with many items and events stored.

Run: python bench/verify.py [--items N] [--events N] [--requests N] [--quick] [--postgres URL]
Prints `verify_p50_ms` and `verify_p99_ms` (target p99 <= 50), in-process through Flask's
test client, one thread, and `epcis_export_events_per_s`: the supplier pages through
GET /v1/epcis/events (1,000 a page, following nextPageToken) over the same store, each
event rebuilt as EPCIS JSON-LD with its hash ID and proof. On a scratch database (made and
dropped; default server postgresql+psycopg://postgres@127.0.0.1:5432/postgres). Exits 1 when
no server answers.

One supplier registers the items through POST /v1/items (a third each QR, NTAG 21x and
NTAG 424 DNA), which also stores their commissioning events. The other events are
inserted directly with COPY (rows shaped like models.CustodyEvent, recorded by the supplier,
spread evenly over the items): signing and posting ~900,000 events through the API would
take many minutes, and verification only reads them. Their signatures do not
verify; digests and salts have the right length. Each request checks a distinct item chosen
at random: a supplier-signed QR label, an NTAG 21x URL signed over its chip, or a fresh SUN
tap; URLs are built before the clock starts and every answer must be 200 and `authentic`,
with the item's whole history (at least events/items steps).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch_postgres import scratch_database  # noqa: E402

from firmware_tools.formats.qr import sign_label_url  # noqa: E402
from provenance_api import db  # noqa: E402
from provenance_api.app import create_app  # noqa: E402
from provenance_api.schemas import Role  # noqa: E402
from provenance_api.unit_of_work import SqlUnitOfWork  # noqa: E402
from tests.fakes.sun_tags import sun_url  # noqa: E402
from tests.integration.api_support import GTIN, Api  # noqa: E402
from tests.integration.events_support import MASTER, serial_of, uid_of  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOST = "id.example.com"
KINDS = ("qr", "ntag21x", "ntag424")  # item n has kind KINDS[n % 3]
BATCH = 10_000  # ITEMS_PER_BATCH_MAX
TARGET_P99_MS = 50
ZERO = "0x" + "00" * 20
COLUMNS = (
    "event_id, item_id, organization_id, party, gtin, serial, biz_step, disposition,"
    " read_point, from_party, to_party, event_time, time_zone_offset, tag_url, tag_uid,"
    " tag_originality_signature, tag_evidence, device, signature, digest, salt, tag_verdict,"
    " tag_codes, flags, received_at"
)


def register(api: Api, supplier: str, items: int) -> None:
    """The supplier's `items` items, in batches of 10,000 through the API."""
    for start in range(1, items + 1, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, items + 1)):
            row = {"gtin": GTIN, "serial": serial_of(n), "tag": KINDS[n % 3]}
            if row["tag"] != "qr":
                row["uid"] = uid_of(n).hex()
            rows.append(row)
        answer = api.call("POST", "/v1/items", supplier, json={"items": rows})
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["created"] == len(rows), answer.get_json()


def insert_events(engine: sa.Engine, organization_id: int, party: str, count: int) -> None:
    """`count` supplier-recorded inspecting events spread over every item, by COPY."""
    now = int(time.time())  # after every commissioning event: custody stays the supplier's
    received = datetime.now(UTC)
    connection = engine.raw_connection()
    try:
        cursor = connection.driver_connection.cursor()
        cursor.execute("SELECT id, gtin, serial FROM item ORDER BY id")
        items = cursor.fetchall()
        with cursor.copy(f"COPY custody_event ({COLUMNS}) FROM STDIN") as copy:
            for k in range(count):
                item_id, gtin, serial = items[k % len(items)]
                copy.write_row(
                    (
                        str(uuid.uuid4()),
                        item_id,
                        organization_id,
                        party,
                        gtin,
                        serial,
                        "inspecting",
                        "active",
                        "urn:epc:id:sgln:9506000.13435.0",
                        ZERO,
                        ZERO,
                        now - (count - k) % 3600,
                        60,
                        f"https://{HOST}/01/{gtin}/21/{serial}",
                        b"",
                        b"",
                        os.urandom(32),
                        party,
                        os.urandom(65),
                        os.urandom(32),
                        os.urandom(32),
                        "authentic",
                        "[]",
                        "[]",
                        received,
                    )
                )
        cursor.execute("ANALYZE")
        connection.commit()
    finally:
        connection.close()


def urls(private: bytes, items: int, requests: int) -> list[str]:
    """`requests` URLs of distinct random items, a third of each tag kind, shuffled."""
    by_kind = {
        kind: random.sample(range(k or 3, items + 1, 3), requests // 3 + (k < requests % 3))
        for k, kind in enumerate(KINDS)
    }
    made = []
    for n in by_kind["qr"]:
        made.append(sign_label_url(private, HOST, GTIN, serial_of(n)))
    for n in by_kind["ntag21x"]:
        made.append(sign_label_url(private, HOST, GTIN, serial_of(n), uid=uid_of(n)))
    for n in by_kind["ntag424"]:
        made.append(sun_url(MASTER, uid_of(n), 1, gtin=GTIN, serial=serial_of(n), host=HOST))
    random.shuffle(made)
    return made


def export_rate(app: Flask, key: str, limit: int) -> tuple[int, float]:
    """Events exported and events per second, paging GET /v1/epcis/events from the start."""
    engine = app.extensions["provenance"].engine
    api = Api(app, lambda: SqlUnitOfWork(engine))
    url, exported = "/v1/epcis/events?perPage=1000", 0
    start = time.perf_counter()
    while url and exported < limit:
        response = api.call("GET", url, key)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        body = json.loads(response.get_data())
        exported += len(body["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
        link = response.headers.get("Link", "")
        url = link[link.index("/v1/") : link.index(">")] if link else ""
    return exported, exported / (time.perf_counter() - start)


def load(app: Flask, items: int, events: int) -> tuple[bytes, str]:
    """Migrate the app's database and store the items and events.

    Returns the supplier's label key and its API key.
    """
    database_url = app.config["DATABASE_URL"]
    db.upgrade(database_url)
    engine = app.extensions["provenance"].engine
    api = Api(app, lambda: SqlUnitOfWork(engine))
    supplier = api.key(Role.SUPPLIER, "Acme Tea")
    created = api.call("POST", "/v1/products", supplier, json={"gtin": GTIN, "name": "Tea"})
    assert created.status_code == 201, created.get_json()
    sun = api.call("POST", "/v1/sun-keys", supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    start = time.perf_counter()
    register(api, supplier, items)
    print(f"# registered {items} items in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    address = api.call("GET", "/v1/me", supplier).get_json()["organization"]["address"]
    with api.uow() as uow:
        org = uow.organizations.by_address(address)
        organization_id, sealed = org.id, org.encrypted_key
    private = app.extensions["provenance"].keybox.open(sealed, address)
    start = time.perf_counter()
    insert_events(engine, organization_id, address, max(events - items, 0))
    print(
        f"# inserted {events - items} events in {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
    )
    return private, supplier


def measure(
    database_url: str, data_dir: Path, items: int, events: int, requests: int, exports: int
) -> tuple[list[float], int, float]:
    """Milliseconds of each of `requests` verifications, then the export's count and rate."""
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url})
    try:
        private, supplier = load(app, items, events)
        todo = urls(private, items, requests)
        client = app.test_client()
        ghost = f"https://{HOST}/01/{GTIN}/21/NEVER-ISSUED"
        client.get("/v1/verify", query_string={"url": ghost})  # warm up: nothing stored
        took = []
        for url in todo:
            start = time.perf_counter()
            response = client.get("/v1/verify", query_string={"url": url})
            took.append((time.perf_counter() - start) * 1000)
            body = json.loads(response.get_data())
            assert response.status_code == 200, body
            assert body["verdict"] == "authentic" and body["reasons"] == [], (url, body)
            assert len(body["history"]) >= events // items, (url, len(body["history"]))
        return (took, *export_rate(app, supplier, exports))
    finally:
        app.extensions["provenance"].close()


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0-100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    """Parse arguments, load a scratch PostgreSQL database, measure, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="commissioning included")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--exports", type=int, default=100_000, help="events to page through")
    parser.add_argument("--quick", action="store_true", help="2,000 items, 20,000 events, 200")
    parser.add_argument("--postgres", default=POSTGRES, help="a server URL (its admin database)")
    args = parser.parse_args()
    if args.quick:
        args.items, args.events, args.requests, args.exports = 2_000, 20_000, 200, 20_000
    with scratch_database(args.postgres, "bench_verify") as url:
        if url is None:
            sys.exit(f"bench/verify.py: PostgreSQL does not answer at {args.postgres}")
        with tempfile.TemporaryDirectory() as scratch:
            took, exported, rate = measure(
                url, Path(scratch), args.items, args.events, args.requests, args.exports
            )
    print(f"items: {args.items}")
    print(f"events: {max(args.events, args.items)}")
    print(f"requests: {len(took)}")
    print(f"verify_p50_ms: {percentile(took, 50):.1f}")
    print(f"verify_p99_ms: {percentile(took, 99):.1f}")
    print(f"verify_p99_target_ms: {TARGET_P99_MS}")
    print(f"epcis_exported_events: {exported}")
    print(f"epcis_export_events_per_s: {rate:.0f}")


if __name__ == "__main__":
    main()
