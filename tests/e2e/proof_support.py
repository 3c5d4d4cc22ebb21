"""One way to serve the buyer's page with anchored items, for every browser test.

`open_shop` registers a tea maker's items (NTAG 424 DNA S1-S3, QR labels Q1-Q6; a carrier's
system reports a step of Q6 over EPCIS), hands S1 to
a shop, anchors everything, and serves the app on a real loopback port: on the embedded chain,
or on an anvil node that the page also names as its public JSON-RPC endpoint, so that the
browser's proof.js reads the chain itself as a phone would read a public node.
`harness_server` serves proof.js alone in a test-only page, through the same `served`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response
from markupsafe import escape

from firmware_tools.formats.qr import sign_label_url
from provenance_api.schemas import Role
from provenance_api.unit_of_work import SqlUnitOfWork
from provenance_api.web import strings as catalogue
from tests.e2e.served import served
from tests.integration.api_support import GTIN, Api
from tests.integration.events_support import MASTER, Reader, World, serial_of, uid_of
from tests.integration.test_chain_writer import make_app
from tests.integration.test_full_flow import settle

STATIC = Path(__file__).resolve().parents[2] / "provenance_api" / "web" / "static"
HOST = "id.example.com"
EXPLORER = "https://explorer.example/tx/{tx}"
HAMBURG = "geo:53.5511,9.9937"
BERLIN = {"geo": "geo:52.52,13.405", "place": "Berlin"}
PARTNER = "Harbour Logistics"
PRODUCT = "Darjeeling Tea"
HARNESS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>proof.js harness</title></head>
<body>
<section id="verify-yourself" data-strings='{strings}'></section>
<script type="application/json" id="proof-data">{data}</script>
<script src="/static/proof.js" defer></script>
</body></html>
"""


@dataclass
class Shop:
    """The served app and its cast: a tea maker with labelled and chipped items, a shop."""

    base: str
    api: Api
    world: World
    label_key: bytes  # the maker's key, as the API holds it: it signs QR labels
    operator_key: bytes  # the service's key: it signs verdicts
    maker: str
    retailer: str
    shots: Path

    def label(self, serial: str, key: bytes | None = None) -> str:
        """A QR label of item `serial` signed with the maker's key (or `key`)."""
        return sign_label_url(key or self.label_key, HOST, GTIN, serial)

    def url(self, tag_url: str, **where: str) -> str:
        """The tag's URL on this server, with the phone's position when given."""
        path = tag_url.removeprefix(f"https://{HOST}")
        if where:
            path += ("&" if "?" in path else "?") + urlencode(where)
        return self.base + path


def _name(api: Api, key: str) -> tuple[str, str]:
    me = api.call("GET", "/v1/me", key).get_json()["organization"]
    return me["name"], me["address"]


def _world(api: Api, items: int) -> World:
    """As events_support.make_world, with names a buyer would read on the page."""
    supplier = api.key(Role.SUPPLIER, "Acme Tea Gardens")
    product = {"gtin": GTIN, "name": PRODUCT}
    assert api.call("POST", "/v1/products", supplier, json=product).status_code == 201
    sun = api.call("POST", "/v1/sun-keys", supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    rows = [
        {"gtin": GTIN, "serial": serial_of(n), "tag": "ntag424", "uid": uid_of(n).hex()}
        for n in range(1, items + 1)
    ]
    registered = api.call("POST", "/v1/items", supplier, json={"items": rows})
    assert registered.get_json()["created"] == items, registered.get_json()
    world = World(api, supplier, api.key(Role.CARRIER, "Swift Freight"), Reader(b"", ""), items)
    world.reader = world.reader_for(world.carrier)
    return world


def _at(moment: datetime, hours: int) -> str:
    """`moment` in the time zone `hours` from UTC (a negative offset is signed as an int16)."""
    return moment.astimezone(timezone(timedelta(hours=hours))).replace(microsecond=0).isoformat()


def _epcis_document(serial: str, moment: datetime) -> dict[str, Any]:
    """An EPCISDocument from another system: one ObjectEvent, a carrier's, about `serial`."""
    event = {
        "type": "ObjectEvent",
        "eventTime": _at(moment + timedelta(seconds=2), 1),
        "eventTimeZoneOffset": "+01:00",
        "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{serial}"],
        "action": "OBSERVE",
        "bizStep": "https://ref.gs1.org/cbv/BizStep-shipping",
        "disposition": "https://ref.gs1.org/cbv/Disp-in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
    }
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _at(moment, 0),
        "epcisBody": {"eventList": [event]},
    }


@contextmanager
def open_shop(tmp_path: Path, shots: Path, chain_url: str = "", **config: Any) -> Iterator[Shop]:
    """Items S1-S3 (NTAG 424 DNA) and Q1-Q6 (QR); S1 shipped to a shop; everything anchored.

    On anvil (`chain_url`) the page names the node as PUBLIC_RPC_URL; automining anvil makes
    no block without a transaction, so a receipt counts at once (CONFIRMATIONS=0).
    """
    if chain_url:
        config = {"CONFIRMATIONS": 0, "PUBLIC_RPC_URL": chain_url, **config}
    app, rt = make_app(
        tmp_path, chain_url, ANCHOR_MAX_AGE_SECONDS=0, EXPLORER_TX_URL=EXPLORER, **config
    )
    try:
        api = Api(app, lambda: SqlUnitOfWork(rt.engine))
        world = _world(api, items=3)
        rows = [{"gtin": GTIN, "serial": f"Q{n}", "tag": "qr"} for n in range(1, 7)]
        assert api.call("POST", "/v1/items", world.supplier, json={"items": rows}).status_code
        maker, maker_address = _name(api, world.supplier)
        with api.uow() as uow:
            sealed = uow.organizations.by_address(maker_address).encrypted_key
        label_key = rt.keybox.open(sealed, maker_address)
        # S1's journey: the maker ships it from Hamburg (UTC+1), a shop receives it in
        # Berlin; the shop's reader keeps UTC-5, so that a negative offset is signed too.
        retailer = api.key(Role.RETAILER, "Corner Tea Shop")
        shop_name, shop_address = _name(api, retailer)
        dock, counter = world.reader_for(world.supplier), world.reader_for(retailer)
        start = datetime.now(UTC)
        ship = world.event(
            1,
            dock,
            biz_step="shipping",
            disposition="in_transit",
            read_point=HAMBURG,
            to_party=shop_address,
            event_time=_at(start, 1),
        )
        assert world.post([ship], world.supplier).get_json()["accepted"] == 1
        receive = world.event(
            1,
            counter,
            biz_step="receiving",
            read_point=BERLIN["geo"],
            from_party=maker_address,
            event_time=_at(start + timedelta(seconds=1), -5),
        )
        assert world.post([receive], retailer).get_json()["accepted"] == 1
        # Q6's last step comes from a partner's system over EPCIS: anchored, signed by no reader.
        partner = api.key(Role.CARRIER, PARTNER)
        captured = api.call("POST", "/v1/epcis/capture", partner, json=_epcis_document("Q6", start))
        assert captured.status_code == 202 and captured.get_json()["status"] == "succeeded"
        settle(rt)
        recall = {"status": "recalled", "reason": "a faulty seal may let moisture in"}
        path = f"/v1/items/{GTIN}/Q4/status"
        assert api.call("POST", path, world.supplier, json=recall).status_code == 200
        shots.mkdir(parents=True, exist_ok=True)
        operator_key = bytes(rt.operator.key)
        with served(app) as base:
            yield Shop(base, api, world, label_key, operator_key, maker, shop_name, shots)
    finally:
        rt.close()


@dataclass
class Proven:
    """A verification of an item whose events are all anchored, and the chain it names."""

    verification: dict[str, Any]
    chain: dict[str, Any]
    operator_key: bytes

    def data(self) -> dict[str, Any]:
        """A fresh copy of what the page embeds as #proof-data, for a test to alter."""
        return json.loads(json.dumps({"verification": self.verification, "chain": self.chain}))


def proven_of(shop: Shop, tag_url: str, rpc_url: str) -> Proven:
    """The check of `tag_url` (through the API, as the page makes it) and the chain it names."""
    answer = shop.api.call("GET", "/v1/verify", query_string={"url": tag_url})
    assert answer.status_code == 200, answer.get_json()
    verification = answer.get_json()
    attestation = verification["attestation"]
    assert attestation is not None
    chain = {
        "rpc_url": rpc_url,
        "chain_id": attestation["chain_id"],
        "ledger": attestation["ledger"],
    }
    return Proven(verification, chain, shop.operator_key)


@contextmanager
def proven_item(tmp_path: Path, anvil_url: str) -> Iterator[Proven]:
    """The shop on anvil, and a fresh tap of S1 (shipped to the shop, all anchored) checked."""
    with open_shop(tmp_path, tmp_path / "shots", anvil_url) as shop:
        proven = proven_of(shop, shop.world.tap(1), anvil_url)
        assert (proven.verification["gtin"], proven.verification["serial"]) == (GTIN, "S1")
        yield proven


def proof_strings(**overrides: str) -> dict[str, Any]:
    """What the page gives proof.js in data-strings (strings.py's), with `overrides`."""
    return {**catalogue.catalogue().proof_script(), **overrides}


@contextmanager
def harness_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """The harness page on a loopback port: its base URL and the page's body to set."""
    page: dict[str, bytes] = {"html": b""}
    app = Flask(__name__, static_folder=str(STATIC))
    app.add_url_rule("/", "harness", lambda: Response(page["html"], mimetype="text/html"))
    with served(app) as base:
        yield base, page


def harness_html(data: dict[str, Any], strings: dict[str, Any] | None = None) -> bytes:
    """The page with `data` as #proof-data (`</` escaped as a page template must do), and
    `strings` (the page's own by default) as the section's words."""
    text = json.dumps(data).replace("</", "<\\/")
    words = escape(json.dumps(strings if strings is not None else proof_strings()))
    return HARNESS.format(data=text, strings=words).encode()
