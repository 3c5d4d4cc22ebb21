"""The buyer's page over HTTP on PostgreSQL with many items stored: latency and weight.

Run: python bench/verify_page.py [--items N] [--events N] [--requests N] [--quick]
     [--postgres URL]
Prints `page_p50_ms`, `page_p99_ms` (target <= 50) and `page_bytes` (target <= 100 kB: the
largest page served plus every asset it names or loads, proof.js and the vendor/noble.js it
imports when the buyer presses "Check the proofs" included; `page_bytes_initial` without what
waits for that press), and for
comparison `json_p50_ms`, `json_p99_ms`: the resolver's JSON for as many other items,
interleaved with the pages, so that both meet the same load on the machine.

The store is built as bench/verify.py builds it (its `load`: items through POST /v1/items, a
third each QR, NTAG 21x and NTAG 424 DNA, the other events by COPY). The app is served on a
loopback port (werkzeug, threaded, in this process); each request is a phone's first visit:
a new TCP connection, a browser's Accept header, a distinct item (a signed QR label, an NTAG
21x URL or a fresh SUN tap), timed from connect to the last byte of the page. Every answer
must be 200 and the page must say "Genuine" (the JSON `authentic`). The assets are fetched
once after the pages.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch_postgres import scratch_database  # noqa: E402
from verify import HOST, POSTGRES, load, percentile, urls  # noqa: E402

from provenance_api.app import create_app  # noqa: E402
from tests.e2e.served import served  # noqa: E402

TARGET_P99_MS = 50
TARGET_BYTES = 100_000
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) bench",
}
JSON = {"Accept": "application/json", "User-Agent": BROWSER["User-Agent"]}
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')
# What a script pulls in as it loads: `import ... from "./x.js"`, `import "./x.js"`.
IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s+["']([^"']+\.m?js)["']""")
# What it loads later, when the buyer asks: `import("./x.js")`, `new URL("x.js", ...)` (proof.js
# names vendor/noble.js so and imports it on the button's click).
ON_DEMAND = re.compile(r"""(?:\bimport\s*\(|\bnew\s+URL\s*\()\s*["']([^"']+\.m?js)["']""")


def fetch(base: str, path: str, headers: dict[str, str] = BROWSER) -> tuple[int, bytes, float]:
    """GET `path` on a new connection, as a phone's first visit: status, body, milliseconds."""
    where = urlsplit(base)
    start = time.perf_counter()
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, body, (time.perf_counter() - start) * 1000


def fetch_assets(base: str, page: bytes) -> tuple[int, int]:
    """Bytes of every asset the page names (and their imports), and of those loaded on demand."""
    pending = [(asset, False) for asset in sorted(set(ASSET.findall(page.decode())))]
    seen: dict[str, bool] = {}
    sizes: dict[str, int] = {}
    while pending:
        asset, later = pending.pop()
        if asset in seen and (later or not seen[asset]):
            continue  # counted already, and as early as it now would be
        seen[asset] = later
        if asset not in sizes:
            status, body, _ = fetch(base, asset)
            assert status == 200, (asset, status)
            sizes[asset] = len(body)
            if asset.endswith((".js", ".mjs")):
                text = body.decode()
                pending += [(urljoin(asset, name), later) for name in IMPORT.findall(text)]
                pending += [(urljoin(asset, name), True) for name in ON_DEMAND.findall(text)]
    names = ", ".join(f"{a}{' (on demand)' if later else ''}" for a, later in sorted(seen.items()))
    print(f"# assets: {names}", file=sys.stderr)
    initial = sum(sizes[a] for a, later in seen.items() if not later)
    return initial, sum(sizes.values()) - initial


def measure(
    database_url: str, data_dir: Path, items: int, events: int, requests: int
) -> tuple[list[float], list[float], int, tuple[int, int]]:
    """Milliseconds of each page and each JSON answer, the largest page's bytes, its assets'
    (loaded with the page, loaded when the buyer asks)."""
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on stderr
    try:
        private, _ = load(app, items, events)
        todo = [url.removeprefix(f"https://{HOST}") for url in urls(private, items, 2 * requests)]
        with served(app) as base:
            fetch(base, "/01/09506000134352/21/NEVER-ISSUED")  # warm up: nothing stored
            took, took_json, largest, page = [], [], 0, b""
            for path, other in zip(todo[::2], todo[1::2], strict=True):
                status, body, ms = fetch(base, path)
                assert status == 200, (path, status, body[:300])
                assert b'class="verdict verdict-authentic"' in body, (path, body[:2000])
                took.append(ms)
                if len(body) > largest:
                    largest, page = len(body), body
                status, body, ms = fetch(base, other, JSON)
                assert status == 200 and json.loads(body)["verdict"] == "authentic", body[:300]
                took_json.append(ms)
            assets = fetch_assets(base, page)
        return took, took_json, largest, assets
    finally:
        app.extensions["provenance"].close()


def main() -> None:
    """Parse arguments, load a scratch PostgreSQL database, serve, measure, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="commissioning included")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="2,000 items, 20,000 events, 200")
    parser.add_argument("--postgres", default=POSTGRES, help="a server URL (its admin database)")
    args = parser.parse_args()
    if args.quick:
        args.items, args.events, args.requests = 2_000, 20_000, 200
    with scratch_database(args.postgres, "bench_verify_page") as url:
        if url is None:
            sys.exit(f"bench/verify_page.py: PostgreSQL does not answer at {args.postgres}")
        with tempfile.TemporaryDirectory() as scratch:
            took, took_json, page, assets = measure(
                url, Path(scratch), args.items, args.events, args.requests
            )
    print(f"items: {args.items}")
    print(f"events: {max(args.events, args.items)}")
    print(f"requests: {len(took)}")
    print(f"page_p50_ms: {percentile(took, 50):.1f}")
    print(f"page_p99_ms: {percentile(took, 99):.1f}")
    print(f"page_p99_target_ms: {TARGET_P99_MS}")
    print(f"json_p50_ms: {percentile(took_json, 50):.1f}")
    print(f"json_p99_ms: {percentile(took_json, 99):.1f}")
    initial, on_demand = assets
    print(f"page_html_bytes: {page}")
    print(f"page_asset_bytes: {initial + on_demand}")
    print(f"page_bytes_initial: {page + initial}")
    print(f"page_bytes: {page + initial + on_demand}")
    print(f"page_bytes_target: {TARGET_BYTES}")


if __name__ == "__main__":
    main()
