"""Custody events in batches of 1,000: POST /v1/events through Flask's test client.

Run: python bench/events.py [--batches N] [--size N] [--postgres URL]
Prints `events_per_s` (SQLite file, in-process, one thread) and `events_per_s_postgres`
(`n/a` when no server answers; default URL postgresql+psycopg://postgres@127.0.0.1:5432/postgres,
a scratch database is made and dropped). Every event is a distinct NTAG 424 DNA item's fresh
SUN tap signed by a registered reader: device, signature, item, SUN MAC, counter
compare-and-set, time and custody rules are all checked; every event must be accepted.
Signing (the devices' work) is done before the clock starts. The issue's target (2,000/s
under gunicorn with 2 workers) is for bench/ingest.py.
"""

from __future__ import annotations

import argparse
import json
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


def measure(database_url: str, data_dir: Path, batches: int, size: int) -> float:
    """Events per second over `batches` posts of `size` events about distinct tags."""
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url})
    try:
        db.upgrade(database_url)
        engine = app.extensions["provenance"].engine
        world = make_world(Api(app, lambda: SqlUnitOfWork(engine)), items=batches * size)
        bodies = [
            json.dumps({"events": [world.event(b * size + n + 1) for n in range(size)]})
            for b in range(batches)
        ]
        headers = {"Authorization": f"Bearer {world.carrier}"}
        client = app.test_client()
        start = time.perf_counter()
        for body in bodies:
            response = client.post(
                "/v1/events", data=body, content_type="application/json", headers=headers
            )
            answer = response.get_json()
            assert response.status_code == 200, answer
            assert answer["accepted"] == size, answer["results"][:3]
        return batches * size / (time.perf_counter() - start)
    finally:
        app.extensions["provenance"].close()


def main() -> None:
    """Parse arguments, measure on SQLite, then on PostgreSQL when it answers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--size", type=int, default=1_000)
    parser.add_argument("--postgres", default=POSTGRES, help="a server URL (its admin database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.sqlite3'}"
        rate = measure(url, Path(scratch), args.batches, args.size)
    print(f"events_per_s: {rate:.0f}")
    with scratch_database(args.postgres, "bench_events") as url:
        if url is None:
            print("events_per_s_postgres: n/a")
            return
        with tempfile.TemporaryDirectory() as scratch:
            rate = measure(url, Path(scratch), args.batches, args.size)
    print(f"events_per_s_postgres: {rate:.0f}")


if __name__ == "__main__":
    main()
