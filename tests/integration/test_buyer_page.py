"""The buyer's page through the app (Flask's client): one check per page, its data, headers.

The browser's view of it is tests/e2e/test_buyer_page.py.
"""

from __future__ import annotations

import json
import re

import pytest

from provenance_api.app import create_app
from tests.integration.api_support import GTIN, make_api
from tests.integration.events_support import make_world, serial_of

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
PROOF_DATA = re.compile(r'<script type="application/json" id="proof-data">(.*?)</script>', re.S)


@pytest.fixture
def api(tmp_path):
    made = make_api("sqlite", tmp_path)
    yield made
    made.app.extensions["provenance"].close()


def path_of(url: str) -> str:
    return url.removeprefix("https://id.example.com")


def proof_data(html: str) -> dict:
    (text,) = PROOF_DATA.findall(html)
    return json.loads(text)


def test_each_page_is_one_check_that_consumes_the_tap(api):
    world = make_world(api, items=1)
    path = path_of(world.tap(1))
    first = api.call("GET", path, headers=BROWSER)
    assert first.status_code == 200 and 'class="verdict verdict-authentic"' in first.text
    # The JSON route after the page sees the same tap again: the page consumed it, once.
    again = api.call("GET", path, headers=JSON).get_json()
    assert [r["code"] for r in again["reasons"]] == ["counter_repeated"]
    assert "repeats the last accepted tap (1)" in again["reasons"][0]["message"]
    scans = api.call("GET", f"/v1/items/{GTIN}/{serial_of(1)}/verifications", world.supplier)
    assert [s["verdict"] for s in scans.get_json()["scans"]] == ["authentic", "suspicious"]


def test_the_page_carries_the_verification_as_the_json_route_gives_it(api):
    world = make_world(api, items=2)
    html = api.call("GET", path_of(world.tap(1)), headers=BROWSER).text
    shown = proof_data(html)
    assert set(shown) == {"verification", "chain"}
    assert set(shown["chain"]) == {"rpc_url", "chain_id", "ledger"}
    assert shown["chain"]["rpc_url"] is None
    as_json = api.call("GET", path_of(world.tap(2)), headers=JSON).get_json()
    assert set(shown["verification"]) == set(as_json)
    assert shown["verification"]["serial"] == serial_of(1)
    assert shown["verification"]["history"][0]["salt"].startswith("0x")


def test_a_hostile_serial_stays_text(api):
    make_world(api, items=1)
    hostile = "S1</script><script>alert(1)</script><b>"
    page = api.call("GET", f"/01/{GTIN}/21/{hostile}", headers=BROWSER)
    assert page.status_code == 422  # GS1 serials have no angle brackets: no product link
    assert "<script>alert(1)" not in page.text and "<b>" not in page.text
    assert "We could not check this item" in page.text
    assert "not a product link" in proof_data(page.text)["verification"]["reasons"][0]["message"]
    # The message names the character: escaped in the HTML, plain text in the page's JSON.
    encoded = api.call("GET", f"/01/{GTIN}/21/S1%3Cscript%3E", headers=BROWSER)
    assert "character &#39;&lt;&#39; at position 3" in encoded.text
    assert "\\u003c" in PROOF_DATA.findall(encoded.text)[0]  # no "<" inside the script
    message = proof_data(encoded.text)["verification"]["reasons"][0]["message"]
    assert "character '<' at position 3" in message


def test_the_headers_keep_the_page_to_itself(tmp_path):
    settings = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "PUBLIC_RPC_URL": "https://rpc.example/key/abc",
        "EXPLORER_TX_URL": "https://explorer.example/tx/{tx}",
    }
    app = create_app(settings)
    try:
        from provenance_api import db

        db.upgrade(app.config["DATABASE_URL"])
        page = app.test_client().get(f"/01/{GTIN}/21/S1", headers=BROWSER)
        csp = page.headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'none'; script-src 'self'; style-src 'self'")
        assert "connect-src 'self' https://rpc.example;" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert proof_data(page.text)["chain"]["rpc_url"] == "https://rpc.example/key/abc"
        css = app.test_client().get("/static/page.css")
        assert (css.status_code, css.mimetype) == (200, "text/css")
        css.close()
    finally:
        app.extensions["provenance"].close()


@pytest.mark.parametrize(
    ("method", "agent"),
    [
        ("HEAD", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1"),
        ("GET", "WhatsApp/2.24.1.6 A"),
        ("GET", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
        ("GET", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
    ],
)
def test_a_link_preview_or_a_head_request_checks_nothing_and_spends_no_tap(api, method, agent):
    world = make_world(api, items=1)
    path = path_of(world.tap(1))
    preview = api.call(method, path, headers={**BROWSER, "User-Agent": agent})
    assert preview.status_code == 200 and preview.headers["Cache-Control"] == "no-store"
    if method == "GET":
        assert "<h1>Is this item genuine?</h1>" in preview.text
        assert "verdict-" not in preview.text and "proof-data" not in preview.text
    # The buyer who then opens the link has the tap: genuine, not a replay.
    opened = api.call("GET", path, headers=BROWSER)
    assert 'class="verdict verdict-authentic"' in opened.text
    scans = api.call("GET", f"/v1/items/{GTIN}/{serial_of(1)}/verifications", world.supplier)
    assert [s["verdict"] for s in scans.get_json()["scans"]] == ["authentic"]


def test_the_page_loads_proof_js_from_this_site(api):
    world = make_world(api, items=1)
    page = api.call("GET", path_of(world.tap(1)), headers=BROWSER).text
    assert '<script src="/static/proof.js" defer></script>' in page
    assert "<noscript><p>Your browser can check the blockchain records" in page
    script = api.call("GET", "/static/proof.js")
    assert (script.status_code, script.mimetype) == (200, "text/javascript")
    script.close()
