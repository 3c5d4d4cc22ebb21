"""Registering 10,000 items in one request: POST /v1/items through Flask's test client.

Run: python bench/items.py [--items N] [--postgres URL]
Prints `register_10k_items_s` (SQLite file, in-process; target <= 5), then
`register_10k_items_resend_s` (the same batch again: every row found stored, nothing written),
and the same two figures on PostgreSQL as `register_10k_items_postgres_s` and
`register_10k_items_postgres_resend_s` (`n/a` when no server answers; default URL
postgresql+psycopg://postgres@127.0.0.1:5432/postgres, a scratch database is made and dropped).
Rows are NTAG 424 DNA items with a lot, an expiry and a chip UID: every check is on.
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
from provenance_api.models import OrganizationCreate, OrgKind  # noqa: E402
from provenance_api.services import organizations  # noqa: E402
from provenance_api.unit_of_work import SqlUnitOfWork  # noqa: E402

GTIN = "09506000134352"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def batch(count: int) -> str:
    """A body of `count` NTAG 424 DNA items, each with its own chip UID."""
    rows = [
        {
            "gtin": GTIN,
            "serial": f"SN{n:08d}",
            "lot": "LOT-2026-12",
            "expiry": "271231",
            "tag": "ntag424",
            "uid": f"04{n:012X}",
        }
        for n in range(count)
    ]
    return json.dumps({"items": rows})


def measure(database_url: str, data_dir: Path, count: int) -> tuple[float, float]:
    """Seconds for the first POST of the batch and for its identical resend."""
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url})
    try:
        db.upgrade(database_url)
        runtime = app.extensions["provenance"]
        made = organizations.create_organization(
            SqlUnitOfWork(runtime.engine),
            runtime.keybox,
            OrganizationCreate(name="Bench supplier", kind=OrgKind.SUPPLIER),
        )
        client = app.test_client()
        headers = {"Authorization": f"Bearer {made.api_key}"}
        created = client.post("/v1/products", json={"gtin": GTIN, "name": "Tea"}, headers=headers)
        assert created.status_code == 201, created.get_json()
        body = batch(count)
        times = []
        for expected in ("created", "unchanged"):
            start = time.perf_counter()
            response = client.post(
                "/v1/items", data=body, content_type="application/json", headers=headers
            )
            times.append(time.perf_counter() - start)
            answer = response.get_json()
            assert response.status_code == 200, answer
            assert answer[expected] == count and answer["refused_count"] == 0, answer
        return times[0], times[1]
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
        first, resend = measure(url, Path(scratch), args.items)
    print(f"register_10k_items_s: {first:.2f}")
    print(f"register_10k_items_resend_s: {resend:.2f}")
    with scratch_database(args.postgres, "bench_items") as url:
        if url is None:
            print("register_10k_items_postgres_s: n/a")
            print("register_10k_items_postgres_resend_s: n/a")
            return
        with tempfile.TemporaryDirectory() as scratch:
            first, resend = measure(url, Path(scratch), args.items)
    print(f"register_10k_items_postgres_s: {first:.2f}")
    print(f"register_10k_items_postgres_resend_s: {resend:.2f}")


if __name__ == "__main__":
    main()
