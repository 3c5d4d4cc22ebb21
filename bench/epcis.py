"""EPCIS 2.0 export and capture: GET /v1/epcis/events paged through, 1,000 events a page, and
POST /v1/epcis/capture of documents of 1,000 events.

Run: python bench/epcis.py [--items N] [--postgres URL]
Prints `epcis_export_events_per_s` and `epcis_capture_events_per_s` (SQLite file, in-process,
one thread), and both again with `_postgres` (`n/a` when no server answers). The exported
events are the items' commissioning events (one per item, supplier-signed, not yet anchored):
each is read, mapped to an ObjectEvent, given its GS1 event hash ID and serialized. Every
page is checked for count and uniqueness, not for schema validity (the tests do that). The
captured events are N ObjectEvents, one per item (its SGTIN), each checked against GS1's JSON
schema, hashed, indexed by SGTIN (matched to its item) and stored, with the job.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch_postgres import scratch_database  # noqa: E402

from provenance_api import db  # noqa: E402
from provenance_api.app import create_app  # noqa: E402
from provenance_api.unit_of_work import SqlUnitOfWork  # noqa: E402
from tests.integration.api_support import Api  # noqa: E402
from tests.integration.events_support import make_world  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


PER_DOCUMENT = 1000


def capture_document(serials: list[str]) -> dict:
    """An EPCISDocument of one shipping ObjectEvent per serial of the bench's GTIN."""
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-20T10:00:00.250+01:00",
            "eventTimeZoneOffset": "+01:00",
            "epcList": [f"urn:epc:id:sgtin:9506000.013435.{serial}"],
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        }
        for serial in serials
    ]
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-01T10:00:00.000Z",
        "epcisBody": {"eventList": events},
    }


def measure(database_url: str, data_dir: Path, items: int) -> tuple[float, float]:
    """Events per second exported (every page of `items` commissioning events) and captured
    (`items` events, in documents of 1,000)."""
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url})
    try:
        db.upgrade(database_url)
        engine = app.extensions["provenance"].engine
        world = make_world(Api(app, lambda: SqlUnitOfWork(engine)), items=items)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {world.supplier}"}
        client.get("/v1/epcis/events?perPage=1", headers=headers)  # start the chain first
        seen: set[str] = set()
        url: str | None = "/v1/epcis/events?perPage=1000"
        start = time.perf_counter()
        while url is not None:
            response = client.get(url, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            body = json.loads(response.get_data())
            seen.update(
                e["eventID"] for e in body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            )
            link = response.headers.get("Link")
            url = re.sub(r'^<http://localhost(/[^>]+)>; rel="next"$', r"\1", link) if link else None
        elapsed = time.perf_counter() - start
        assert len(seen) == items, (len(seen), items)

        serials = [f"S{n}" for n in range(1, items + 1)]
        documents = [
            json.dumps(capture_document(serials[first : first + PER_DOCUMENT]))
            for first in range(0, items, PER_DOCUMENT)
        ]
        begin = time.perf_counter()
        for body in documents:
            response = client.post(
                "/v1/epcis/capture", data=body, content_type="application/ld+json", headers=headers
            )
            assert response.status_code == 202, response.get_data(as_text=True)[:300]
            assert response.get_json()["status"] == "succeeded", response.get_json()
        captured = time.perf_counter() - begin
        return items / elapsed, items / captured
    finally:
        app.extensions["provenance"].close()


def main() -> None:
    """Parse arguments, measure on SQLite, then on PostgreSQL when it answers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--postgres", default=POSTGRES, help="a server URL (its admin database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.sqlite3'}"
        rate, capture_rate = measure(url, Path(scratch), args.items)
    print(f"epcis_export_events_per_s: {rate:.0f}")
    print(f"epcis_capture_events_per_s: {capture_rate:.0f}")
    with scratch_database(args.postgres, "bench_epcis") as url:
        if url is None:
            print("epcis_export_events_per_s_postgres: n/a")
            print("epcis_capture_events_per_s_postgres: n/a")
            return
        with tempfile.TemporaryDirectory() as scratch:
            rate, capture_rate = measure(url, Path(scratch), args.items)
    print(f"epcis_export_events_per_s_postgres: {rate:.0f}")
    print(f"epcis_capture_events_per_s_postgres: {capture_rate:.0f}")


if __name__ == "__main__":
    main()
