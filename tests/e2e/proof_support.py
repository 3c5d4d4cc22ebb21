"""A real item with anchored events on anvil, and a test-only page that runs proof.js on it.

The page is what the buyer page embeds (#proof-data, #verify-yourself, /static/proof.js),
served from a loopback HTTP server of its own so that the browser loads the committed static
files and reaches the anvil node over JSON-RPC as a phone would reach a public node.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from provenance_api.schemas import Role
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import GTIN, Api
from tests.integration.events_support import World, make_world, serial_of
from tests.integration.test_chain_writer import drain, make_app

STATIC = Path(__file__).resolve().parents[2] / "provenance_api" / "web" / "static"
HARNESS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>proof.js harness</title></head>
<body>
<section id="verify-yourself"{strings}></section>
<script type="application/json" id="proof-data">{data}</script>
<script src="/static/proof.js" defer></script>
</body></html>
"""


@dataclass
class Proven:
    """A verification of an item whose events are all anchored, and the chain it names."""

    verification: dict[str, Any]
    chain: dict[str, Any]
    operator_key: bytes

    def data(self) -> dict[str, Any]:
        """A fresh copy of what the page embeds as #proof-data, for a test to alter."""
        return json.loads(json.dumps({"verification": self.verification, "chain": self.chain}))


def settle(rt) -> None:
    """What the worker does: close every due batch, then write until nothing is owed."""
    rt.new_anchorer().tick()
    writer = rt.new_writer()
    try:
        drain(writer, rt)
    finally:
        writer.release()


def _at(moment: datetime, hours: int) -> str:
    return moment.astimezone(timezone(timedelta(hours=hours))).replace(microsecond=0).isoformat()


def _handoff(api: Api, world: World, n: int) -> None:
    """Item n goes from its supplier's dock to a shop's counter: shipping, then receiving."""
    shop = api.key(Role.RETAILER, "Corner Shop")
    maker, retailer = (
        api.call("GET", "/v1/me", key).get_json()["organization"]["address"]
        for key in (world.supplier, shop)
    )
    dock, counter = world.reader_for(world.supplier), world.reader_for(shop)
    start = datetime.now(UTC) + timedelta(seconds=1)
    parties = {"from_party": maker, "to_party": retailer}
    for key, reader, step, disposition, later, hours in (
        (world.supplier, dock, "shipping", "in_transit", 0, 1),
        (shop, counter, "receiving", "in_progress", 1, -5),
    ):
        event = world.event(
            n,
            reader,
            biz_step=step,
            disposition=disposition,
            event_time=_at(start + timedelta(seconds=later), hours),
            **parties,
        )
        answer = world.post([event], key)
        assert answer.status_code == 200, answer.get_json()
        (result,) = answer.get_json()["results"]
        assert result["status"] == "accepted", result


@contextmanager
def proven_item(tmp_path: Path, anvil_url: str) -> Iterator[Proven]:
    """Three NTAG 424 DNA items on anvil, item 1 handed to a shop, all anchored; its check."""
    # Automining anvil makes no block without a transaction: confirm at depth 0.
    app, rt = make_app(tmp_path, anvil_url, CONFIRMATIONS=0, ANCHOR_MAX_AGE_SECONDS=0)
    try:
        api = Api(app, lambda: SqlUnitOfWork(rt.engine))
        world = make_world(api, items=3)
        settle(rt)  # the readers' registrations and the commissioning batch
        _handoff(api, world, 1)
        settle(rt)
        answer = api.call("GET", "/v1/verify", query_string={"url": world.tap(1)})
        assert answer.status_code == 200, answer.get_json()
        verification = answer.get_json()
        assert (verification["gtin"], verification["serial"]) == (GTIN, serial_of(1))
        attestation = verification["attestation"]
        assert attestation is not None
        chain = {
            "rpc_url": anvil_url,
            "chain_id": attestation["chain_id"],
            "ledger": attestation["ledger"],
        }
        yield Proven(verification, chain, bytes(rt.operator.key))
    finally:
        rt.close()


class _Handler(SimpleHTTPRequestHandler):
    """/ is the harness page with the data the server was given; /static/ the real files."""

    def __init__(self, *args: Any, page: dict[str, bytes], **kwargs: Any) -> None:
        self.page = page
        super().__init__(*args, directory=str(STATIC.parent), **kwargs)

    def do_GET(self) -> None:
        if self.path == "/":
            body = self.page["html"]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not self.path.startswith("/static/"):
            self.send_error(404)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads the page
        pass


@contextmanager
def harness_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback server of the harness page: its base URL and the page's body to set."""
    page: dict[str, bytes] = {"html": b""}
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, page=page))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", page
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def harness_html(data: dict[str, Any], strings: dict[str, str] | None = None) -> bytes:
    """The page with `data` as #proof-data (`</` escaped as a page template must do), and
    `strings` as the section's translations."""
    text = json.dumps(data).replace("</", "<\\/")
    attribute = f' data-strings="{html.escape(json.dumps(strings))}"' if strings else ""
    return HARNESS.format(data=text, strings=attribute).encode()
