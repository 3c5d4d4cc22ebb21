"""EPCIS 2.0 export: GET /v1/epcis/events paged through, 1,000 events a page.

Run: python bench/epcis.py [--items N] [--postgres URL]
Prints `epcis_export_events_per_s` (SQLite file, in-process, one thread) and
`epcis_export_events_per_s_postgres` (`n/a` when no server answers). The events are the
items' commissioning events (one per item, supplier-signed, not yet anchored): each is read,
mapped to an ObjectEvent, given its GS1 event hash ID and serialized. Every page is checked
for count and uniqueness, not for schema validity (the tests do that).
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


def measure(database_url: str, data_dir: Path, items: int) -> float:
    """Events per second exported, over every page of `items` commissioning events."""
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
        return items / elapsed
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
        rate = measure(url, Path(scratch), args.items)
    print(f"epcis_export_events_per_s: {rate:.0f}")
    with scratch_database(args.postgres, "bench_epcis") as url:
        if url is None:
            print("epcis_export_events_per_s_postgres: n/a")
            return
        with tempfile.TemporaryDirectory() as scratch:
            rate = measure(url, Path(scratch), args.items)
    print(f"epcis_export_events_per_s_postgres: {rate:.0f}")


if __name__ == "__main__":
    main()
